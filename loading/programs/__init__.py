"""Card programs (sans-I/O conversations) the engine can run, one module each; every module in
this package is imported here so its ``@engine.program`` registrations take effect."""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
