"""A virtual My Number Card: GlobalPlatform card content management (ISD + two area SDs with
SCP03), the card AP engine, the standard APs (JPKI readable by OpenSC), faults, and the vpcd
client that makes it a real PC/SC reader. Implemented from docs/card-protocol.md; it shares no
code with the host library ``gpcard`` on purpose (they meet only as bytes on the wire)."""

from vcard.card import CardConfig, CardMute, CardTorn, CardUnresponsive, VirtualCard

__all__ = ["CardConfig", "CardMute", "CardTorn", "CardUnresponsive", "VirtualCard"]
