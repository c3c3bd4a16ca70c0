"""Named strategies and sources: a small registry that fails loudly and lists the valid names.

Model sources (`workbench.sources.models.MODEL_SOURCES`) and datasets
(`workbench.sources.data.DATASETS`) are registries, so that adding one is one `register` call, not
an edit of an if-chain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from workbench.errors import WorkbenchError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """name -> entry, in registration order; `get` of an unknown name names the valid ones."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        """Add `entry` under `name` (a name can be registered once)."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is registered already")
        self._entries[name] = entry
        return entry

    def decorator(self, name: str) -> Callable[[T], T]:
        """``@registry.decorator("name")`` registers the decorated function or class."""
        return lambda entry: self.register(name, entry)

    def get(self, name: str) -> T:
        if name not in self._entries:
            raise WorkbenchError(f"unknown {self.kind} {name!r}; use one of {', '.join(self)}")
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def items(self) -> Iterator[tuple[str, T]]:
        return iter(self._entries.items())
