"""Taking in the call centre's feed: semantics, idempotence, atomicity and every refusal (R6)."""

import base64
import json
import random

import pytest
from django.core import mail

from revocation import feedfile, services
from revocation.models import CardStatus, Feed, RevocationEntry
from tests import factories
from tests.revocation_support import at, fast_passwords, install, write  # noqa: F401

pytestmark = pytest.mark.django_db


def statuses():
    return {c.card_id: (c.status, c.reason, c.effective_at) for c in CardStatus.objects.all()}


def test_status_semantics_suspend_resume_revoke_out_of_order(tmp_path):
    services.apply_feed(
        path=write(
            tmp_path,
            1,
            [
                ("AA01", "suspended", "lost", at(1, 9)),
                ("AA02", "suspended", "stolen", at(1, 9)),
                ("AA03", "revoked", "reissued", at(1, 9)),
                ("AA04", "suspended", "lost", at(1, 12)),
            ],
        )
    )
    feed2 = services.apply_feed(
        path=write(
            tmp_path,
            2,
            [
                ("AA01", "resumed", "found", at(2, 8)),  # suspension is reversible
                ("AA02", "revoked", "other", at(2, 8)),  # revocation after suspension
                ("AA03", "resumed", "found", at(3, 8)),  # revocation is final, even for a later event
                ("AA04", "resumed", "found", at(1, 10)),  # older than the current status: ignored
                ("AA05", "resumed", "found", at(2, 8)),  # unknown card: kept
            ],
        )
    )
    assert feed2.state == Feed.State.APPLIED
    s = statuses()
    assert s["AA01"][:2] == ("resumed", "found")
    assert s["AA02"][:2] == ("revoked", "other")
    assert s["AA03"][:2] == ("revoked", "reissued")
    assert s["AA04"][:2] == ("suspended", "lost") and s["AA04"][2] == at(1, 12)
    assert s["AA05"][:2] == ("resumed", "found")
    assert feed2.cards_changed == 3


def test_revocation_earlier_than_current_suspension_still_revokes(tmp_path):
    services.apply_feed(path=write(tmp_path, 1, [("BB01", "suspended", "lost", at(5, 12))]))
    services.apply_feed(path=write(tmp_path, 2, [("BB01", "revoked", "stolen", at(5, 9))]))
    assert statuses()["BB01"] == ("revoked", "stolen", at(5, 9))


def test_events_within_one_feed_resolved_by_time_not_line_order(tmp_path):
    services.apply_feed(
        path=write(
            tmp_path,
            1,
            [
                ("CC01", "resumed", "found", at(3, 12)),
                ("CC01", "suspended", "lost", at(3, 9)),
                ("CC02", "suspended", "lost", at(3, 9)),
                ("CC02", "suspended", "stolen", at(3, 9)),  # same time: the later line wins
            ],
        )
    )
    s = statuses()
    assert s["CC01"][:2] == ("resumed", "found")
    assert s["CC02"][:2] == ("suspended", "stolen")


def reference_fold(feeds):
    """Independent statement of the rules, one event at a time in time order per feed."""
    state = {}
    for events in feeds:
        reduced = {}
        for line, (card, status, reason, when) in enumerate(events):
            cur = reduced.get(card)
            if cur is None:
                reduced[card] = (status, reason, when, line)
            elif cur[0] == "revoked":
                if status == "revoked" and when < cur[2]:
                    reduced[card] = (status, reason, when, line)
            elif status == "revoked" or (when, line) > (cur[2], cur[3]):
                reduced[card] = (status, reason, when, line)
        for card, (status, reason, when, _) in reduced.items():
            cur = state.get(card)
            if cur is None or (cur[0] != "revoked" and (status == "revoked" or when > cur[2])):
                state[card] = (status, reason, when)
    return state


def test_random_feeds_match_reference_rules(tmp_path):
    rng = random.Random(7)
    feeds = []
    for _ in range(4):
        events = []
        for _ in range(60):
            status = rng.choice(feedfile.STATUSES)
            events.append(
                (
                    f"{rng.randrange(15):04X}",
                    status,
                    rng.choice(feedfile.REASONS),
                    at(rng.randrange(1, 6), rng.randrange(24), rng.randrange(60), rng.randrange(60)),
                )
            )
        feeds.append(events)
    for number, events in enumerate(feeds, start=1):
        assert services.apply_feed(path=write(tmp_path, number, events)).state == Feed.State.APPLIED
    assert statuses() == reference_fold(feeds)


