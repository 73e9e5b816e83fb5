"""The card and the host library meet only as bytes: vcard imports neither gpcard nor Django."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import vcard


def test_vcard_imports_neither_gpcard_nor_django():
    code = (
        "import sys, vcard, vcard.__main__, vcard.vpcd, vcard.bureau;"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('gpcard', 'django')];"
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_no_source_file_mentions_a_forbidden_import():
    for path in Path(vcard.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in ("gpcard", "django"), f"{path.name} imports {name}"
