"""The card call centre's revocation feed file: writing, signature check and streamed parsing.

Framework-free (no Django import) so the demo, the benchmark and the call centre side can use it
alone: ``python -m revocation.feedfile --help``. Format: docs/revocation-feed.md.

A feed is a JSON Lines file ``revocation-feed-<number:08d>.jsonl``: a header line, then one status
change per line. The detached Ed25519 signature (``<file>.sig``, base64) covers the header line's
bytes; the header carries the SHA-256 of every body byte, so a reader verifies the signature first
and the body while streaming it, without holding the file in memory (Ed25519 signs whole
messages; signing the header with the body digest is the standard detached-manifest pattern).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import random
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

FORMAT = "cardap-revocation-feed/1"
STATUSES = ("suspended", "resumed", "revoked")
REASONS = ("lost", "stolen", "found", "reissued", "expired", "other")
CARD_ID_RE = re.compile(r"^[0-9A-F]{2,40}$")
FILE_RE = re.compile(r"^revocation-feed-(\d{8})\.jsonl$")
HEADER_KEYS = {"format", "feed", "previous", "created", "count", "sha256"}
CHANGE_KEYS = {"card", "status", "reason", "at"}
MAX_LINE_BYTES = 1024

# DEMO ONLY: a fixed, published key pair so the demo and the tests can sign feeds. Never configure
# its public key in production (settings refuse it outside demo mode).
DEMO_FEED_PRIVATE_SEED = bytes.fromhex(
    "6465 6d6f 2d6f 6e6c 792d 6665 6564 2d6b 6579 2d6e 6f74 2d73 6563 7265 7421 2121"
)


class FeedError(ValueError):
    """The feed is refused as a whole. ``code`` is stable for programs, ``line`` is 1-based."""

    def __init__(self, code: str, message: str, line: int | None = None) -> None:
        self.code = code
        self.line = line
        self.message = message
        super().__init__(f"line {line}: {message}" if line else message)


@dataclass(frozen=True)
class Header:
    feed: int
    previous: int | None
    created: dt.datetime
    count: int
    sha256: str
    raw: bytes


@dataclass(frozen=True)
class Change:
    line: int
    card: str
    status: str
    reason: str
    at: dt.datetime


def feed_filename(number: int) -> str:
    return f"revocation-feed-{number:08d}.jsonl"


def demo_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(DEMO_FEED_PRIVATE_SEED)


def public_key_b64(key: Ed25519PublicKey) -> str:
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def _file_or_text(value: str) -> str:
    text = value.strip()
    if text and not text.startswith("-----") and len(text) < 4096 and Path(text).is_file():
        return Path(text).read_text().strip()
    return text


def load_public_key(value: str) -> Ed25519PublicKey:
    """A public key from base64 (raw 32 bytes), PEM text, or a path to a PEM / base64 file."""
    text = _file_or_text(value)
    if text.startswith("-----"):
        key = serialization.load_pem_public_key(text.encode())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        return key
    raw = base64.b64decode(text, validate=True)
    return Ed25519PublicKey.from_public_bytes(raw)


def load_private_key(value: str) -> Ed25519PrivateKey:
    """A private key from base64 (raw 32-byte seed), PEM text, or a path to either."""
    text = _file_or_text(value)
    if text.startswith("-----"):
        key = serialization.load_pem_private_key(text.encode(), password=None)
        if not isinstance(key, Ed25519PrivateKey):
            raise ValueError("not an Ed25519 private key")
        return key
    return Ed25519PrivateKey.from_private_bytes(base64.b64decode(text, validate=True))


def _iso(at: dt.datetime) -> str:
    if at.tzinfo is None:
        raise ValueError("change times must carry a UTC offset")
    return at.isoformat(timespec="seconds")


def encode_change(card: str, status: str, reason: str, at: dt.datetime) -> bytes:
    return (
        json.dumps(
            {"card": card, "status": status, "reason": reason, "at": _iso(at)}, separators=(",", ":")
        ).encode()
        + b"\n"
    )


def write_feed(
    directory: Path,
    *,
    number: int,
    previous: int | None,
    changes: Iterable[tuple[str, str, str, dt.datetime]],
    private_key: Ed25519PrivateKey,
    created: dt.datetime | None = None,
) -> Path:
    """Write ``revocation-feed-<number>.jsonl`` and its ``.sig`` into ``directory``; streamed, so a
    generator of a million changes never sits in memory. Returns the feed path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / feed_filename(number)
    body_path = path.with_suffix(".body.tmp")
    digest = hashlib.sha256()
    count = 0
    with body_path.open("wb") as body:
        for card, status, reason, at in changes:
            line = encode_change(card, status, reason, at)
            digest.update(line)
            body.write(line)
            count += 1
    created = created or dt.datetime.now(dt.timezone(dt.timedelta(hours=9)))
    header = json.dumps(
        {
            "format": FORMAT,
            "feed": number,
            "previous": previous,
            "created": _iso(created),
            "count": count,
            "sha256": digest.hexdigest(),
        },
        separators=(",", ":"),
    ).encode()
    # The signature first, then the feed under its final name in one rename: a reader polling the
    # directory never sees a feed without its signature or half written.
    signature_path(path).write_text(base64.b64encode(private_key.sign(header)).decode() + "\n")
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out, body_path.open("rb") as body:
        out.write(header + b"\n")
        while chunk := body.read(1 << 20):
            out.write(chunk)
    body_path.unlink()
    partial.replace(path)
    _update_index(directory)
    return path