def test_same_feed_twice_changes_nothing(tmp_path):
    ap = factories.card_ap(
        pytest.importorskip("cardap.models").Provider.objects.create(name="P", kind="private", status="live")
    )
    install("DD01", ap, "U-1")
    path = write(tmp_path, 1, [("DD01", "suspended", "lost", at(1, 9))])
    assert services.apply_feed(path=path).state == Feed.State.APPLIED
    before = (statuses(), list(RevocationEntry.objects.values_list("id", "status")))
    again = services.apply_feed(path=path)
    assert again.state == Feed.State.DUPLICATE
    assert (statuses(), list(RevocationEntry.objects.values_list("id", "status"))) == before
    assert len(mail.outbox) == 0


def test_entries_for_live_installations_only_unknown_cards_kept(tmp_path, world):
    ap_city, ap_shop = factories.card_ap(world.city), factories.card_ap(world.shop)
    install("EE01", ap_city, "C-1")
    install("EE01", ap_shop, "S-1")
    install("EE02", ap_city, "C-2", state="deleted")
    feed = services.apply_feed(
        path=write(
            tmp_path,
            1,
            [
                ("EE01", "suspended", "lost", at(1, 9)),
                ("EE02", "suspended", "lost", at(1, 9)),
                ("EE03", "revoked", "expired", at(1, 9)),
            ],
        )
    )
    entries = list(RevocationEntry.objects.order_by("id").values_list("card_ap_id", "user_number", "status"))
    assert sorted(entries) == sorted([(ap_city.id, "C-1", "suspended"), (ap_shop.id, "S-1", "suspended")])
    assert feed.entries_created == 2 and feed.cards_changed == 3
    assert set(statuses()) == {"EE01", "EE02", "EE03"}


def test_crash_mid_way_leaves_previous_state_and_rerun_completes(tmp_path, monkeypatch, world):
    ap = factories.card_ap(world.city)
    install("FF01", ap, "C-1")
    services.apply_feed(path=write(tmp_path, 1, [("FF01", "suspended", "lost", at(1, 9))]))
    before = (statuses(), RevocationEntry.objects.count())
    path = write(
        tmp_path, 2, [("FF01", "resumed", "found", at(2, 9)), ("FF02", "revoked", "other", at(2, 9))]
    )
    # The statuses are already upserted when the entry insert fails.
    monkeypatch.setattr(services, "_ENTRIES", "INSERT INTO no_such_table SELECT %s")
    with pytest.raises(Exception):  # noqa: B017 - any database error
        services.apply_feed(path=path)
    assert (statuses(), RevocationEntry.objects.count()) == before
    assert services.last_applied_number() == 1
    monkeypatch.undo()
    assert services.apply_feed(path=path).state == Feed.State.APPLIED
    assert statuses()["FF01"][0] == "resumed" and RevocationEntry.objects.count() == 2


# --- refusals: the whole feed, a precise reason, nothing applied, one notice per incident -------


def assert_rejected(path, code, line=None, match=None):
    before = (statuses(), RevocationEntry.objects.count())
    feed = services.apply_feed(path=path)
    assert feed.state == Feed.State.REJECTED, feed.reason
    assert feed.reason_code == code
    assert feed.reason_line == line
    if match:
        assert match in feed.reason
    assert (statuses(), RevocationEntry.objects.count()) == before
    return feed


def rewrite(path, lines):
    path.write_bytes(b"".join(lines))


def resign(path):
    header = path.read_bytes().split(b"\n", 1)[0]
    sig = feedfile.demo_private_key().sign(header)
    feedfile.signature_path(path).write_text(base64.b64encode(sig).decode())


def good_lines():
    return [feedfile.encode_change(f"AB{i:02X}", "suspended", "lost", at(1, 9)) for i in range(5)]


def test_malformed_row_names_its_line(tmp_path):
    path = write(tmp_path, 1, iter([]))
    lines = good_lines()
    lines[2] = b'{"card":"AB02","status":"suspended","reason":"lost"\n'  # not JSON
    # A correctly signed feed whose body is malformed at line 4 (header is line 1).
    import hashlib

    body = b"".join(lines)
    header = json.dumps(
        {
            "format": feedfile.FORMAT,
            "feed": 1,
            "previous": None,
            "created": at(2).isoformat(),
            "count": 5,
            "sha256": hashlib.sha256(body).hexdigest(),
        },
        separators=(",", ":"),
    ).encode()
    rewrite(path, [header + b"\n", body])
    resign(path)
    assert_rejected(path, "malformed", line=4, match="JSON")
    assert len(mail.outbox) == 1 and "line 4" in mail.outbox[0].body


