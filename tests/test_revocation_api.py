"""The providers' REST feed: scoping, cursor, ETag, signed snapshot, rate limit (R6, R1.5)."""

import base64
import datetime as dt
import hashlib
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.core.cache import cache
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from cardap.apikeys import issue_key, revoke_key
from cardap.models import CardAPShare, Provider
from revocation import services
from revocation.models import ProviderPull, RevocationEntry
from tests import factories
from tests.revocation_support import at, fast_passwords, install, write  # noqa: F401

pytestmark = pytest.mark.django_db
DELTA = "/api/v1/revocations/"
SNAPSHOT = "/api/v1/revocations/snapshot/"
SIGNATURE = "/api/v1/revocations/snapshot/signature/"


@pytest.fixture(autouse=True)
def _fresh_throttle():
    cache.clear()
    yield
    cache.clear()


def client_for(provider):
    _, token = issue_key(provider=provider, name="業務システム")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client


@pytest.fixture
def feeds(world, tmp_path):
    """city owns AP1; shop owns AP2; city shares shop's AP3 (active); city was affiliated to shop's
    AP4 (ended); a third provider owns AP5 shared with shop. One card carries them all."""
    other = Provider.objects.create(name="第三者", kind="private", status="live")
    today = timezone.localdate()
    aps = {
        "city": factories.card_ap(world.city, "city"),
        "shop": factories.card_ap(world.shop, "shop"),
        "shared": factories.card_ap(world.shop, "shared"),
        "ended": factories.card_ap(world.shop, "ended"),
        "other": factories.card_ap(other, "other"),
    }
    CardAPShare.objects.create(
        card_ap=aps["shared"], provider=world.city, role="shared", since=dt.date(2026, 11, 2)
    )
    CardAPShare.objects.create(
        card_ap=aps["ended"],
        provider=world.city,
        role="affiliate",
        since=dt.date(2026, 1, 1),
        until=today - dt.timedelta(days=1),
    )
    CardAPShare.objects.create(
        card_ap=aps["other"], provider=world.shop, role="affiliate", since=dt.date(2026, 1, 1)
    )
    for name, ap in aps.items():
        install("C0FFEE01", ap, f"{name}-user-1")
        install("C0FFEE02", ap, f"{name}-user-2")
    install("c0ffee03", aps["city"], "city-user-3")  # lower-case identifier from another writer
    services.apply_feed(
        path=write(
            tmp_path,
            1,
            [
                ("C0FFEE01", "suspended", "lost", at(1, 9)),  # before city's share of AP3 started
                ("C0FFEE02", "suspended", "stolen", at(3, 9)),
                ("C0FFEE03", "revoked", "reissued", at(3, 10)),
            ],
        )
    )
    services.apply_feed(path=write(tmp_path, 2, [("C0FFEE01", "resumed", "found", at(4, 9))]))
    return aps


def all_entries(client, limit=1000):
    out, after = [], 0
    while True:
        body = client.get(DELTA, {"after": after, "limit": limit}).json()
        out.extend(body["entries"])
        if not body["has_more"]:
            return out
        after = body["next"]


def test_provider_sees_only_its_own_and_currently_shared_entries(world, feeds):
    city = all_entries(client_for(world.city))
    users = {(e["aid"], e["user_number"], e["status"]) for e in city}
    aid = {k: ap.aid for k, ap in feeds.items()}
    assert users == {
        (aid["city"], "city-user-1", "suspended"),
        (aid["city"], "city-user-2", "suspended"),
        (aid["city"], "city-user-3", "revoked"),
        (aid["city"], "city-user-1", "resumed"),
        # shared AP: only from the share's start day (the 1 Nov suspension is before it)
        (aid["shared"], "shared-user-2", "suspended"),
        (aid["shared"], "shared-user-1", "resumed"),
    }
    assert not any(e["aid"] in (aid["shop"], aid["ended"], aid["other"]) for e in city)
    shop_users = {e["user_number"] for e in all_entries(client_for(world.shop))}
    assert shop_users == {
        "shop-user-1",
        "shop-user-2",
        "shared-user-1",
        "shared-user-2",
        "ended-user-1",
        "ended-user-2",
        "other-user-1",
        "other-user-2",
    }


