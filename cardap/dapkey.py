"""The J-LIS DAP key: ECDSA P-256, signs every custom card AP load file (card-protocol.md)."""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

# DEMO ONLY, PUBLICLY KNOWN: the private scalar is derived from this fixed text so the demo and the
# virtual card agree without configuration. Load files signed by it are marked `dap_demo_key`.
DEMO_DAP_SEED = b"cardap demo DAP key - NOT SECRET - never trust in production"


def demo_dap_private_key() -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(DEMO_DAP_SEED).digest(), "big")
    return ec.derive_private_key(scalar, ec.SECP256R1())


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
