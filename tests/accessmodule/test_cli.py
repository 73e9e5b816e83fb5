"""``cardap-read`` (python -m cardap_access) against the virtual card through pcscd + vpcd."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.accessmodule.conftest import HOLDER_PIN, PASSPHRASE, export

pytestmark = [pytest.mark.pcsc, pytest.mark.django_db]


def cli(args, *, package=None, stdin="", lang="en", passphrase=PASSPHRASE):
    env = {**os.environ, "CARDAP_KEY_PASSPHRASE": passphrase, "CARDAP_LANG": lang}
    if package is not None:
        env["CARDAP_KEY_PACKAGE"] = str(package)
    return subprocess.run(
        [sys.executable, "-m", "cardap_access", *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        cwd=os.path.join(os.path.dirname(__file__), "..", "..", "accessmodule"),
    )


def test_readers_list_and_read(world, loaded_card, tmp_path):
    path = tmp_path / "city.json"
    path.write_bytes(
        export(world, world.city, world.city_admin, loaded_card.aps.values(), passphrase=PASSPHRASE)
    )
    readers = cli(["readers"])
    assert readers.returncode == 0 and loaded_card.reader in readers.stdout
    listed = cli(["--reader", loaded_card.reader, "list", "--json"], package=path)
    states = {row["aid"]: row["state"] for row in json.loads(listed.stdout)}
    assert (
        states[loaded_card.aps["A"].aid] == "ready" and states[loaded_card.aps["E"].aid] == "not_personalised"
    )
    gate = cli(
        ["--reader", loaded_card.reader, "read", loaded_card.aps["A"].aid, "--pin-stdin", "--json"],
        package=path,
        stdin=HOLDER_PIN + "\n",
    )
    assert gate.returncode == 0, gate.stderr
    assert json.loads(gate.stdout)["user_number"] == loaded_card.user_numbers["A"]
    health = cli(["--reader", loaded_card.reader, "read", loaded_card.aps["D"].aid], package=path)
    assert loaded_card.user_numbers["D"] in health.stdout
    wrong = cli(
        ["--reader", loaded_card.reader, "read", loaded_card.aps["A"].aid, "--pin-stdin"],
        package=path,
        stdin="9999\n",
    )
    assert wrong.returncode == 1 and "[wrong_pin]" in wrong.stderr and "2 tries left" in wrong.stderr
    assert "9999" not in wrong.stderr + wrong.stdout
    ja = cli(["--reader", loaded_card.reader, "read", "D392F102FFFFFFFF"], package=path, lang="ja")
    assert ja.returncode == 1 and "鍵パッケージ" in ja.stderr
    locked = cli(["--reader", loaded_card.reader, "list"], package=path, passphrase="not the passphrase")
    assert locked.returncode == 1 and "[package_secret]" in locked.stderr
