"""Whether a registration repeats an earlier one: what makes a notebook cell safe to run twice.

A cell run again defines its class or function anew, as another object of the same name:
:func:`same_definition` takes that as the same definition, so registering it again replaces
the old one without ``replace=True``. A lambda has no name of its own, so only the same
object is the same lambda.

>>> def loss(y, t): return y - t
>>> first = loss
>>> def loss(y, t): return t - y      # the cell run again, edited
>>> same_definition(first, loss), same_definition(lambda y: y, lambda y: y)
(True, False)
"""

from __future__ import annotations


def same_definition(a, b) -> bool:
    """Whether ``a`` and ``b`` are one class or function: the same object, or named alike in the same module."""
    if a is b:
        return True
    name = getattr(a, "__qualname__", None)
    return (name is not None and "<lambda>" not in name and name == getattr(b, "__qualname__", None)
            and getattr(a, "__module__", None) == getattr(b, "__module__", None))
