"""The database key store behind gpcard's KeyStore interface: sealed at rest, bound to its row,
versioned AP keys, master keys usable for per-card diversification."""

import base64

import pytest
from django.core.exceptions import ImproperlyConfigured

from cardap.keystore import DatabaseKeyStore, decode_store_key, get_keystore
from cardap.models import StoredSecret
from gpcard.aid import LOCAL_AREA_SD_AID
from gpcard.keystore import FileKeyStore, KeyNotFoundError, KeyStore, WrongStoreKeyError

STORE_KEY = bytes(range(32))


@pytest.mark.django_db
def test_ap_keys_are_versioned_and_sealed():
    store = DatabaseKeyStore(STORE_KEY)
    assert isinstance(store, KeyStore)
    k1, k2 = b"\x11" * 16, b"\x22" * 16
    assert store.put_ap_key("card_ap:1", k1) == 1
    assert store.put_ap_key("card_ap:1", k2) == 2
    assert store.ap_key("card_ap:1") == (2, k2)
    assert store.ap_key("card_ap:1", 1) == (1, k1)
    for row in StoredSecret.objects.all():
        blob = base64.b64decode(row.ciphertext)
        assert k1 not in blob and k2 not in blob
    with pytest.raises(KeyNotFoundError):
        store.ap_key("card_ap:2")


@pytest.mark.django_db
def test_wrong_store_key_and_moved_ciphertext_do_not_open():
    store = DatabaseKeyStore(STORE_KEY)
    store.put_ap_key("a", b"\x01" * 16)
    store.put_ap_key("b", b"\x02" * 16)
    with pytest.raises(WrongStoreKeyError):
        DatabaseKeyStore(bytes(32)).ap_key("a")
    a, b = StoredSecret.objects.get(name="a"), StoredSecret.objects.get(name="b")
    StoredSecret.objects.filter(pk=a.pk).update(ciphertext=b.ciphertext)
    with pytest.raises(WrongStoreKeyError):
        store.ap_key("a")


@pytest.mark.django_db
def test_master_keys_diversify_like_gpcards_file_store(tmp_path):
    master = bytes.fromhex("10112233445566778899AABBCCDDEE01")
    store = DatabaseKeyStore(STORE_KEY)
    store.put_master_key(LOCAL_AREA_SD_AID, 0x30, master)
    reference = FileKeyStore(tmp_path / "ks", bytes(32))
    reference.put_master_key(LOCAL_AREA_SD_AID, 0x30, master)
    iin, cin = bytes.fromhex("42D392"), bytes.fromhex("4A500102030405060708")
    assert store.card_keys(LOCAL_AREA_SD_AID, 0x30, iin, cin) == reference.card_keys(
        LOCAL_AREA_SD_AID, 0x30, iin, cin
    )
    with pytest.raises(KeyNotFoundError):
        store.master_key(LOCAL_AREA_SD_AID, 0x31)


def test_store_key_from_settings(settings):
    settings.KEYSTORE_KEY = "not base64!"
    with pytest.raises(ImproperlyConfigured):
        get_keystore()
    settings.KEYSTORE_KEY = base64.b64encode(b"short").decode()
    with pytest.raises(ImproperlyConfigured, match="32 bytes"):
        get_keystore()
    assert decode_store_key(base64.urlsafe_b64encode(STORE_KEY).decode()) == STORE_KEY
    assert decode_store_key(base64.b64encode(STORE_KEY).decode()) == STORE_KEY
