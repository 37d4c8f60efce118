"""Lazy sub-module access for flatlib's packages (PEP 562), so ``import flatlib`` stays light."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from types import ModuleType


def attach(package: str, names: Iterable[str]) -> tuple[Callable[[str], ModuleType], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package`` that import the sub-modules ``names`` on first use."""
    known = frozenset(names)

    def getattr_(name: str) -> ModuleType:
        if name in known:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_() -> list[str]:
        return sorted(known)

    return getattr_, dir_