@pytest.mark.parametrize(
    ("row", "match"),
    [
        (
            b'{"card":"ab02","status":"suspended","reason":"lost","at":"2026-11-01T09:00:00+09:00"}\n',
            "uppercase hex",
        ),
        (b'{"card":"AB02","status":"lost","reason":"lost","at":"2026-11-01T09:00:00+09:00"}\n', "status"),
        (b'{"card":"AB02","status":"revoked","reason":"bored","at":"2026-11-01T09:00:00+09:00"}\n', "reason"),
        (b'{"card":"AB02","status":"revoked","reason":"lost","at":"2026-11-01T09:00:00"}\n', "no UTC offset"),
        (b'{"card":"AB02","status":"revoked","reason":"lost","at":"yesterday"}\n', "ISO 8601"),
        (b'{"card":"AB02","status":"revoked","reason":"lost"}\n', "fields"),
        (b'["AB02","revoked"]\n', "JSON object"),
    ],
)
def test_invalid_fields_refused_with_line(tmp_path, row, match):
    import hashlib

    lines = good_lines()
    lines[2] = row
    body = b"".join(lines)
    path = tmp_path / feedfile.feed_filename(1)
    header = json.dumps(
        {
            "format": feedfile.FORMAT,
            "feed": 1,
            "previous": None,
            "created": at(2).isoformat(),
            "count": 5,
            "sha256": hashlib.sha256(body).hexdigest(),
        },
        separators=(",", ":"),
    ).encode()
    rewrite(path, [header + b"\n", body])
    resign(path)
    assert_rejected(path, "malformed", line=4, match=match)


def test_bad_signature_refused(tmp_path):
    path = write(tmp_path, 1, [("AB01", "suspended", "lost", at(1, 9))])
    other = feedfile.Ed25519PrivateKey.generate()
    header = path.read_bytes().split(b"\n", 1)[0]
    feedfile.signature_path(path).write_text(base64.b64encode(other.sign(header)).decode())
    assert_rejected(path, "bad_signature", line=1)


def test_missing_signature_file_refused(tmp_path):
    path = write(tmp_path, 1, [("AB01", "suspended", "lost", at(1, 9))])
    feedfile.signature_path(path).unlink()
    assert_rejected(path, "bad_signature", match=".sig")


def test_tampered_body_fails_digest(tmp_path):
    path = write(
        tmp_path, 1, [("AB01", "suspended", "lost", at(1, 9)), ("AB02", "revoked", "lost", at(1, 9))]
    )
    path.write_bytes(path.read_bytes().replace(b'"AB02","status":"revoked"', b'"AB02","status":"resumed"'))
    assert_rejected(path, "wrong_digest", line=3)


def test_wrong_count_refused(tmp_path):
    path = write(tmp_path, 1, [("AB01", "suspended", "lost", at(1, 9))])
    header, body = path.read_bytes().split(b"\n", 1)
    obj = json.loads(header)
    obj["count"] = 2
    rewrite(path, [json.dumps(obj, separators=(",", ":")).encode() + b"\n", body])
    resign(path)
    assert_rejected(path, "wrong_count", line=2, match="header says 2 changes, the file has 1")


def test_sequence_gap_and_regression_refused_and_noticed_once(tmp_path):
    assert (
        services.apply_feed(path=write(tmp_path, 1, [("AB01", "suspended", "lost", at(1, 9))])).state
        == "applied"
    )
    assert (
        services.apply_feed(path=write(tmp_path, 2, [("AB01", "resumed", "found", at(2, 9))])).state
        == "applied"
    )
    gap = write(tmp_path, 4, [("AB01", "revoked", "lost", at(3, 9))], previous=3)
    assert_rejected(gap, "gap", match="expected feed 3")
    assert len(mail.outbox) == 1 and "gap" in mail.outbox[0].subject
    assert mail.outbox[0].to == ["jlis-ops@localhost"]
    assert_rejected(gap, "gap")  # the same incident again: recorded, not mailed again
    assert len(mail.outbox) == 1
    wrong_previous = write(tmp_path / "b", 3, [("AB01", "revoked", "lost", at(3, 9))], previous=1)
    assert_rejected(wrong_previous, "gap")
    old = write(tmp_path / "c", 1, [("AB01", "revoked", "lost", at(3, 9))])
    assert_rejected(old, "regression", match="already applied")
    older = services.apply_feed(
        path=write(tmp_path / "d", 0, [("AB01", "revoked", "lost", at(3, 9))], previous=None)
    )
    assert older.reason_code == "regression"
    assert len(mail.outbox) == 4
    assert Feed.objects.filter(state="rejected").count() == 5


