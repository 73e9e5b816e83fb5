"""Independent references see the virtual card as a real one through pcscd + vpcd: pcsc-tools'
pcsc_scan, OpenSC's opensc-tool and pkcs15-tool (its JPKI driver, card-jpki.c / pkcs15-jpki.c),
and pyscard."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from cryptography import x509

from tests.pcsc.readers import unavailable
from vcard.bureau import JPKI_AUTH_CERT

pytestmark = pytest.mark.pcsc


def run(*argv: str, timeout: float = 20) -> str:
    if shutil.which(argv[0]) is None:
        unavailable(f"{argv[0]} is not installed (scripts/system-deps.sh test)")
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)  # noqa: S603
    return proc.stdout + proc.stderr


def reader_index(name: str) -> str:
    for line in run("opensc-tool", "--list-readers").splitlines():
        parts = line.split()
        if parts and parts[0].isdigit() and line.rstrip().endswith(name):
            return parts[0]
    raise AssertionError(f"opensc-tool does not list {name}")


def test_opensc_lists_the_reader_with_a_card(vpcd_card):
    out = run("opensc-tool", "--list-readers")
    line = next(line for line in out.splitlines() if line.rstrip().endswith(vpcd_card.reader))
    assert line.split()[1] == "Yes"


def test_opensc_names_the_card_jpki(vpcd_card):
    out = run("opensc-tool", "--reader", reader_index(vpcd_card.reader), "--name", "-v")
    assert "JPKI(Japanese Individual Number Cards)" in out
    assert "Card name: jpki" in out


def test_pkcs15_tool_lists_the_test_certificate(vpcd_card):
    out = run("pkcs15-tool", "--reader", reader_index(vpcd_card.reader), "--list-certificates")
    assert "X.509 Certificate [User Authentication Certificate]" in out
    cert = x509.load_der_x509_certificate(vpcd_card.card.state.jpki_files[JPKI_AUTH_CERT])
    serial = cert.serial_number.to_bytes((cert.serial_number.bit_length() + 7) // 8, "big").hex().upper()
    assert serial in out.replace(" ", "")  # OpenSC printed the serial of the card's own certificate
    pem = run("pkcs15-tool", "--reader", reader_index(vpcd_card.reader), "--read-certificate", "01")
    assert x509.load_pem_x509_certificate(pem[pem.index("-----BEGIN") :].encode()) == cert
    assert vpcd_card.card.standard_ap_commands > 0  # OpenSC did talk to the JPKI AP, and it was logged


def test_pcsc_scan_sees_reader_and_atr(vpcd_card):
    if shutil.which("pcsc_scan") is None:
        unavailable("pcsc_scan is not installed (pcsc-tools)")
    proc = subprocess.run(["timeout", "5", "pcsc_scan", "-n", "-t", "1"], capture_output=True, text=True)  # noqa: S607
    out = proc.stdout
    assert vpcd_card.reader in out
    assert "3B E0 00 FF 81 31 FE 45 14" in out


def test_pyscard_reads_the_atr(vpcd_card):
    assert bytes(vpcd_card.connection.getATR()).hex().upper() == "3BE000FF8131FE4514"
