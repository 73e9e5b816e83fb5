"""Opening an access key package (docs/access-key-package.md) with the module's exceptions."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cardap_access import errors
from gpcard import keypackage
from gpcard.keypackage import KeyPackage


def load_private_key(pem: bytes, password: str | None = None) -> X25519PrivateKey:
    """The provider's X25519 private key (PKCS#8 PEM, optionally encrypted with ``password``)."""
    try:
        key = serialization.load_pem_private_key(pem, password.encode() if password else None)
    except (ValueError, TypeError):
        raise errors.KeyPackageRefusedError(
            "秘密鍵を読み込めません。", "the private key cannot be read."
        ) from None
    if not isinstance(key, X25519PrivateKey):
        raise errors.KeyPackageRefusedError("秘密鍵はX25519鍵です。", "the private key is not an X25519 key.")
    return key


def open_package(
    source: bytes | str | os.PathLike[str],
    *,
    passphrase: str | None = None,
    private_key: X25519PrivateKey | None = None,
    expected_provider: str | None = None,
) -> KeyPackage:
    """Open a key package (its bytes or a file path) with its passphrase or private key.
    ``expected_provider``: the provider id this business system belongs to; another's is refused."""
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        return keypackage.open_package(
            data, passphrase=passphrase, private_key=private_key, expected_provider=expected_provider
        )
    except keypackage.WrongSecretError:
        raise errors.PackageSecretError() from None
    except keypackage.PackageTamperedError:
        raise errors.PackageTamperedError() from None
    except keypackage.OtherProviderError:
        raise errors.WrongProviderError() from None
    except keypackage.KeyPackageError as e:
        raise errors.KeyPackageRefusedError("形式が正しくありません。", str(e)) from None