def signature_path(path: Path) -> Path:
    return path.with_name(path.name + ".sig")


def _update_index(directory: Path) -> None:
    """index.txt lists the feed files, so a sync over HTTPS can see gaps as a directory sync does."""
    names = sorted(p.name for p in directory.iterdir() if FILE_RE.match(p.name))
    (directory / "index.txt").write_text("".join(f"{n}\n" for n in names))


def _parse_time(value: object, what: str, line: int) -> dt.datetime:
    if not isinstance(value, str):
        raise FeedError("malformed", f"{what} must be a string with a UTC offset", line)
    try:
        at = dt.datetime.fromisoformat(value)
    except ValueError:
        raise FeedError("malformed", f"{what} {value[:40]!r} is not an ISO 8601 time", line) from None
    if at.tzinfo is None:
        raise FeedError("malformed", f"{what} {value[:40]!r} has no UTC offset", line)
    return at


def _json_object(raw: bytes, line: int) -> dict:
    try:
        obj = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise FeedError("malformed", "not a JSON object", line) from None
    if not isinstance(obj, dict):
        raise FeedError("malformed", "not a JSON object", line)
    return obj


def _int(obj: dict, key: str, line: int, *, nullable: bool = False) -> int | None:
    value = obj.get(key)
    if value is None and nullable:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise FeedError("malformed", f"header field {key!r} must be a non-negative integer", line)
    return value


def read_header(stream: BinaryIO, signature: bytes, public_key: Ed25519PublicKey) -> Header:
    """Read and verify the header line; the signature is checked before anything is trusted."""
    raw = stream.readline(MAX_LINE_BYTES + 1)
    if not raw.endswith(b"\n"):
        raise FeedError("malformed", f"header line missing or longer than {MAX_LINE_BYTES} bytes", 1)
    raw = raw[:-1]
    try:
        public_key.verify(base64.b64decode(signature.strip(), validate=True), raw)
    except (InvalidSignature, ValueError):
        raise FeedError("bad_signature", "the Ed25519 signature does not match the header line", 1) from None
    obj = _json_object(raw, 1)
    if set(obj) != HEADER_KEYS:
        raise FeedError("malformed", f"header fields must be exactly {sorted(HEADER_KEYS)}", 1)
    if obj["format"] != FORMAT:
        raise FeedError("malformed", f"unknown format {str(obj['format'])[:40]!r}, expected {FORMAT!r}", 1)
    sha = obj["sha256"]
    if not isinstance(sha, str) or not re.fullmatch(r"[0-9a-f]{64}", sha):
        raise FeedError("malformed", "header field 'sha256' must be 64 lowercase hex digits", 1)
    feed = _int(obj, "feed", 1)
    count = _int(obj, "count", 1)
    assert feed is not None and count is not None
    return Header(
        feed=feed,
        previous=_int(obj, "previous", 1, nullable=True),
        created=_parse_time(obj["created"], "created", 1),
        count=count,
        sha256=sha,
        raw=raw,
    )


# The form the writer produces and the format document names: PostgreSQL parses this text to the
# same instant as datetime.fromisoformat, so it is staged as it stands (no datetime round trip).
CANONICAL_TIME_RE = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?[+-]\d\d:\d\d")
_READ_CHUNK = 1 << 20

Row = tuple[int, str, str, str, str, dt.datetime]


