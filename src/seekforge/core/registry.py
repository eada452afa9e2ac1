"""Typed registries for extension points, open to plugins through entry points.

Built-ins register with a decorator; a third-party package adds an entry point in the group
``seekforge.<kind>`` whose object is the thing to register, e.g. in its ``pyproject.toml``::

    [project.entry-points."seekforge.models"]
    my_net = "my_pkg.models:MyNetConfig"

Entry points are loaded the first time a registry is asked for a name it does not hold or for its list.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from seekforge.core.errors import RegistryError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object map for one extension point.

    Args:
        kind: What it holds, for messages (``"model"``).
        group: Entry-point group plugins use (``"seekforge.models"``).
    """

    def __init__(self, kind: str, group: str) -> None:
        self.kind = kind
        self.group = group
        self._items: dict[str, T] = {}
        self._plugins_loaded = False

    def register(self, name: str, obj: T | None = None) -> Callable[[T], T] | T:
        """Register ``obj`` under ``name``; usable as a decorator when ``obj`` is omitted.

        Raises:
            RegistryError: ``name`` is already registered.
        """

        def add(item: T) -> T:
            if name in self._items and self._items[name] is not item:
                raise RegistryError(
                    f"a {self.kind} named '{name}' is already registered ({self._items[name]!r})",
                    hint="choose another name for the plugin",
                )
            self._items[name] = item
            return item

        return add if obj is None else add(obj)

    def unregister(self, name: str) -> None:
        """Remove ``name`` (for tests and plugin reloads)."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        """Return the object registered as ``name``.

        Raises:
            RegistryError: No such name; the message lists the available ones.
        """
        if name not in self._items:
            self._load_plugins()
        try:
            return self._items[name]
        except KeyError:
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f"did you mean '{close[0]}'?" if close else None
            raise RegistryError(
                f"unknown {self.kind} '{name}'; available: {', '.join(self.names()) or 'none'}",
                hint=hint,
            ) from None

    def names(self) -> list[str]:
        """All registered names, plugins included, sorted."""
        self._load_plugins()
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        if name not in self._items:
            self._load_plugins()
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name in self._items:
                continue
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not break the built-ins
                raise RegistryError(
                    f"the {self.kind} plugin '{ep.name}' ({ep.value}) failed to load: {exc}",
                    hint=f"fix or uninstall the package that provides the entry point in '{self.group}'",
                ) from exc
            self.register(ep.name, obj)
