"""Host side of the card protocol (docs/card-protocol.md): BER-TLV, APDUs, GlobalPlatform, SCP03.

Framework-free on purpose: the server, the terminal tools and the access module all import it, and
it must never import Django.
"""