def iter_rows(stream: BinaryIO, header: Header, *, max_changes: int) -> Iterator[Row]:
    """Yield the body's changes as ``(line, card, status, reason, at_text, at)``, validating each;
    after the last one, check the count and the digest. ``at_text`` is the ISO 8601 time as sent
    when it has the canonical form, else the same instant as UTC ISO text. Any fault raises
    FeedError naming the line, so the caller must not commit anything before the iterator is
    exhausted.

    The body is read in 1 MiB chunks (hashed as read, split into lines) and each line is parsed
    with orjson: the per-line work is the validation itself, which is what bounds the ingest."""
    digest = hashlib.sha256()
    loads, decode_error = orjson.loads, orjson.JSONDecodeError
    card_ok, canonical = CARD_ID_RE.match, CANONICAL_TIME_RE.fullmatch
    line = 1
    count = 0
    rest = b""
    while chunk := stream.read(_READ_CHUNK):
        digest.update(chunk)
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for raw in parts:
            line += 1
            if len(raw) >= MAX_LINE_BYTES:  # with its newline, above the limit
                raise FeedError("oversized", f"line longer than {MAX_LINE_BYTES} bytes", line)
            count += 1
            if count > max_changes:
                raise FeedError("oversized", f"more than {max_changes} changes", line)
            try:
                obj = loads(raw)
            except decode_error:
                raise FeedError("malformed", "not a JSON object", line) from None
            if type(obj) is not dict:
                raise FeedError("malformed", "not a JSON object", line)
            if obj.keys() != CHANGE_KEYS:
                raise FeedError("malformed", f"fields must be exactly {sorted(CHANGE_KEYS)}", line)
            card, status, reason, at_text = obj["card"], obj["status"], obj["reason"], obj["at"]
            if type(card) is not str or not card_ok(card):
                raise FeedError("malformed", "card must be 2 to 40 uppercase hex digits", line)
            if status not in STATUSES:
                raise FeedError(
                    "malformed", f"status {str(status)[:20]!r} is not one of {', '.join(STATUSES)}", line
                )
            if reason not in REASONS:
                raise FeedError(
                    "malformed", f"reason {str(reason)[:20]!r} is not one of {', '.join(REASONS)}", line
                )
            at = _parse_time(at_text, "at", line)
            if not canonical(at_text):
                at_text = at.astimezone(dt.UTC).isoformat()
            yield line, card, status, reason, at_text, at
        if len(rest) > MAX_LINE_BYTES:
            raise FeedError("oversized", f"line longer than {MAX_LINE_BYTES} bytes", line + 1)
    if rest:
        line += 1
        raise FeedError("malformed", "last line is not terminated by a newline", line)
    if count != header.count:
        raise FeedError("wrong_count", f"header says {header.count} changes, the file has {count}", line)
    if digest.hexdigest() != header.sha256:
        raise FeedError("wrong_digest", "SHA-256 of the body does not match the header", line)


def iter_changes(stream: BinaryIO, header: Header, *, max_changes: int) -> Iterator[Change]:
    """Like iter_rows, one Change object per line (for callers that want named fields)."""
    for line, card, status, reason, _text, at in iter_rows(stream, header, max_changes=max_changes):
        yield Change(line, card, status, reason, at)


def random_changes(
    count: int, *, cards: int | None = None, seed: int = 1, day: dt.date | None = None
) -> Iterator[tuple[str, str, str, dt.datetime]]:
    """Plausible changes for demos and benchmarks: mostly losses, some finds and revocations."""
    rng = random.Random(seed)
    jst = dt.timezone(dt.timedelta(hours=9))
    start = dt.datetime.combine(day or dt.date.today() - dt.timedelta(days=1), dt.time(), jst)
    cards = cards or max(1, count)
    for _ in range(count):
        card = f"{rng.randrange(cards):016X}"
        roll = rng.random()
        if roll < 0.6:
            status, reason = "suspended", rng.choice(("lost", "stolen"))
        elif roll < 0.8:
            status, reason = "resumed", "found"
        else:
            status, reason = "revoked", rng.choice(("reissued", "expired", "other"))
        yield card, status, reason, start + dt.timedelta(seconds=rng.randrange(86400))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", type=Path)
    parser.add_argument("--number", type=int, required=True)
    parser.add_argument("--previous", type=int, default=None, help="default: number - 1 (none for 1)")
    parser.add_argument("--random", type=int, default=0, metavar="N", help="N random changes")
    parser.add_argument("--cards", type=int, default=None, help="distinct cards for --random")
    parser.add_argument("--input", type=Path, help="TSV of card, status, reason, ISO time")
    parser.add_argument("--private-key", help="base64 seed, PEM or path; default: the DEMO-ONLY key")


def run(args: argparse.Namespace) -> Path:
    key = load_private_key(args.private_key) if args.private_key else demo_private_key()
    previous = args.previous if args.previous is not None else (args.number - 1 or None)
    changes: Iterable[tuple[str, str, str, dt.datetime]]
    if args.input:
        changes = (
            (c, s, r, dt.datetime.fromisoformat(t))
            for c, s, r, t in (ln.rstrip("\n").split("\t") for ln in args.input.open() if ln.strip())
        )
    else:
        changes = random_changes(args.random, cards=args.cards, seed=args.number)
    return write_feed(args.directory, number=args.number, previous=previous, changes=changes, private_key=key)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a signed revocation feed (tests, demo, benchmark).")
    add_arguments(parser)
    print(run(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
