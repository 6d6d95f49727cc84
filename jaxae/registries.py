"""Things a config names: jaxae's own, which stay, and yours, registered (losses, optimizers).

:class:`Registry` keeps them; :func:`same_definition` says when a registration repeats an earlier
one, what makes a notebook cell safe to run twice. A cell run again defines its class or
function anew, as another object of the same name: that is the same definition, so registering
it again replaces the old one without ``replace=True``. A lambda has no name of its own, so only
the same object is the same lambda.

>>> def loss(y, t): return y - t
>>> first = loss
>>> def loss(y, t): return t - y      # the cell run again, edited
>>> same_definition(first, loss), same_definition(lambda y: y, lambda y: y)
(True, False)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jaxae.errors import InputError


def same_definition(a, b) -> bool:
    """Whether ``a`` and ``b`` are one class or function: the same object, or named alike in the same module."""
    if a is b:
        return True
    name = getattr(a, "__qualname__", None)
    return (name is not None and "<lambda>" not in name and name == getattr(b, "__qualname__", None)
            and getattr(a, "__module__", None) == getattr(b, "__module__", None))


class Registry:
    """Entries by name: jaxae's own (fixed by :meth:`seal`), then the ones registered after.

    Args:
      kind: what the entries are, for the messages ("loss", "optimizer").
      how: the call that registers one, for the message of an unknown name.
    """

    def __init__(self, kind: str, how: str):
        self.kind, self.how = kind, how
        self._entries: dict[str, Any] = {}
        self._own: frozenset[str] = frozenset()

    def register(self, name: str, entry, *, replace: bool, same: Callable[[Any, Any], bool]) -> None:
        """Adds ``entry`` as ``name``; an entry already there is replaced when ``same(old, entry)`` or
        with ``replace`` (never one of jaxae's own)."""
        known = self._entries.get(name)
        if known is not None and not same(known, entry) and (name in self._own or not replace):
            raise InputError(f"{self.kind} {name!r} is already registered; choose another name"
                             + ("" if name in self._own else " or pass replace=True"))
        self._entries[name] = entry

    def seal(self) -> None:
        """Makes every entry so far one of jaxae's own."""
        self._own = frozenset(self._entries)

    def unregister(self, name: str) -> None:
        if name in self._own:
            raise InputError(f"{self.kind} {name!r} is one of jaxae's own: it cannot be unregistered")
        self.get(name)
        del self._entries[name]

    def get(self, name: str):
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise InputError(f"unknown {self.kind} {name!r}; choose from {self.names()}, "
                             f"or register your own with {self.how}") from None

    def names(self) -> list[str]:
        return list(self._entries)
