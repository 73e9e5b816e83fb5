"""The protocol package must stay framework-free (DESIGN.md): importing every gpcard module in a
fresh interpreter must not import Django."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import pkgutil, importlib, sys
import gpcard
names = [m.name for m in pkgutil.walk_packages(gpcard.__path__, "gpcard.")]
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("django", "rest_framework"))
print(len(names), ",".join(leaked))
"""


def test_importing_gpcard_never_imports_django() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    count, leaked = (
        out.stdout.strip().split(" ", 1) if " " in out.stdout.strip() else (out.stdout.strip(), "")
    )
    assert int(count) >= 3  # the probe really walked the package
    assert leaked == ""