def body_of(response):
    """The bytes of an answer, streamed (the snapshot) or not."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def test_no_card_identifier_or_foreign_user_in_any_answer(world, feeds):
    client = client_for(world.city)
    raw = client.get(DELTA, {"limit": 10000}).content.decode() + body_of(client.get(SNAPSHOT)).decode()
    assert "C0FFEE" not in raw.upper()
    for foreign in ("shop-user", "ended-user", "other-user"):
        assert foreign not in raw


def test_share_ending_hides_entries(world, feeds):
    client = client_for(world.city)
    assert any(e["aid"] == feeds["shared"].aid for e in all_entries(client))
    CardAPShare.objects.filter(card_ap=feeds["shared"]).update(
        until=timezone.localdate() - dt.timedelta(days=1)
    )
    assert not any(e["aid"] == feeds["shared"].aid for e in all_entries(client))
    snapshot = json.loads(body_of(client.get(SNAPSHOT)))
    assert not any(e["aid"] == feeds["shared"].aid for e in snapshot["entries"])


def test_cursor_pages_are_strictly_increasing_and_complete(world, feeds):
    client = client_for(world.city)
    whole = client.get(DELTA, {"limit": 10000}).json()["entries"]
    paged = all_entries(client, limit=2)
    assert [e["seq"] for e in paged] == [e["seq"] for e in whole]
    seqs = [e["seq"] for e in paged]
    assert seqs == sorted(set(seqs))
    page = client.get(DELTA, {"after": seqs[1], "limit": 2}).json()
    assert [e["seq"] for e in page["entries"]] == seqs[2:4]
    last = client.get(DELTA, {"after": seqs[-1]}).json()
    assert last == {"entries": [], "cursor": seqs[-1], "next": None, "has_more": False, "feed": 2}


def test_etag_304_until_a_new_feed(world, feeds, tmp_path):
    client = client_for(world.city)
    first = client.get(DELTA, {"after": 0})
    assert first.status_code == 200
    etag = first["ETag"]
    assert "max-age=" in first["Cache-Control"] and "private" in first["Cache-Control"]
    again = client.get(DELTA, {"after": 0}, HTTP_IF_NONE_MATCH=etag)
    assert again.status_code == 304 and again["ETag"] == etag
    services.apply_feed(path=write(tmp_path / "n", 3, [("C0FFEE02", "resumed", "found", at(5, 9))]))
    changed = client.get(DELTA, {"after": 0}, HTTP_IF_NONE_MATCH=etag)
    assert changed.status_code == 200 and changed["ETag"] != etag


def test_cache_control_matches_sync_schedule(settings):
    from revocation.api import cache_seconds

    settings.REVOCATION_SYNC_TIME = "04:30"
    jst = dt.timezone(dt.timedelta(hours=9))
    assert cache_seconds(dt.datetime(2026, 11, 29, 4, 0, tzinfo=jst)) == 90 * 60  # until 05:30
    assert cache_seconds(dt.datetime(2026, 11, 29, 6, 0, tzinfo=jst)) == (23 * 60 + 30) * 60


def verify_snapshot(client, body):
    """What a provider does, with the published key alone: verify the detached signature of the
    manifest, then that the manifest names the body's SHA-256 and size."""
    key = client.get("/api/v1/revocations/public-key/").json()
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key_b64"]))
    signed = client.get(SIGNATURE).json()
    assert signed["algorithm"] == "Ed25519" and signed["key_id"] == key["key_id"]
    public.verify(base64.b64decode(signed["signature"]), signed["manifest"].encode())  # raises if wrong
    manifest = json.loads(signed["manifest"])
    assert manifest["format"] == "cardap-revocation-snapshot-signature/1"
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest() and manifest["size"] == len(body)
    return public, signed, manifest


