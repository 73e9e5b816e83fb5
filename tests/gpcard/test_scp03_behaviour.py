"""SCP03 host behaviour beyond the traces: refusals, batching with several responses, rewinding
after an aborted batch, tampering, extended length. The card end is tests/gpcard/card_double.py."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpcard.apdu import APDUError, CommandAPDU, ResponseAPDU
from gpcard.scp03 import (
    CardCryptogramError,
    InitializeUpdateResponse,
    RMACError,
    SCP03Error,
    SCP03Session,
    StaticKeys,
    aes_kcv,
    pad80,
    unpad80,
)
from tests.gpcard.card_double import CardSCP03

GP_KEY = bytes.fromhex("404142434445464748494A4B4C4D4E4F")


def opened(level: int = 0x33, key: bytes = GP_KEY) -> tuple[SCP03Session, CardSCP03]:
    card = CardSCP03(key, key)
    host = SCP03Session(StaticKeys.single(key), security_level=level, host_challenge=bytes(8))
    ea = host.authenticate(ResponseAPDU.parse(card.initialize_update(host.initialize_update().encode())))
    assert host.unwrap(card.external_authenticate(ea.encode())).sw == 0x9000
    return host, card


@pytest.mark.parametrize("level", [0x01, 0x03, 0x11, 0x13, 0x33])
@pytest.mark.parametrize("key", [GP_KEY, bytes(range(24)), bytes(range(32))])
def test_batch_of_commands_and_responses(level: int, key: bytes) -> None:
    host, card = opened(level, key)
    plain = [CommandAPDU(0x80, 0xE2, 0x00, i, bytes([i]) * (i * 7), le=256) for i in range(6)]
    wrapped = host.wrap_all(plain)
    answers = [bytes([0xA0 + i]) * i for i in range(6)]
    rapdus = []
    for cmd, w, answer in zip(plain, wrapped, answers, strict=True):
        data, rapdu = card.command(w.encode(), answer)
        assert data == cmd.data  # the card recovers each command exactly
        rapdus.append(rapdu)
    responses = host.unwrap_all(rapdus)
    if level & 0x10:
        assert [r.data for r in responses] == answers
    assert host.pending == 0


def test_error_status_word_has_no_rmac() -> None:
    host, card = opened()
    w = host.wrap(CommandAPDU(0x80, 0xE6, 0x0C, 0x00, b"\x01" * 20, le=256))
    _, rapdu = card.command(w.encode(), sw=b"\x6a\x84")
    assert rapdu == b"\x6a\x84"
    assert host.unwrap(rapdu).sw == 0x6A84


def test_warning_status_word_is_protected() -> None:
    host, card = opened()
    w = host.wrap(CommandAPDU(0x80, 0xF2, 0x40, 0x02, b"\x4f\x00", le=256))
    _, rapdu = card.command(w.encode(), b"\xe3\x00", sw=b"\x63\x10")
    r = host.unwrap(rapdu)
    assert (r.data, r.sw) == (b"\xe3\x00", 0x6310)


def test_tampered_response_is_refused() -> None:
    host, card = opened()
    w = host.wrap(CommandAPDU(0x80, 0xCA, 0x00, 0x45, le=256))
    _, rapdu = card.command(w.encode(), b"\x45\x02\x01\x02")
    bad = bytes([rapdu[0] ^ 1]) + rapdu[1:]
    with pytest.raises(RMACError):
        host.unwrap(bad)


def test_responses_out_of_order_are_refused() -> None:
    host, card = opened()
    w1, w2 = host.wrap_all(
        [CommandAPDU(0x80, 0xCA, 0, 0x42, le=256), CommandAPDU(0x80, 0xCA, 0, 0x45, le=256)]
    )
    _, r1 = card.command(w1.encode(), b"one")
    _, r2 = card.command(w2.encode(), b"two")
    with pytest.raises(RMACError):
        host.unwrap(r2)


def test_discard_pending_resyncs_after_aborted_batch() -> None:
    host, card = opened()
    batch = host.wrap_all([CommandAPDU(0x80, 0xE2, 0, i, bytes([i, i]), le=256) for i in range(5)])
    # the agent stopped after the second command (unexpected status word): 3 never reached the card
    _, r0 = card.command(batch[0].encode(), b"ok")
    _, r1 = card.command(batch[1].encode(), sw=b"\x6a\x80")
    host.unwrap_all([r0, r1])
    assert host.discard_pending() == 3
    w = host.wrap(CommandAPDU(0x80, 0xCA, 0, 0x66, le=256))
    data, r = card.command(w.encode(), b"still in step")
    assert host.unwrap(r).data == b"still in step"


def test_without_discard_the_card_refuses_the_next_mac() -> None:
    host, card = opened()
    batch = host.wrap_all([CommandAPDU(0x80, 0xE2, 0, i, b"x", le=256) for i in range(3)])
    _, r0 = card.command(batch[0].encode(), b"")
    host.unwrap(r0)
    w = host.wrap(CommandAPDU(0x80, 0xCA, 0, 0x66, le=256))
    assert card.command(w.encode())[1] == b"\x69\x82"


def test_extended_length_command() -> None:
    host, card = opened()
    cmd = CommandAPDU(0x80, 0xE2, 0x80, 0x00, bytes(range(256)) * 2, le=256)
    w = host.wrap(cmd)
    assert w.is_extended
    data, r = card.command(w.encode(), b"fine")
    assert data == cmd.data and host.unwrap(r).data == b"fine"


def test_wrong_keys_fail_card_cryptogram() -> None:
    card = CardSCP03(GP_KEY, GP_KEY)
    host = SCP03Session(StaticKeys.single(bytes(16)), host_challenge=bytes(8))
    with pytest.raises(CardCryptogramError):
        host.authenticate(card.initialize_update(host.initialize_update().encode())[:-2])


def test_wrong_key_version_refused() -> None:
    card = CardSCP03(GP_KEY, GP_KEY, kvn=0x31)
    host = SCP03Session(StaticKeys.single(GP_KEY, 0x30), host_challenge=bytes(8))
    with pytest.raises(SCP03Error, match="key version 31"):
        host.authenticate(card.initialize_update(host.initialize_update().encode())[:-2])


def test_host_cryptogram_accepted_by_card_and_wrong_mac_closes() -> None:
    host, card = opened()
    w = host.wrap(CommandAPDU(0x80, 0xCA, 0, 0x66, le=256)).encode()
    forged = w[:-3] + bytes([w[-3] ^ 0xFF]) + w[-2:]
    assert card.command(forged)[1] == b"\x69\x82"
    assert not card.open


@pytest.mark.parametrize(
    ("hexdata", "match"),
    [
        ("00" * 28, "29 or 32"),
        ("00" * 10 + "3002" + "70" + "00" * 19, "SCP02"),
        ("00" * 10 + "3003" + "71" + "00" * 19, "S16"),
        ("00" * 10 + "3003" + "70" + "00" * 16, "sequence counter"),
    ],
)
def test_initialize_update_response_errors(hexdata: str, match: str) -> None:
    with pytest.raises(SCP03Error, match=match):
        InitializeUpdateResponse.parse(bytes.fromhex(hexdata))


def test_refusals() -> None:
    with pytest.raises(SCP03Error, match="security level"):
        SCP03Session(StaticKeys.single(GP_KEY), security_level=0x02)
    with pytest.raises(SCP03Error, match="8 bytes"):
        SCP03Session(StaticKeys.single(GP_KEY), host_challenge=bytes(7))
    with pytest.raises(SCP03Error, match="one length"):
        StaticKeys(bytes(16), bytes(16), bytes(32))
    s = SCP03Session(StaticKeys.single(GP_KEY))
    with pytest.raises(SCP03Error, match="no secure channel"):
        s.wrap(CommandAPDU(0x80, 0xCA, 0, 0x66))
    host, _ = opened()
    with pytest.raises(SCP03Error, match="already has"):
        host.wrap(CommandAPDU(0x84, 0xCA, 0, 0x66))
    with pytest.raises(SCP03Error, match="no command"):
        host.unwrap(b"\x90\x00")
    with pytest.raises(SCP03Error, match="INITIALIZE UPDATE answered"):
        SCP03Session(StaticKeys.single(GP_KEY)).authenticate(ResponseAPDU(b"", 0x6A88))


def test_keys_never_in_repr() -> None:
    assert GP_KEY.hex() not in repr(StaticKeys.single(GP_KEY)).lower()
    assert "4041" not in repr(StaticKeys.single(GP_KEY))


def test_host_challenge_random_by_default() -> None:
    assert (
        SCP03Session(StaticKeys.single(GP_KEY)).host_challenge
        != SCP03Session(StaticKeys.single(GP_KEY)).host_challenge
    )


def test_padding() -> None:
    assert pad80(b"") == b"\x80" + bytes(15)
    assert pad80(bytes(16)) == bytes(16) + b"\x80" + bytes(15)
    assert unpad80(pad80(b"abc")) == b"abc"
    for bad in (bytes(16), b"abc" + bytes(13), b"\x80" + bytes(31)):
        with pytest.raises(SCP03Error):
            unpad80(bad)


def test_aes_kcv_is_aes_of_ones() -> None:
    # Amendment D: KCV = first 3 bytes of AES(key, 16 × 01), computed here with plain cryptography.
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = bytes(range(16))
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    assert aes_kcv(key) == enc.update(b"\x01" * 16)[:3]


@settings(max_examples=200)
@given(st.binary(max_size=64))
def test_any_response_raises_only_typed_errors(raw: bytes) -> None:
    host, _ = opened()
    host.wrap(CommandAPDU(0x80, 0xCA, 0, 0x66, le=256))
    with contextlib.suppress(SCP03Error, APDUError):
        host.unwrap(raw)
    with contextlib.suppress(SCP03Error):
        InitializeUpdateResponse.parse(raw)


def test_failed_reauthentication_leaves_no_usable_session() -> None:
    host, _ = opened()
    other = CardSCP03(bytes(16), bytes(16))
    with pytest.raises(CardCryptogramError):
        host.authenticate(other.initialize_update(host.initialize_update().encode())[:-2])
    with pytest.raises(SCP03Error, match="no secure channel"):
        host.wrap(CommandAPDU(0x80, 0xCA, 0, 0x66, le=256))
