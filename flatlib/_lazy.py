"""Lazy sub-module access for flatlib's packages (PEP 562), so ``import flatlib`` stays light."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from types import ModuleType


def attach(package: str, names: Iterable[str]) -> Callable[[str], ModuleType]:
    """A module ``__getattr__`` for ``package`` that imports its sub-modules ``names`` on use."""
    known = frozenset(names)

    def getattr_(name: str) -> ModuleType:
        if name in known:
            return importlib.import_module(f"{package}.{name}")
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return getattr_
