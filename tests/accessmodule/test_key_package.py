"""Access key packages: exported by the service (provider admin, re-authenticated, audited,
encrypted), opened by the access module; tampered, mis-addressed or wrongly opened ones refused."""

from __future__ import annotations

import base64
import json
import time

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from cardap import services
from cardap_access import errors, load_private_key, open_package
from operators.models import AuditEntry
from tests.accessmodule.conftest import PASSPHRASE, approve, export
from tests.conftest import signed_in

pytestmark = pytest.mark.django_db
URL = "/registry/access-keys/"


@pytest.fixture
def city_aps(world):
    return {
        "C": approve(world, world.city, world.city_admin, "図書館カード", type="C"),
        "A": approve(world, world.city, world.city_admin, "職員ゲート", type="A"),
        "D": approve(world, world.city, world.city_admin, "健診記録", type="D"),
    }


def test_passphrase_package_round_trip(world, city_aps):
    data = export(world, world.city, world.city_admin, city_aps.values(), passphrase=PASSPHRASE)
    package = open_package(data, passphrase=PASSPHRASE, expected_provider=str(world.city.pk))
    a, d = package.get(city_aps["A"].aid), package.get(city_aps["D"].aid)
    assert (
        a.key == services.current_key(city_aps["A"])[1] and a.pin_source == "holder" and a.system_pin is None
    )
    assert d.system_pin == services.system_fixed_pin(city_aps["D"]) and len(d.system_pin) == 8
    assert package.get(city_aps["C"].aid).key is None
    # nothing secret in the file as written
    text = data.decode()
    assert a.key.hex() not in text.lower() and d.system_pin not in text
    entry = AuditEntry.objects.get(action="card_ap.key_package_exported")
    assert (
        entry.detail["aids"] == [ap.aid for ap in city_aps.values()]
        and entry.detail["method"] == "passphrase"
    )
    assert a.key.hex() not in json.dumps(entry.detail) and d.system_pin not in json.dumps(entry.detail)


def test_system_fixed_pin_is_stable(world, city_aps):
    assert services.system_fixed_pin(city_aps["D"]) == services.system_fixed_pin(city_aps["D"])
    assert services.system_fixed_pin(city_aps["A"]) is None  # the holder chooses that one


def test_the_load_job_writes_the_system_fixed_pin_the_package_carries(world, city_aps):
    from loading import cardkeys

    assert cardkeys.system_fixed_pin(city_aps["D"]) == services.system_fixed_pin(city_aps["D"])


def test_wrong_passphrase_and_tampering_refused(world, city_aps):
    data = export(world, world.city, world.city_admin, [city_aps["A"]], passphrase=PASSPHRASE)
    with pytest.raises(errors.PackageSecretError):
        open_package(data, passphrase=PASSPHRASE + "!")
    doc = json.loads(data)
    ct = bytearray(base64.b64decode(doc["ciphertext"]))
    ct[5] ^= 1
    with pytest.raises(errors.PackageSecretError):
        open_package(
            json.dumps({**doc, "ciphertext": base64.b64encode(ct).decode()}).encode(), passphrase=PASSPHRASE
        )
    # a header naming another AID (or another provider) no longer opens: the header is authenticated
    forged = {**doc, "aids": [city_aps["C"].aid]}
    with pytest.raises(errors.PackageSecretError):
        open_package(json.dumps(forged).encode(), passphrase=PASSPHRASE)
    relabelled = {**doc, "provider": {"id": str(world.shop.pk), "name": world.shop.name}}
    with pytest.raises(errors.PackageSecretError):
        open_package(
            json.dumps(relabelled).encode(), passphrase=PASSPHRASE, expected_provider=str(world.shop.pk)
        )
    with pytest.raises(errors.KeyPackageRefusedError):
        open_package(b"not json", passphrase=PASSPHRASE)
    with pytest.raises(errors.KeyPackageRefusedError):  # work factor beyond the limit
        costly = {**doc, "protection": {**doc["protection"], "n": 2**24}}
        open_package(json.dumps(costly).encode(), passphrase=PASSPHRASE)