def test_oversized_file_refused(tmp_path, settings):
    path = write(tmp_path, 1, [("AB01", "suspended", "lost", at(1, 9))] * 20)
    settings.REVOCATION_FEED_MAX_BYTES = 1024
    assert_rejected(path, "oversized", match="more than the limit 1024")


def test_too_many_changes_and_long_line_refused(tmp_path, settings):
    settings.REVOCATION_FEED_MAX_CHANGES = 3
    path = write(tmp_path, 1, [("AB01", "suspended", "lost", at(1, 9))] * 4)
    assert_rejected(path, "oversized", line=5, match="more than 3 changes")
    settings.REVOCATION_FEED_MAX_CHANGES = 100
    import hashlib

    body = b'{"card":"' + b"A" * 2000 + b'"}\n'
    header = json.dumps(
        {
            "format": feedfile.FORMAT,
            "feed": 1,
            "previous": None,
            "created": at(2).isoformat(),
            "count": 1,
            "sha256": hashlib.sha256(body).hexdigest(),
        },
        separators=(",", ":"),
    ).encode()
    path2 = tmp_path / "x" / feedfile.feed_filename(1)
    path2.parent.mkdir()
    rewrite(path2, [header + b"\n", body])
    resign(path2)
    assert_rejected(path2, "oversized", line=2, match="longer than 1024 bytes")


def test_feed_public_key_is_configurable(tmp_path, settings):
    from revocation import keys

    other = feedfile.Ed25519PrivateKey.generate()
    settings.REVOCATION_FEED_PUBKEY = feedfile.public_key_b64(other.public_key())
    keys.feed_public_key.cache_clear()
    try:
        demo_signed = write(tmp_path, 1, [("AB01", "suspended", "lost", at(1, 9))])
        assert_rejected(demo_signed, "bad_signature", line=1)
        good = feedfile.write_feed(
            tmp_path / "o",
            number=1,
            previous=None,
            changes=[("AB01", "suspended", "lost", at(1, 9))],
            private_key=other,
        )
        assert services.apply_feed(path=good).state == Feed.State.APPLIED
    finally:
        keys.feed_public_key.cache_clear()


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"feed": "7"}, "'feed' must be a non-negative integer"),
        ({"format": "other/9"}, "unknown format"),
        ({"sha256": "XYZ"}, "64 lowercase hex"),
        ({"extra": 1}, "header fields must be exactly"),
        ({"created": "2026-11-01T09:00:00"}, "no UTC offset"),
    ],
)
def test_malformed_but_signed_header_refused_at_line_1(tmp_path, change, match):
    path = write(tmp_path, 1, [("AB01", "suspended", "lost", at(1, 9))])
    header, body = path.read_bytes().split(b"\n", 1)
    obj = {**json.loads(header), **change}
    rewrite(path, [json.dumps(obj, separators=(",", ":")).encode() + b"\n", body])
    resign(path)
    assert_rejected(path, "malformed", line=1, match=match)


def test_production_requires_real_keys_and_refuses_the_demo_key(settings):
    from revocation.checks import revocation_keys

    settings.DEMO, settings.DEBUG = False, False
    settings.REVOCATION_FEED_PUBKEY, settings.REVOCATION_SIGNING_KEY = "", ""
    assert {e.id for e in revocation_keys()} == {"revocation.E001", "revocation.E002"}
    settings.REVOCATION_FEED_PUBKEY = feedfile.public_key_b64(feedfile.demo_private_key().public_key())
    settings.REVOCATION_SIGNING_KEY = base64.b64encode(b"k" * 32).decode()
    errors = revocation_keys()
    assert [e.id for e in errors] == ["revocation.E001"] and "demo key" in errors[0].msg
    settings.REVOCATION_FEED_PUBKEY = "not base64!"
    assert [e.id for e in revocation_keys()] == ["revocation.E001"]
    settings.DEMO = True
    assert [e.id for e in revocation_keys()] == ["revocation.E001"]  # malformed even in the demo
    settings.REVOCATION_FEED_PUBKEY, settings.REVOCATION_SIGNING_KEY = "", ""
    assert revocation_keys() == []  # the demo falls back to the DEMO-ONLY keys


