"""The access module is its own distribution: it installs with `pip install ./accessmodule` into
a fresh virtual environment, without Django, and imports nothing of the web application."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import pkgutil, importlib, sys
import cardap_access
names = [m.name for m in pkgutil.walk_packages(cardap_access.__path__, "cardap_access.")]
for name in names:
    if not name.endswith("__main__"):  # running it is the CLI
        importlib.import_module(name)
apps = ("django", "rest_framework", "cardap", "operators", "loading", "revocation", "vcard", "config")
print(len(names), ",".join(sorted(m for m in sys.modules if m.split(".")[0] in apps)))
"""


def test_importing_the_access_module_imports_no_django():
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT / "accessmodule")},
    ).stdout.split()
    assert int(out[0]) >= 5 and len(out) == 1, out


def test_fresh_venv_install_without_django(tmp_path):
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", str(ROOT / "accessmodule")], check=True, timeout=900
    )
    installed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True, check=True
    ).stdout.lower()
    assert "cardap-access==" in installed and "django" not in installed
    out = subprocess.run(
        [python, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60, cwd=tmp_path
    ).stdout.split()
    assert int(out[0]) >= 5 and len(out) == 1, out
    usage = subprocess.run(
        [env_dir / "bin" / "cardap-read", "--help"], capture_output=True, text=True, check=True, timeout=60
    )
    assert "readers" in usage.stdout and "read" in usage.stdout
