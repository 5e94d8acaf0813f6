"""A small named registry with a decorator that rejects duplicate names (benchmarks, templates, backends).

    BENCHMARKS = Registry("benchmark")

    @BENCHMARKS.register("gsm8k")
    def gsm8k(): ...

`get(name)` raises ``ValueError`` listing the valid names; a second ``register`` of a name raises ``ValueError``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> object; ``builtins`` are modules imported on first lookup (they register on import)."""

    def __init__(self, kind: str, builtins: Iterable[str] = ()) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._builtins = tuple(builtins)
        self._loaded = False

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(item: T) -> T:
            self.add(name, item)
            return item

        return decorate

    def add(self, name: str, item: T) -> None:
        if name in self._items:
            raise ValueError(f"{self.kind} {name!r} is already registered")
        self._items[name] = item

    def _load_builtins(self) -> None:
        if not self._loaded:
            self._loaded = True
            for module in self._builtins:
                importlib.import_module(module)

    def names(self) -> list[str]:
        self._load_builtins()
        return list(self._items)

    def get(self, name: str) -> T:
        self._load_builtins()
        if name not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}; valid: {', '.join(self._items)}")
        return self._items[name]

    def __contains__(self, name: str) -> bool:
        self._load_builtins()
        return name in self._items
