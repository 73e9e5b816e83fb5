"""The J-LIS DAP key: ECDSA P-256, signs every custom card AP load file (card-protocol.md)."""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def demo_dap_private_key() -> ec.EllipticCurvePrivateKey:
    """DEMO ONLY, PUBLICLY KNOWN: the key pair whose public half every virtual card holds (the
    virtual card's bureau owns it), so demo custom APs load. Load files signed by it are marked
    `dap_demo_key`; production sets DAP_KEY_PATH."""
    from vcard.bureau import demo_dap_private_key as bureau_demo_key

    return bureau_demo_key()


def load_dap_private_key() -> tuple[ec.EllipticCurvePrivateKey, bool]:
    """The configured DAP key (PEM at settings.DAP_KEY_PATH) and whether it is the demo key."""
    path = getattr(settings, "DAP_KEY_PATH", "")
    if path:
        with open(path, "rb") as fh:
            key = serialization.load_pem_private_key(fh.read(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise ImproperlyConfigured("DAP_KEY_PATH must hold an ECDSA P-256 private key")
        return key, False
    if settings.DEMO or settings.DEBUG:
        return demo_dap_private_key(), True
    raise ImproperlyConfigured("DAP_KEY_PATH is required to sign custom card AP load files")