def signed_body(tmp_path, lines, number=1):
    """A feed file holding exactly these change lines (bytes), correctly signed."""
    import hashlib

    body = b"".join(lines)
    header = json.dumps(
        {
            "format": feedfile.FORMAT,
            "feed": number,
            "previous": number - 1 or None,
            "created": at(2).isoformat(),
            "count": len(lines),
            "sha256": hashlib.sha256(body).hexdigest(),
        },
        separators=(",", ":"),
    ).encode()
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / feedfile.feed_filename(number)
    rewrite(path, [header + b"\n", body])
    resign(path)
    return path


def test_times_in_every_accepted_iso_form_mean_the_same_instant(tmp_path):
    """The canonical form is staged as sent; other ISO 8601 forms that Python accepts (Z, basic
    format, a fraction, an offset without colon) are staged as the same instant in UTC."""
    import datetime as dt

    forms = {
        "AB01": "2026-11-01T09:00:00+09:00",
        "AB02": "2026-11-01T00:00:00Z",
        "AB03": "20261101T090000+0900",
        "AB04": "2026-11-01T09:00:00.250+09:00",
        "AB05": "2026-11-01 00:00:00+00:00",
        "AB06": "2026-10-31T19:00:00-05:00",
    }
    lines = [
        json.dumps(
            {"card": c, "status": "suspended", "reason": "lost", "at": t}, separators=(",", ":")
        ).encode()
        + b"\n"
        for c, t in forms.items()
    ]
    feed = services.apply_feed(path=signed_body(tmp_path, lines))
    assert feed.state == Feed.State.APPLIED, feed.reason
    s = statuses()
    for card in forms:
        expected = at(1, 9) + (dt.timedelta(milliseconds=250) if card == "AB04" else dt.timedelta())
        assert s[card][2] == expected, card


def test_line_length_limit_is_exact_and_a_fault_after_a_chunk_boundary_names_its_line(tmp_path):
    """1024 bytes with the newline is accepted, 1025 refused; lines are read in 1 MiB chunks, so
    a fault beyond the first chunk must still name its own line."""
    base = {"card": "AB01", "status": "suspended", "reason": "lost", "at": "2026-11-01T09:00:00+09:00"}
    plain = json.dumps(base, separators=(",", ":"))
    exact = (plain[:-1] + " " * (1023 - len(plain)) + "}").encode() + b"\n"  # padded with JSON spaces
    assert len(exact) == 1024
    assert services.apply_feed(path=signed_body(tmp_path, [exact])).state == Feed.State.APPLIED
    too_long = exact[:-2] + b" }\n"
    assert len(too_long) == 1025
    assert_rejected(signed_body(tmp_path / "b", [too_long], number=2), "oversized", line=2)
    good = feedfile.encode_change("AB02", "suspended", "lost", at(1, 9))
    count = (1 << 20) // len(good) + 10  # past the first chunk
    lines = [good] * count + [
        b'{"card":"AB02","status":"lost","reason":"lost","at":"2026-11-01T09:00:00+09:00"}\n'
    ]
    assert_rejected(signed_body(tmp_path / "c", lines, number=2), "malformed", line=count + 2, match="status")


def test_the_entries_table_has_fresh_statistics_after_a_feed(tmp_path, world):
    """The delta page's plan depends on the planner's row counts for the entries table: with
    none (a table never analysed, autovacuum not yet run or off) it sorted all of a provider's
    entries instead of reading them in seq order. The feed that writes them analyses it."""
    from django.db import connection

    ap = factories.card_ap(world.city)
    numbers = [f"EF{n:02d}" for n in range(37)]
    for n in numbers:
        install(n, ap, f"U-{n}")
    services.apply_feed(path=write(tmp_path, 1, [(n, "suspended", "lost", at(1, 9)) for n in numbers]))
    with connection.cursor() as cursor:
        table = RevocationEntry._meta.db_table
        cursor.execute("SELECT reltuples FROM pg_class WHERE oid = %s::regclass", [table])
        assert cursor.fetchone()[0] == RevocationEntry.objects.count() == 37
