"""Request → approval → AID → manufactured AP, for types A, C, D and a custom AP; checked with
gpcard's decoder and the DAP public key, not with the code that built them."""

import base64
import hashlib
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from django.core.exceptions import ValidationError
from django.db import connection

from cardap import services
from cardap.models import AIDAllocation, CardAP, CardAPKey, StoredSecret
from gpcard import apdesc
from gpcard.aid import ISD_AID
from operators.models import AuditEntry
from tests.registry_helpers import request_fields
from vcard.bureau import create_card

TEMPLATE = (Path(__file__).resolve().parent.parent / "cardap" / "custom_ap" / "template.yaml").read_text()


def submit(world, provider=None, **fields):
    provider = provider or world.city
    actor = world.city_admin if provider == world.city else world.shop_admin
    return services.submit_request(provider=provider, actor=actor, **request_fields(**fields))


@pytest.mark.django_db
@pytest.mark.parametrize(
    "ap_type,area,read_rule",
    [
        ("A", "local", apdesc.AccessRule.PIN_MUTUAL_AUTH),
        ("C", "extended", apdesc.AccessRule.FREE),
        ("D", "extended", apdesc.AccessRule.PIN_MUTUAL_AUTH_SM),
    ],
)
def test_standard_types_end_to_end(world, ap_type, area, read_rule):
    ap = submit(world, type=ap_type, area=area)
    done = services.approve_request(card_ap_id=ap.pk, actor=world.jlis)
    assert done.status == "approved" and done.reviewed_by == "jlis"
    area_byte = "01" if area == "local" else "02"
    assert done.aid == f"D392F1{area_byte}{done.serial:08X}" and len(bytes.fromhex(done.aid)) == 3 + 1 + 4
    description = bytes.fromhex(done.description_hex)
    decoded = apdesc.CardAPDescription.decode(description)
    assert decoded.ap_type == apdesc.APType(ap_type)
    assert {f.read_rule for f in decoded.files} == {read_rule}
    assert decoded.user_number.length == 16
    assert (decoded.pin_policy is not None) == (ap_type != "C")
    assert done.sha256 == hashlib.sha256(description).hexdigest()
    # 64 + (32 + 16) for the user number file + (32 + data file size)
    data_size = 4 * 32 if ap_type == "A" else (64 if ap_type == "C" else 128)
    assert done.memory_cost == 64 + 32 + 16 + 32 + data_size
    assert done.load_file is None
    assert AIDAllocation.objects.get(aid=done.aid).card_ap == done
    assert CardAPKey.objects.filter(card_ap=done).count() == (0 if ap_type == "C" else 1)
    assert AuditEntry.objects.filter(action="card_ap.approved", target=f"card_ap:{ap.pk}").exists()


@pytest.mark.django_db
def test_custom_ap_end_to_end_load_file_signed_with_the_dap_key(world):
    ap = submit(world, provider=world.shop, type="custom", input_format="yaml", input_file=TEMPLATE)
    done = services.approve_request(card_ap_id=ap.pk, actor=world.jlis)
    assert done.load_file_aid == f"D392F202{done.serial:08X}"
    sd, signature, block = apdesc.parse_load_file(bytes(done.load_file))
    assert sd == ISD_AID
    assert block == bytes.fromhex(done.description_hex)
    # The key a virtual card is personalised with: a demo custom AP must be loadable on it.
    public = load_pem_public_key(create_card().dap_public_key_pem.encode())
    assert apdesc.dap_verify(block, signature, public)
    assert not apdesc.dap_verify(block[:-1] + bytes([block[-1] ^ 1]), signature, public)
    assert done.dap_demo_key is True
    desc = apdesc.CardAPDescription.decode(block)
    assert desc.ap_type == apdesc.APType.CUSTOM and [f.fid for f in desc.files] == [1, 2]
    assert done.sha256 == hashlib.sha256(block).hexdigest()
    # the instance (64 + 32+32 + 32+640) plus the load file data block
    assert done.memory_cost == 64 + (32 + 32) + (32 + 640) + len(block)
    assert done.pin_source == "holder" and done.user_number_length == 16


