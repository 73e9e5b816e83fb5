"""The personalisation bureau: builds a new card's non-volatile state at creation — identity,
per-card SCP03 keys diversified from the demo region master keys (docs/card-protocol.md, "Keys"),
the J-LIS DAP public key, and the JPKI AP's test certificates (no real personal data)."""

from __future__ import annotations

import datetime
import functools
import secrets

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from vcard.crypto import kdf
from vcard.scp03 import StaticKeySet
from vcard.state import EXTENDED_SD_AID, ISD_AID, LOCAL_SD_AID, CardState, JpkiPin, SecurityDomain

DEFAULT_IIN = bytes.fromhex("42D392")  # issuer identification number of the demo issuer
KEY_VERSION = 0x30
DEFAULT_QUOTAS = {LOCAL_SD_AID: 8192, EXTENDED_SD_AID: 16384}

# Demo region master keys, one per SD. Public test values: a demo card holds nothing of worth.
DEMO_MASTER_KEYS = {
    ISD_AID: bytes.fromhex("00112233445566778899AABBCCDDEEFF"),
    LOCAL_SD_AID: bytes.fromhex("10112233445566778899AABBCCDDEE01"),
    EXTENDED_SD_AID: bytes.fromhex("20112233445566778899AABBCCDDEE02"),
}

# The demo J-LIS DAP key pair (ECDSA P-256); the card holds only the public key.
DEMO_DAP_PRIVATE_KEY_PEM = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg+Haf7DPrLT9mxz0j
QB9/pEdi7Ro/Nutx8SVWQ3D0Ee+hRANCAAQDmW358ck2g9xgk94+AIiFS/HmoWHK
F3VPi6J7q0WSV3BotXPZQ8FOMrt5Wl6471DoSM8DQ8LaCycAb3USZUDd
-----END PRIVATE KEY-----
"""

JPKI_AUTH_CERT, JPKI_SIGN_CERT, JPKI_AUTH_CA, JPKI_SIGN_CA = 0x000A, 0x0001, 0x000B, 0x0002
JPKI_AUTH_PIN, JPKI_SIGN_PIN = 0x0018, 0x001B
TEST_JPKI_AUTH_PIN, TEST_JPKI_SIGN_PIN = "1234", "TEST123"


def demo_dap_private_key() -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(DEMO_DAP_PRIVATE_KEY_PEM, password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def diversify(master: bytes, iin: bytes, cin: bytes, version: int = KEY_VERSION) -> StaticKeySet:
    """Per-card ENC/MAC/DEK: SCP03 KDF with constants 41/42/43 and context IIN ‖ CIN."""
    bits = len(master) * 8
    return StaticKeySet(version, *(kdf(master, constant, iin + cin, bits) for constant in (0x41, 0x42, 0x43)))


@functools.lru_cache(maxsize=1)
def _jpki_key() -> rsa.RSAPrivateKey:
    # One RSA-2048 key per process: generating one per card would make card creation slow, and
    # the key signs nothing beyond these test certificates.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _certificate(common_name: str, *, ca: bool) -> bytes:
    key = _jpki_key()
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Virtual My Number Card (test)"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.DER)


def create_card(
    *,
    cin: bytes | None = None,
    iin: bytes = DEFAULT_IIN,
    static_key: bytes | None = None,
    master_keys: dict[bytes, bytes] | None = None,
    quotas: dict[bytes, int] | None = None,
    dap_public_key_pem: str | None = None,
) -> CardState:
    """A new card as the bureau would personalise it."""
    cin = cin if cin is not None else b"\x4a\x50" + secrets.token_bytes(8)
    if len(cin) != 10:
        raise ValueError("the CIN has 10 bytes")
    masters = {**DEMO_MASTER_KEYS, **(master_keys or {})}
    quota = {**DEFAULT_QUOTAS, **(quotas or {})}
    sds = {}
    for aid in (ISD_AID, LOCAL_SD_AID, EXTENDED_SD_AID):
        if static_key is not None:
            keys = StaticKeySet(KEY_VERSION, static_key, static_key, static_key)
        else:
            keys = diversify(masters[aid], iin, cin)
        sds[aid] = SecurityDomain(aid, keys, quota.get(aid, 0))
    if dap_public_key_pem is None:
        dap_public_key_pem = (
            demo_dap_private_key()
            .public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
    tag = cin.hex().upper()
    files = {
        JPKI_AUTH_CERT: _certificate(f"Test User Authentication {tag}", ca=False),
        JPKI_SIGN_CERT: _certificate(f"Test Digital Signature {tag}", ca=False),
        JPKI_AUTH_CA: _certificate("Test JPKI User Authentication CA", ca=True),
        JPKI_SIGN_CA: _certificate("Test JPKI Digital Signature CA", ca=True),
    }
    pins = {
        JPKI_AUTH_PIN: JpkiPin(TEST_JPKI_AUTH_PIN, 3, 3),
        JPKI_SIGN_PIN: JpkiPin(TEST_JPKI_SIGN_PIN, 5, 5),
    }
    return CardState(
        iin=iin, cin=cin, dap_public_key_pem=dap_public_key_pem, sds=sds, jpki_files=files, jpki_pins=pins
    )
