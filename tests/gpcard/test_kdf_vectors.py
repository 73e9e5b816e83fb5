"""AES-CMAC and the SP 800-108 KDF against NIST's own published vectors (files in ./vectors, each
with its source in its header): NIST SP 800-38B Appendix D (CMAC-AES128/192/256) and the NIST CAVP
SP 800-108 counter-mode CMAC-AES vectors (counter before the fixed data, and in the middle of it,
which is SCP03's layout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gpcard.kdf import aes_cmac, kdf_counter_cmac, scp03_kdf

VECTORS = Path(__file__).parent / "vectors"


def _cmac_cases() -> list[tuple[str, bytes, bytes, bytes]]:
    cases = []
    for size in (128, 192, 256):
        block: dict[str, str] = {}
        for line in (VECTORS / f"nist-800-38b-aes{size}.txt").read_text().splitlines():
            if " = " in line or line.endswith(" ="):
                key, _, value = line.partition("=")
                block[key.strip()] = value.strip()
            if "OUTPUT" in block:
                cases.append(
                    (
                        f"AES{size}-{block['COUNT']}",
                        bytes.fromhex(block["KEY"]),
                        bytes.fromhex(block["MESSAGE"]),
                        bytes.fromhex(block["OUTPUT"]),
                    )
                )
                block = {}
    return cases


CMAC_CASES = _cmac_cases()


def test_all_cmac_examples_loaded() -> None:
    assert len(CMAC_CASES) == 12  # four examples (0, 16, 40, 64 bytes) per key size


@pytest.mark.parametrize(("name", "key", "message", "tag"), CMAC_CASES, ids=[c[0] for c in CMAC_CASES])
def test_cmac_sp800_38b(name: str, key: bytes, message: bytes, tag: bytes) -> None:
    assert aes_cmac(key, message) == tag


def _kdf_cases() -> list[tuple[str, bytes, bytes, bytes, int, bytes]]:
    cases = []
    for line in (VECTORS / "kbkdf_ctr_cmac_rlen8.txt").read_text().splitlines():
        if line.startswith("#") or not line.strip():
            continue
        prf, location, count, *fields = line.split()
        f = dict(x.split("=", 1) for x in fields)
        unhex = lambda s: b"" if s == "-" else bytes.fromhex(s)  # noqa: E731
        cases.append(
            (
                f"{prf}-{location}-{count}",
                unhex(f["KI"]),
                unhex(f["BEFORE"]),
                unhex(f["AFTER"]),
                int(f["L"]),
                unhex(f["KO"]),
            )
        )
    return cases


KDF_CASES = _kdf_cases()


def test_kdf_vectors_cover_sizes_and_positions() -> None:
    names = " ".join(c[0] for c in KDF_CASES)
    for prf in ("AES128", "AES192", "AES256"):
        assert f"{prf}-MIDDLE_FIXED" in names and f"{prf}-BEFORE_FIXED" in names
    assert any(c[4] == 256 for c in KDF_CASES)  # two PRF blocks: counter 01 and 02


@pytest.mark.parametrize(
    ("name", "ki", "before", "after", "bits", "ko"), KDF_CASES, ids=[c[0] for c in KDF_CASES]
)
def test_kdf_sp800_108_cavp(name: str, ki: bytes, before: bytes, after: bytes, bits: int, ko: bytes) -> None:
    assert kdf_counter_cmac(ki, before=before, after=after, length_bits=bits) == ko


def test_scp03_kdf_is_the_middle_fixed_layout() -> None:
    # The SCP03 input is label(12) ‖ 00 ‖ L(2) ‖ i ‖ context: computed here by hand with plain CMAC.
    key = bytes(range(32))
    context = bytes.fromhex("01020304050607081112131415161718")
    fixed = bytes(11) + b"\x04" + b"\x00" + (256).to_bytes(2, "big")
    by_hand = aes_cmac(key, fixed + b"\x01" + context) + aes_cmac(key, fixed + b"\x02" + context)
    assert scp03_kdf(key, 0x04, context, 256) == by_hand


@pytest.mark.parametrize("bad", [b"", bytes(15), bytes(33)])
def test_bad_key_lengths_refused(bad: bytes) -> None:
    with pytest.raises(ValueError, match="16, 24 or 32"):
        aes_cmac(bad, b"")