@pytest.mark.django_db
def test_configured_dap_key_is_used(world, settings, tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / "dap.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    settings.DAP_KEY_PATH = str(path)
    ap = submit(world, provider=world.shop, type="custom", input_format="yaml", input_file=TEMPLATE)
    done = services.approve_request(card_ap_id=ap.pk, actor=world.jlis)
    _sd, signature, block = apdesc.parse_load_file(bytes(done.load_file))
    assert apdesc.dap_verify(block, signature, key.public_key()) and not done.dap_demo_key


@pytest.mark.django_db
def test_ap_keys_are_encrypted_at_rest_and_rotatable(world):
    ap = services.approve_request(card_ap_id=submit(world, type="D").pk, actor=world.jlis)
    version, key = services.current_key(ap)
    assert version == 1 and len(key) == 16
    stored = StoredSecret.objects.get(kind="ap", name=CardAPKey.objects.get(card_ap=ap).key_ref)
    assert key.hex() not in stored.ciphertext.lower() and key not in base64.b64decode(stored.ciphertext)
    new = services.rotate_ap_key(card_ap=ap, actor=world.jlis)
    assert new.version == 2
    version2, key2 = services.current_key(ap)
    assert version2 == 2 and key2 != key
    assert services.key_version(ap, 1) == key  # cards already carrying v1 stay readable
    entries = AuditEntry.objects.filter(target=f"card_ap:{ap.pk}")
    assert not any(key.hex() in str(e.detail).lower() for e in entries)


@pytest.mark.django_db
def test_aids_are_never_reused_after_retirement_or_deletion(world):
    first = services.approve_request(card_ap_id=submit(world).pk, actor=world.jlis)
    services.retire_card_ap(card_ap=first, actor=world.jlis)
    old_aid = first.aid
    CardAP.objects.filter(pk=first.pk).delete()
    second = services.approve_request(card_ap_id=submit(world).pk, actor=world.jlis)
    assert second.aid != old_aid and second.serial > first.serial
    assert AIDAllocation.objects.get(aid=old_aid).card_ap is None


@pytest.mark.django_db
def test_rejection_needs_a_reason_and_reviewed_requests_are_final(world):
    ap = submit(world)
    with pytest.raises(ValidationError, match="却下理由"):
        services.reject_request(card_ap_id=ap.pk, actor=world.jlis, reason="  ")
    services.reject_request(card_ap_id=ap.pk, actor=world.jlis, reason="目的が不明確です")
    ap.refresh_from_db()
    assert ap.status == "rejected" and ap.rejection_reason == "目的が不明確です" and ap.aid is None
    with pytest.raises(ValidationError, match="承認できません"):
        services.approve_request(card_ap_id=ap.pk, actor=world.jlis)


@pytest.mark.django_db
def test_request_refusals_leave_nothing_stored(world):
    with pytest.raises(ValidationError, match="暗証番号"):
        submit(world, type="A", pin_source="")
    with pytest.raises(ValidationError, match="C型は暗証番号を使いません"):
        submit(world, type="C", pin_source="holder")
    with pytest.raises(ValidationError, match="住民票コード"):
        submit(world, user_number_length=11)
    with pytest.raises(ValidationError, match="レコード"):
        submit(world, type="A", structure="binary", file_size=10)
    with pytest.raises(ValidationError, match="容量"):
        submit(world, type="C", area="local", record_count=None, file_size=9000)
    bad = TEMPLATE.replace("size: 32 ", "size: 70000 ")
    with pytest.raises(ValidationError, match=r"18行目: files\[0\]\.size: 70000 は上限 32767"):
        submit(world, provider=world.shop, type="custom", input_format="yaml", input_file=bad)
    assert not CardAP.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_concurrent_approvals_get_distinct_aids(world):
    if connection.vendor != "postgresql":
        pytest.skip("row locks are a PostgreSQL matter; SQLite serialises all writers")
    ids = [submit(world, name=f"並行{i}").pk for i in range(8)]
    barrier = threading.Barrier(len(ids))
    results, errors = [], []

    def approve(pk):
        from django.db import connections

        try:
            barrier.wait()
            results.append(services.approve_request(card_ap_id=pk, actor=world.jlis).aid)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=approve, args=(pk,)) for pk in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == len(set(results)) == len(ids)
    assert sorted(AIDAllocation.objects.values_list("serial", flat=True)) == list(range(1, len(ids) + 1))
