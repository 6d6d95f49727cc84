"""Optimizers by name: optax's, and your own, that a :class:`~jaxae.train.TrainConfig` names.

An optimizer is a factory ``factory(learning_rate, **arguments) ->
optax.GradientTransformation``; a config names it (``optimizer="adamw"``) and
gives its arguments (``optimizer_args=(("weight_decay", 1e-4),)``), so that a
config stays plain data that a checkpoint compares on resume. The learning rate
is a number or an optax schedule (``fit(learning_rate=...)``).

>>> sorted(names())[:4]
['adadelta', 'adagrad', 'adam', 'adamax']
>>> tx = get("adamw")(1e-3, weight_decay=1e-2)
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import optax

from jaxae.errors import InputError
from jaxae.registries import Registry, same_definition

_OPTIMIZERS = Registry("optimizer", "jaxae.train.optimizers.register(name, factory)")


def register(name: str, factory: Callable[..., optax.GradientTransformation], *, replace: bool = False) -> None:
    """Makes ``factory(learning_rate, **arguments)`` an optimizer that ``TrainConfig(optimizer=name)`` trains with.

    Register it again, under the same name, in any process that resumes one of its
    runs; registering it again as a notebook cell run twice replaces it
    (:func:`jaxae.registries.same_definition`); another factory needs ``replace=True``.

    >>> register("sgd_nesterov", lambda learning_rate, momentum=0.9: optax.sgd(learning_rate, momentum, nesterov=True))
    >>> unregister("sgd_nesterov")
    """
    if not isinstance(name, str) or not name or not callable(factory):
        raise InputError(f"register an optimizer as a name and a factory, got {name!r} and {factory!r}")
    _OPTIMIZERS.register(name, factory, replace=replace, same=same_definition)


def unregister(name: str) -> None:
    """Removes an optimizer of your own (jaxae's stay)."""
    _OPTIMIZERS.unregister(name)


def get(name: str) -> Callable[..., optax.GradientTransformation]:
    """The factory registered as ``name``; an ``InputError`` naming the known ones otherwise."""
    return _OPTIMIZERS.get(name)


def names() -> list[str]:
    return _OPTIMIZERS.names()


def check_arguments(name: str, arguments: dict) -> None:
    """Refuses, in one line, arguments that optimizer ``name``'s factory does not take."""
    parameters = inspect.signature(get(name)).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return
    takes = sorted(set(parameters) - {"learning_rate"})
    unknown = sorted(set(arguments) - set(takes))
    if unknown:
        raise InputError(f"optimizer {name!r} takes no argument(s) {unknown}; it takes {takes}")


def _sgd(learning_rate, momentum: float = 0.0, nesterov: bool = False) -> optax.GradientTransformation:
    """PyTorch's ``SGD``: heavy-ball momentum on the gradient, optionally Nesterov's."""
    return optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov)


register("sgd", _sgd)
for _name in ("adam", "adamw", "adamax", "adadelta", "adagrad", "rmsprop", "lamb", "lion", "nadam", "radam"):
    register(_name, getattr(optax, _name))
_OPTIMIZERS.seal()