def test_snapshot_signed_and_verifiable_with_published_key(world, feeds):
    client = client_for(world.city)
    response = client.get(SNAPSHOT)
    assert response.status_code == 200 and response.streaming
    body = body_of(response)
    public, signed, manifest = verify_snapshot(client, body)
    # A forged manifest (another body's digest) does not verify.
    forged = signed["manifest"].replace(manifest["sha256"], hashlib.sha256(b"{}").hexdigest())
    with pytest.raises(InvalidSignature):
        public.verify(base64.b64decode(signed["signature"]), forged.encode())
    parsed = json.loads(body)
    current = {(e["aid"], e["user_number"], e["status"]) for e in parsed["entries"]}
    aid = feeds["city"].aid
    assert current == {
        (aid, "city-user-2", "suspended"),
        (aid, "city-user-3", "revoked"),
        (feeds["shared"].aid, "shared-user-2", "suspended"),
    }
    assert parsed["count"] == 3
    assert parsed["as_of_seq"] == max(e["seq"] for e in all_entries(client))
    assert body_of(client.get(SNAPSHOT)) == body  # same content, same bytes: the signature holds
    assert client.get(SNAPSHOT, HTTP_IF_NONE_MATCH=manifest["etag"]).status_code == 304


def test_snapshot_signature_follows_a_new_feed(world, feeds, tmp_path):
    client = client_for(world.city)
    before = body_of(client.get(SNAPSHOT))
    _, _, old = verify_snapshot(client, before)
    services.apply_feed(path=write(tmp_path / "n", 3, [("C0FFEE02", "resumed", "found", at(5, 9))]))
    after = body_of(client.get(SNAPSHOT))
    assert after != before
    _, _, new = verify_snapshot(client, after)
    assert new["etag"] != old["etag"]
    assert client.get(SNAPSHOT, HTTP_IF_NONE_MATCH=old["etag"]).status_code == 200
    assert {e["user_number"] for e in json.loads(after)["entries"]} == {"city-user-3"}


def test_empty_snapshot_is_valid_signed_json(world):
    client = client_for(world.city)  # a provider with no card AP at all
    body = body_of(client.get(SNAPSHOT))
    assert json.loads(body) == {
        "provider": world.city.name,
        "feed": None,
        "as_of_seq": None,
        "entries": [],
        "count": 0,
    }
    verify_snapshot(client, body)


def test_last_pull_recorded(world, feeds):
    client = client_for(world.city)
    body = client.get(DELTA, {"limit": 3}).json()
    pull = ProviderPull.objects.get(provider=world.city)
    assert pull.kind == "delta" and pull.last_seq == body["cursor"] and pull.pulls == 1
    client.get(SNAPSHOT)
    pull.refresh_from_db()
    assert pull.kind == "snapshot" and pull.pulls == 2
    assert not ProviderPull.objects.filter(provider=world.shop).exists()


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "x"}, "after"),
        ({"after": -1}, "after"),
        ({"limit": 0}, "limit"),
        ({"limit": 10001}, "limit"),
    ],
)
def test_bad_parameters_get_precise_400(world, feeds, params, field):
    response = client_for(world.city).get(DELTA, params)
    assert response.status_code == 400
    assert field in response.json()


def test_unauthenticated_revoked_key_and_operator_session_refused(world, feeds, login):
    assert APIClient().get(DELTA).status_code == 401
    key, token = issue_key(provider=world.city, name="k")
    revoke_key(key=key)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    response = client.get(DELTA)
    assert response.status_code == 401 and "失効" in response.json()["detail"]
    # A signed-in operator (session + OTP) is not a business system.
    assert login(world.city_admin).get(DELTA).status_code == 401
    assert login(world.jlis).get(SNAPSHOT).status_code == 401


def test_provider_not_live_refused(world, feeds):
    client = client_for(world.shop)
    Provider.objects.filter(pk=world.shop.pk).update(status=Provider.Status.SUSPENDED)
    assert client.get(DELTA).status_code == 401


