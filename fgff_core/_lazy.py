"""Lazy package attributes (PEP 562): a package names what it offers and where it lives, and a name's module
is imported on first use. So ``import fgff_core.store`` does not load torch, and no package ``__init__``
imports a sibling package just to re-export it (which is how import cycles start)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``, where ``exports`` maps each public name to its module
    (relative to the package, e.g. ``".schema"``)."""

    def __getattr__(name: str) -> Any:
        try:
            module = exports[name]
        except KeyError:
            raise AttributeError(f"module {package!r} has no attribute {name!r}") from None
        return getattr(importlib.import_module(module, package), name)

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__


def exports_of(module: str, *names: str) -> dict[str, str]:
    """``{name: module}`` for each of ``names``: the entries of one module in an exports table."""
    return dict.fromkeys(names, module)
