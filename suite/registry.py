"""One registry type for everything GateBench looks up by name: gates, task families, gate kinds,
result views.

Names are checked against one pattern, a duplicate name is an error naming both registrants, and
an unknown name answers with the closest ones ("did you mean ..."). Discovery is by folder
convention: ``discover(package)`` imports every module (or sub-package) of a package whose name
does not start with an underscore, in name order, and those modules register themselves.
"""

from __future__ import annotations

import difflib
import importlib
import pkgutil
import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from suite.errors import RegistryError

T = TypeVar("T")

NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9+._-]*$")


class Registry(Generic[T]):
    """Named entries of one kind; ``loader`` runs once, before the first lookup."""

    def __init__(self, what: str, loader: Callable[[], None] | None = None, hint: str = "") -> None:
        self.what = what  # e.g. "gate", "task family"
        self.hint = hint  # e.g. "`gatebench list gates` shows them all."
        self._entries: dict[str, T] = {}
        self._origins: dict[str, str] = {}
        self._loader = loader
        self._loaded = loader is None

    def _load(self) -> None:
        if not self._loaded and self._loader is not None:
            self._loaded = True
            self._loader()

    def add(self, name: str, entry: T, origin: str = "") -> T:
        if not NAME_PATTERN.match(name):
            raise RegistryError(
                f"{self.what.capitalize()} name '{name}' is not allowed: use lower-case letters, "
                "digits and + . _ -, starting with a letter or digit."
            )
        if name in self._entries:
            first = self._origins.get(name) or "another registration"
            raise RegistryError(
                f"{self.what.capitalize()} '{name}' is registered twice (first by {first})."
            )
        self._entries[name] = entry
        self._origins[name] = origin
        return entry

    def remove(self, name: str) -> None:
        """Forget an entry (tests that register temporary entries clean up with it)."""
        self._entries.pop(name, None)
        self._origins.pop(name, None)

    def get(self, name: str) -> T:
        self._load()
        try:
            return self._entries[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._entries), n=3)
            hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
            known = "" if close else f" Known: {', '.join(sorted(self._entries)) or 'none'}."
            raise RegistryError(
                f"Unknown {self.what} '{name}'.{hint}{known} {self.hint}".rstrip()
            ) from None

    def __contains__(self, name: object) -> bool:
        self._load()
        return name in self._entries

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def values(self) -> list[T]:
        return [self._entries[n] for n in self.names()]

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())


def discover(package: str, recursive: bool = False) -> list[str]:
    """Import every public module of ``package`` (discovery by convention), and with
    ``recursive`` those of its public sub-packages too (``baselines/<family>/``); their names."""
    pkg = importlib.import_module(package)
    names = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            name = f"{package}.{info.name}"
            importlib.import_module(name)
            names.append(name)
            if recursive and info.ispkg:
                names += discover(name, recursive=True)
    return names