def test_allowlist_applies_to_the_feed(world, feeds):
    _, token = issue_key(provider=world.city, name="k", allowed_networks=["192.0.2.0/24"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(DELTA, REMOTE_ADDR="198.51.100.7").status_code == 403
    assert client.get(DELTA, REMOTE_ADDR="192.0.2.7").status_code == 200


def test_rate_limit_per_key_with_clear_429(world, feeds, settings):
    settings.REVOCATION_API_RATE = "3/min"
    city, shop = client_for(world.city), client_for(world.shop)
    assert [city.get(DELTA).status_code for _ in range(3)] == [200, 200, 200]
    limited = city.get(DELTA)
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert "3/min" in limited.json()["detail"]
    assert shop.get(DELTA).status_code == 200  # another key has its own budget


def test_english_error_messages(world, feeds):
    response = APIClient().get(DELTA, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 401


def test_entries_sequence_is_the_stored_order(world, feeds):
    seqs = list(RevocationEntry.objects.order_by("id").values_list("id", flat=True))
    assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))


def test_public_key_is_public_and_matches_the_signing_key(world):
    from revocation import keys

    body = APIClient().get("/api/v1/revocations/public-key/").json()
    assert body["algorithm"] == "Ed25519"
    assert body["key_id"] == keys.key_id(keys.signing_public_key())
    assert body["public_key_pem"].startswith("-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize("token", ["cak_\x00abc_def", "cak_zz%zz_x", "cak_" + "a" * 40 + "_x", "cak__"])
def test_garbage_keys_are_refused_not_server_errors(world, token):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    assert client.get(DELTA).status_code == 401


def test_readme_provider_client_example_runs_and_verifies(live_server, tmp_path, world, capsys):
    """The README's provider client, run as written against a live server: it pages the deltas,
    fetches the streamed snapshot and its detached signature, and verifies them."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    code = next(
        block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "snapshot/signature/" in block
    )
    ap = factories.card_ap(world.city, "readme")
    install("C0FFEE21", ap, "readme-user-1")
    install("C0FFEE22", ap, "readme-user-2")
    services.apply_feed(path=write(tmp_path, 1, [("C0FFEE21", "revoked", "lost", at(3, 9))]))
    _, token = issue_key(provider=world.city, name="README")
    base = live_server.url + "/api/v1/revocations/"
    code = code.replace('"https://cardap.example.jp/api/v1/revocations/"', repr(base)).replace(
        '"cak_…"', repr(token)
    )
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)  # raises if the signature does not verify
    assert namespace["snapshot"]["entries"] == [
        {
            "aid": ap.aid,
            "user_number": "readme-user-1",
            "status": "revoked",
            "reason": "lost",
            "effective_at": at(3, 9).isoformat(),
        }
    ]
    assert "readme-user-1 revoked lost" in capsys.readouterr().out


@pytest.mark.skipif(connection.vendor != "postgresql", reason="compares PostgreSQL's rendering")
def test_page_rendered_by_postgresql_equals_the_python_rendering(world, tmp_path):
    """The fast path (PostgreSQL writes the JSON) and the portable one give the same page, with
    text that needs escaping and a time with a fraction of a second."""
    from revocation import selectors

    ap = factories.card_ap(world.city, "render")
    odd = ['quote " and \\ backslash', "改行\nと\tタブ", "emoji 🎴 </script>"]
    for n, user in enumerate(odd):
        install(f"ABCD{n:02X}", ap, user)
    services.apply_feed(
        path=write(
            tmp_path,
            1,
            [
                (f"ABCD{n:02X}", "suspended", "lost", at(2, 9) + dt.timedelta(microseconds=250_000))
                for n in range(3)
            ],
        )
    )
    scope = selectors.scope_for(world.city)
    for after, limit in ((0, 10), (0, 2), (0, 3)):
        fast = selectors._delta_page_sql(scope, after=after, limit=limit)
        portable = selectors._delta_page_python(scope, after=after, limit=limit)
        assert (fast.cursor, fast.has_more) == (portable.cursor, portable.has_more)
        a, b = json.loads(fast.entries_json), json.loads(portable.entries_json)
        for entry in a + b:
            entry["effective_at"] = dt.datetime.fromisoformat(entry["effective_at"])
        assert a == b and len(a) == min(limit, 3)
    assert {e["user_number"] for e in json.loads(fast.entries_json)} == set(odd)
    assert fast.has_more is False and selectors._delta_page_sql(scope, after=0, limit=2).has_more is True


def test_snapshot_streams_under_asgi_part_by_part(world, feeds, monkeypatch):
    """Under the ASGI server the snapshot is an asynchronous stream: Django reads a synchronous
    one whole into memory before sending it there. Parts arrive one at a time (one per chunk of
    the server-side cursor), the bytes are those a WSGI client gets, and the signature holds."""
    import warnings

    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    from revocation import selectors

    monkeypatch.setattr(selectors, "SNAPSHOT_CHUNK", 1)
    wsgi_body = body_of(client_for(world.city).get(SNAPSHOT))
    _, token = issue_key(provider=world.city, name="ASGI")

    async def fetch():
        response = await AsyncClient().get(SNAPSHOT, headers={"Authorization": f"Bearer {token}"})
        parts = [part async for part in response.streaming_content]
        return response, parts

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "must consume synchronous iterators" would be raised
        response, parts = async_to_sync(fetch)()
    assert response.status_code == 200 and response.is_async
    assert b"".join(parts) == wsgi_body
    assert len(parts) == 2 + json.loads(wsgi_body)["count"]  # head, one part per entry, tail
    verify_snapshot(client_for(world.city), wsgi_body)


def test_stored_wire_form_is_what_the_columns_give(world, feeds):
    """apply_feed writes each entry's wire form with it; a page built from it is the very bytes
    one rendered from the columns (the entries written without it), and the Python rendering
    (other databases) says the same: same fields, same instants, Japan time."""
    assert not RevocationEntry.objects.filter(wire="").exists()
    stored = client_for(world.city).get(DELTA, {"limit": 10000}).content
    RevocationEntry.objects.update(wire="")
    assert client_for(world.city).get(DELTA, {"limit": 10000}).content == stored
    from revocation import selectors

    scope = selectors.scope_for(world.city)
    by_python = json.loads(selectors._delta_page_python(scope, after=0, limit=10000).entries_json)
    by_sql = json.loads(stored)["entries"]
    assert len(by_sql) == len(by_python) == 6
    for sql, py in zip(by_sql, by_python, strict=True):
        assert {k: v for k, v in sql.items() if k != "effective_at"} == {
            k: v for k, v in py.items() if k != "effective_at"
        }
        assert dt.datetime.fromisoformat(sql["effective_at"]) == dt.datetime.fromisoformat(py["effective_at"])
        assert sql["effective_at"].endswith("+09:00")


def test_user_numbers_are_escaped_in_the_wire_form(world, tmp_path):
    ap = factories.card_ap(world.city, "city")
    tricky = 'a"b\\c\u3042\n'
    install("C0FFEE09", ap, tricky)
    services.apply_feed(path=write(tmp_path, 1, [("C0FFEE09", "suspended", "lost", at(1, 9))]))
    entries = client_for(world.city).get(DELTA).json()["entries"]
    assert [e["user_number"] for e in entries] == [tricky]


def test_a_304_reads_the_key_scope_and_feed_mark_in_one_statement(world, feeds):
    """A 304 runs the API key's statement, which also reads the last applied feed and the
    provider's scope (shared card APs included), and the pull record: nothing else. Its ETag is
    the one scope_for and the feed's own look-up give, and it moves when the scope does."""
    from django.test.utils import CaptureQueriesContext

    from revocation import selectors

    client = client_for(world.city)
    first = client.get(DELTA, {"after": 0, "limit": 100})
    scope = selectors.scope_for(world.city)
    assert scope.shared  # the share in force is part of the scope read with the key
    assert first["ETag"] == selectors.delta_etag(provider=world.city, scope=scope, after=0, limit=100)
    with CaptureQueriesContext(connection) as queries:
        again = client.get(DELTA, {"after": 0, "limit": 100}, HTTP_IF_NONE_MATCH=first["ETag"])
    assert again.status_code == 304
    statements = [q["sql"] for q in queries.captured_queries]
    assert len(statements) == 2, statements
    assert "JOIN LATERAL" in statements[0] and statements[1].lstrip().startswith(("SET LOCAL", "UPDATE"))
    assert ProviderPull.objects.get(provider=world.city).pulls == 2
    CardAPShare.objects.filter(provider=world.city).delete()
    assert client.get(DELTA, {"after": 0, "limit": 100}, HTTP_IF_NONE_MATCH=first["ETag"]).status_code == 200