def test_another_providers_package_refused(world, city_aps):
    shop_ap = approve(world, world.shop, world.shop_admin, "ポイント", type="C")
    data = export(world, world.shop, world.shop_admin, [shop_ap], passphrase=PASSPHRASE)
    with pytest.raises(errors.WrongProviderError):
        open_package(data, passphrase=PASSPHRASE, expected_provider=str(world.city.pk))
    # and the shop cannot export the city's APs at all
    with pytest.raises(Exception, match="承認済のカードAP"):
        export(world, world.shop, world.shop_admin, [city_aps["A"]], passphrase=PASSPHRASE)


def test_public_key_package(world, city_aps):
    private = X25519PrivateKey.generate()
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    row = services.register_package_key(
        provider=world.city, actor=world.city_admin, name="業務サーバ", public_key=pem
    )
    data = export(world, world.city, world.city_admin, [city_aps["A"]], recipient_id=row.pk)
    pem_private = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    package = open_package(data, private_key=load_private_key(pem_private))
    assert package.get(city_aps["A"].aid).key == services.current_key(city_aps["A"])[1]
    with pytest.raises(errors.PackageSecretError):
        open_package(data, private_key=X25519PrivateKey.generate())
    with pytest.raises(errors.PackageSecretError):
        open_package(data, passphrase=PASSPHRASE)
    # the shop cannot encrypt to the city's key
    shop_ap = approve(world, world.shop, world.shop_admin, "ポイント", type="C")
    with pytest.raises(Exception, match="公開鍵"):
        export(world, world.shop, world.shop_admin, [shop_ap], recipient_id=row.pk)


def test_export_page_is_for_provider_admins_after_reauthentication(world, city_aps):
    for user in (world.city_operator, world.auditor):
        assert signed_in(user).get(URL).status_code == 403
    admin = signed_in(world.city_admin)
    page = admin.get(URL)
    assert page.status_code == 200 and city_aps["A"].aid in page.content.decode()
    response = admin.post(
        URL,
        {
            "action": "export",
            "card_aps": [city_aps["A"].pk],
            "passphrase": PASSPHRASE,
            "passphrase_again": PASSPHRASE,
        },
    )
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    assert response["Cache-Control"] == "no-store"
    assert open_package(response.content, passphrase=PASSPHRASE).get(city_aps["A"].aid).key
    mismatch = admin.post(
        URL,
        {
            "action": "export",
            "card_aps": [city_aps["A"].pk],
            "passphrase": PASSPHRASE,
            "passphrase_again": "other passphrase!",
        },
    )
    assert "一致しません" in mismatch.content.decode()
    short = admin.post(
        URL,
        {
            "action": "export",
            "card_aps": [city_aps["A"].pk],
            "passphrase": "short",
            "passphrase_again": "short",
        },
    )
    assert "12文字以上" in short.content.decode()
    # the shop's admin sees nothing of the city and cannot export its AP
    shop = signed_in(world.shop_admin)
    assert city_aps["A"].aid not in shop.get(URL).content.decode()
    refused = shop.post(
        URL,
        {
            "action": "export",
            "card_aps": [city_aps["A"].pk],
            "passphrase": PASSPHRASE,
            "passphrase_again": PASSPHRASE,
        },
    )
    assert refused.status_code == 200 and "attachment" not in refused.get("Content-Disposition", "")
    # a code entered too long ago: asked again, nothing exported
    session = admin.session
    session["operators.reauth_at"] = time.time() - 3600
    session.save()
    stale = admin.post(
        URL,
        {
            "action": "export",
            "card_aps": [city_aps["A"].pk],
            "passphrase": PASSPHRASE,
            "passphrase_again": PASSPHRASE,
        },
    )
    assert stale.status_code == 302 and "reauth" in stale["Location"]
    assert AuditEntry.objects.filter(action="card_ap.key_package_exported").count() == 1


def test_register_public_key_page(world):
    private = X25519PrivateKey.generate()
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    admin = signed_in(world.city_admin)
    bad = admin.post(URL, {"action": "register", "name": "x", "public_key": "not a key"})
    assert "X25519" in bad.content.decode()
    ok = admin.post(
        URL, {"action": "register", "name": "業務サーバ", "public_key": base64.b64encode(raw).decode()}
    )
    assert ok.status_code == 302
    assert world.city.package_keys.count() == 1
    assert AuditEntry.objects.filter(action="provider.package_key_registered").exists()
