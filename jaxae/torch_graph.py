"""A PyTorch ``nn.Module`` of common layers as a Flax model that jaxae trains, with its weights.

:func:`from_torch` traces the module with ``torch.fx.symbolic_trace``, turns each
operation of its ``forward`` into a :class:`Step` of a :class:`Graph` (plain data),
and gives a :class:`TorchGraph`, the Linen module that runs the graph with
jaxae's PyTorch-semantics layers (:mod:`jaxae.models.layers`), together with the
module's ``state_dict`` as Flax variables. Registered under a name, ``fit``
trains it like any model of your own::

    model, variables = from_torch(notebook_model, (28, 28, 1), name="notebook_ae")
    outputs = model.apply(variables, images_nhwc)
    state, history = fit(TrainConfig("notebook_ae", "mse", "adam", 1e-3, epochs=5, batch_size=32),
                         train, "runs/notebook_ae", initial_params=variables)
    notebook_model.load_state_dict(to_torch_state_dict(model, state.variables))

``initial_params`` starts training from the PyTorch weights, a ``BatchNorm``'s running
statistics included.

An operation it does not know is refused in one line naming it and where it is,
before any Flax code runs. What it knows: ``Conv2d``, ``ConvTranspose2d``, ``Linear``,
``BatchNorm1d``/``2d``, ``MaxPool2d``, ``AvgPool2d``, ``Upsample`` (nearest, bilinear),
``Dropout``, ``Flatten``, ``Unflatten``, ``ReLU``, ``LeakyReLU``, ``Sigmoid``, ``Tanh``,
``Identity``, their functional forms, ``view``/``reshape``/``flatten``, ``size`` and
``shape``, indexing, ``+ - * /``, ``exp`` and ``randn_like`` (``_module_step`` and ``_functions``
list them with the settings they take).

**Layout.** Flax runs NHWC. Every 4-D value of the graph is a feature map, PyTorch's
``(B, C, H, W)``, held as ``(B, H, W, C)``; every other value is held as in PyTorch.
An operation that depends on the order of the axes (``flatten``, ``view``, ``reshape``,
``Unflatten``, indexing, ``size``, ``Linear`` on a 4-D value, broadcasting a 4-D
value with a value of another rank) sees the PyTorch order: a feature map is
transposed to NCHW before it and back to NHWC after, so that flattening gives
PyTorch's ``(C, H, W)`` order and the ``Linear`` weights convert plainly. The model
takes NHWC images of ``image_shape`` ``(H, W, C)`` and returns its 4-D outputs NHWC.

**Randomness.** ``Dropout`` draws from the ``dropout`` stream when ``train=True``
(whatever the ``training`` argument of ``F.dropout`` was when traced), and
``torch.randn_like`` from the ``latent`` stream; in evaluation dropout does nothing
and ``randn_like`` gives zeros, so a VAE's reparameterisation
``mean + exp(0.5 * log_var) * randn_like(...)`` decodes its mean code, as jaxae's VAEs do.

**Weights.** Parameters are named by the PyTorch module path, dots made underscores
(``encoder.0`` is ``encoder_0``). A ``BatchNorm`` keeps its running statistics in the
``batch_stats`` collection (``mean``, ``var``, and ``num_batches_tracked``, which training
counts as PyTorch does), so ``state_dict`` → variables → ``state_dict`` is exact.
"""

from __future__ import annotations

import dataclasses
import math
import operator
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jaxae import models, trees
from jaxae.errors import InputError, first_line
from jaxae.models import layers
from jaxae.models.convolution import conv2d, conv_transpose2d
from jaxae.shapes import LATENT_RNG
from jaxae.torch_port import _CONV, _LINEAR

__all__ = ["Graph", "Ref", "Step", "TorchGraph", "from_torch", "to_torch_state_dict", "trace", "variables_from_torch"]


# The graph: plain, hashable data, so that a registration compares and a config stays data.


@dataclasses.dataclass(frozen=True)
class Ref:
    """The value of the step named ``step``."""

    step: str


@dataclasses.dataclass(frozen=True)
class Step:
    """One operation of the traced ``forward``.

    Attributes:
      name: the ``torch.fx`` node's name.
      op: what it computes, a key of ``_OPS``, or of ``_LAYERS`` for an operation with weights.
      args: its inputs: constants, :class:`Ref` to earlier steps, or tuples of them.
      options: the operation's settings, ``(name, value)`` pairs.
      layer: the PyTorch module path of the weights it uses (one Flax layer per path,
        however often it is called); None for an operation without weights.
    """

    name: str
    op: str
    args: tuple = ()
    options: tuple[tuple[str, Any], ...] = ()
    layer: str | None = None


@dataclasses.dataclass(frozen=True)
class Graph:
    """A traced ``forward``: its steps in order, the first one the input, and its output
    (a :class:`Ref`, or a tuple of them)."""

    steps: tuple[Step, ...]
    output: Any

    def layers(self) -> dict[str, Step]:
        """The first step of each PyTorch module with weights, by module path."""
        found: dict[str, Step] = {}
        for step in self.steps:
            if step.layer is not None:
                found.setdefault(step.layer, step)
        return found


def flax_name(path: str) -> str:
    """The Flax name of the layer at PyTorch module path ``path``."""
    return path.replace(".", "_")


# The Flax side.


def _torch_order(x):
    """``x`` in PyTorch's axis order: a feature map NCHW."""
    return x.transpose(0, 3, 1, 2) if x.ndim == 4 else x


def _flax_order(x):
    """``x`` (in PyTorch's order) as the graph holds it: a feature map NHWC."""
    return x.transpose(0, 2, 3, 1) if x.ndim == 4 else x


def _in_torch_order(fn, x, *args):
    return _flax_order(fn(_torch_order(x), *args))


def _torch_shape(x) -> tuple[int, ...]:
    shape = tuple(x.shape)
    return (shape[0], shape[3], shape[1], shape[2]) if len(shape) == 4 else shape


def _flatten(x, start_dim, end_dim):
    def flatten(y):
        start, end = start_dim % max(y.ndim, 1), end_dim % max(y.ndim, 1)
        return y.reshape((*y.shape[:start], -1, *y.shape[end + 1:]))

    return _in_torch_order(flatten, x)


def _unflatten(x, dim, sizes):
    def unflatten(y):
        axis = dim % y.ndim
        return y.reshape((*y.shape[:axis], *sizes, *y.shape[axis + 1:]))

    return _in_torch_order(unflatten, x)


def _reshape(x, shape):
    return _in_torch_order(jnp.reshape, x, tuple(shape))


def _size(x, dim):
    shape = _torch_shape(x)
    return shape if dim is None else shape[dim]


def _getitem(value, index):
    if isinstance(value, (tuple, list)):
        return value[index]
    return _in_torch_order(operator.getitem, value, index)


def _binary(fn):
    """An elementwise operation of two values, broadcast as PyTorch broadcasts them."""

    def apply(a, b):
        ranks = {jnp.ndim(v) for v in (a, b) if isinstance(v, jax.Array)} - {0}
        if len(ranks) > 1 and 4 in ranks:  # a feature map broadcast with a value of another rank
            return _flax_order(fn(*(_torch_order(v) if jnp.ndim(v) == 4 else v for v in (a, b))))
        return fn(a, b)

    return apply


def _conv_input(x, what):
    if x.ndim != 4:
        raise InputError(f"from_torch: {what} takes a batch of feature maps (4-D), got shape {_torch_shape(x)}")
    return x


def _avg_pool2d(x, window):
    batch, height, width, channels = x.shape
    height, width = height // window, width // window
    x = x[:, : height * window, : width * window].reshape(batch, height, window, width, window, channels)
    return x.mean(axis=(2, 4))


def _upsample(x, scale, mode, align_corners):
    x = _conv_input(x, "Upsample")
    if mode == "bilinear":
        return layers.upsample_bilinear(x, scale, align_corners)
    return jnp.repeat(jnp.repeat(x, scale, axis=1), scale, axis=2)


_OPS = {
    "identity": lambda x: x,
    "relu": jax.nn.relu,
    "leaky_relu": lambda x, negative_slope: jnp.where(x >= 0, x, negative_slope * x),
    "sigmoid": jax.nn.sigmoid,
    "tanh": jnp.tanh,
    "exp": jnp.exp,
    "max_pool2d": lambda x, window: layers.max_pool2d(_conv_input(x, "MaxPool2d"), window),
    "avg_pool2d": lambda x, window: _avg_pool2d(_conv_input(x, "AvgPool2d"), window),
    "upsample": _upsample,
    "flatten": _flatten,
    "unflatten": _unflatten,
    "reshape": _reshape,
    "size": _size,
    "getitem": _getitem,
    "add": _binary(operator.add),
    "sub": _binary(operator.sub),
    "mul": _binary(operator.mul),
    "truediv": _binary(operator.truediv),
}
"""The operations without weights or randomness: ``fn(*args, **options)`` on values as the graph holds them."""


def _pytorch_uniform(fan_in: int):
    bound = 1.0 / math.sqrt(fan_in)
    return lambda key, shape: jax.random.uniform(key, shape, jnp.float32, -bound, bound)


class _WithoutBias(nn.Module):
    """A ``Linear``, ``Conv2d`` or ``ConvTranspose2d`` built with ``bias=False``: a ``kernel``
    alone, in the layout of jaxae's layer of the same kind, drawn as PyTorch draws it."""

    kind: str
    features: int
    kernel_size: int = 1
    stride: int = 1
    padding: int = 0
    output_padding: int = 0

    @nn.compact
    def __call__(self, x):
        k, inputs = self.kernel_size, x.shape[-1]
        shape = {"linear": (inputs, self.features), "conv2d": (k, k, inputs, self.features),
                 "conv_transpose2d": (k, k, self.features, inputs)}[self.kind]
        kernel = self.param("kernel", _pytorch_uniform(math.prod(shape[:-1])), shape).astype(x.dtype)
        if self.kind == "linear":
            return x @ kernel
        if self.kind == "conv2d":
            return conv2d(x, kernel, self.stride, self.padding)
        return conv_transpose2d(x, kernel, self.stride, self.padding, self.output_padding)


class _BatchNorm(layers.BatchNorm):
    """jaxae's ``BatchNorm`` that also counts its training batches, PyTorch's ``num_batches_tracked``."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        count = self.variable("batch_stats", "num_batches_tracked", jnp.zeros, (), jnp.int32)
        if train and not self.is_initializing():
            count.value = count.value + 1
        return super().__call__(x, train)


_LAYERS = ("linear", "conv2d", "conv_transpose2d", "batch_norm")
"""The ops with weights: each a Flax layer named by its PyTorch module path."""


def _build_layer(step: Step) -> nn.Module:
    options, name = dict(step.options), flax_name(step.layer)
    if step.op == "batch_norm":
        return _BatchNorm(options["momentum"], options["eps"], name=name)
    if not options.pop("bias"):
        return _WithoutBias(step.op, **options, name=name)
    cls = {"linear": layers.Linear, "conv2d": layers.Conv2d, "conv_transpose2d": layers.ConvTranspose2d}[step.op]
    return cls(**options, name=name)


def _apply_layer(step: Step, layer: nn.Module, x, train: bool):
    if step.op == "batch_norm":
        if x.ndim not in (2, 4):
            raise InputError(f"from_torch: BatchNorm at {step.layer!r} takes (B, C) or (B, C, H, W), got {_torch_shape(x)}")
        return layer(x, train)
    if step.op == "linear":
        return _in_torch_order(layer, x)
    return layer(_conv_input(x, f"{step.op} at {step.layer!r}"))


def _resolve(value, values: Mapping[str, Any]):
    """``value`` with each :class:`Ref` replaced by the value of its step."""
    if isinstance(value, Ref):
        return values[value.step]
    if isinstance(value, (tuple, list)):
        return type(value)(_resolve(v, values) for v in value)
    if isinstance(value, slice):
        return slice(*(_resolve(v, values) for v in (value.start, value.stop, value.step)))
    return value


class TorchGraph(nn.Module):
    """A traced PyTorch ``forward`` (:func:`trace`) as a Linen module on NHWC images.

    ``train`` turns dropout, ``randn_like``'s draws and ``BatchNorm``'s batch statistics on.
    ``encoder`` and ``decoder``, where traced, are the PyTorch module's ways to its code and
    back (:meth:`encode`, :meth:`decode`), run on the same weights.
    """

    graph: Graph
    encoder: Graph | None = None
    decoder: Graph | None = None

    def __call__(self, images, train: bool = False):
        return self._run(self.graph, images, train)

    def encode(self, images, train: bool = False):
        """The code of ``images``: the output of the PyTorch module's ``encode`` (or ``encoder``)."""
        return self._run(self._half(self.encoder, "encode"), images, train)

    def decode(self, codes, train: bool = False):
        """Images decoded from ``codes`` by the PyTorch module's ``decode`` (or ``decoder``)."""
        return self._run(self._half(self.decoder, "decode"), codes, train)

    def code(self, images):
        """The point an image maps to: :meth:`encode`'s output, or the first of its outputs (a VAE's mean)."""
        codes = self.encode(images)
        return codes[0] if isinstance(codes, tuple) else codes

    def _half(self, graph: Graph | None, method: str) -> Graph:
        if graph is None:
            raise InputError(f"{self.name}: its PyTorch module had no {method} method nor {method}r submodule "
                             f"when from_torch traced it")
        return graph

    @nn.compact
    def _run(self, graph: Graph, inputs, train: bool):
        values: dict[str, Any] = {}
        built: dict[str, nn.Module] = {}
        for step in graph.steps:
            args, options = _resolve(step.args, values), dict(step.options)
            if step.op == "input":
                value = inputs
            elif step.layer is not None:
                if step.layer not in built:
                    built[step.layer] = _build_layer(step)
                value = _apply_layer(step, built[step.layer], args[0], train)
            elif step.op == "dropout":
                value = nn.Dropout(options["rate"], deterministic=not train)(args[0])
            elif step.op == "randn_like":
                like = args[0]
                value = jax.random.normal(self.make_rng(LATENT_RNG), like.shape, like.dtype) if train else jnp.zeros_like(like)
            else:
                value = _OPS[step.op](*args, **options)
            values[step.name] = value
        return _resolve(graph.output, values)


# Tracing: torch.fx nodes to steps, refusing what the graph cannot compute.


def _unsupported(what: str, where: str) -> InputError:
    return InputError(f"from_torch: unsupported operation {what} at {where}")


def _qualified_name(target) -> str:
    """How PyTorch's documentation names a module class or function, e.g. ``torch.nn.GELU``."""
    import torch
    import torch.nn.functional as F

    name = getattr(target, "__name__", repr(target))
    for prefix, namespace in (("torch.nn", torch.nn), ("torch.nn.functional", F), ("torch", torch), ("operator", operator)):
        if getattr(namespace, name, None) is target:
            return f"{prefix}.{name}"
    return f"{getattr(target, '__module__', None) or '?'}.{getattr(target, '__qualname__', name)}"


def _where(node) -> str:
    """Where ``node`` is: its module's path, or the node's name and the module whose ``forward`` has it."""
    if node.op == "call_module":
        return repr(node.target)
    stack = node.meta.get("nn_module_stack") or {}
    inside = f"the forward of {next(reversed(stack))!r}" if stack else "forward"
    return f"{node.name!r} in {inside}"


def _square(value, setting: str, what: str, where: str) -> int:
    """``what``'s ``setting``, an int or a pair of equal ints (a whole float for a scale), as an int."""
    if isinstance(value, (tuple, list)) and len(set(value)) == 1:
        value = value[0]
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _unsupported(f"{what} with {setting}={value!r} (only one int for both sides)", where)
    return value


def _expect(what: str, where: str, **settings) -> None:
    """Refuses any setting not at its expected value; ``settings`` are ``name=(value, expected)``."""
    for name, (value, expected) in settings.items():
        if value != expected:
            raise _unsupported(f"{what} with {name}={value!r}", where)


def _pool_window(what, where, kernel_size, stride, padding=0, dilation=1, ceil_mode=False, **fixed) -> int:
    window = _square(kernel_size, "kernel_size", what, where)
    stride = window if stride is None or stride == () else _square(stride, "stride", what, where)
    _expect(what, where, stride=(stride, window), padding=(_square(padding, "padding", what, where), 0),
            dilation=(_square(dilation, "dilation", what, where), 1), ceil_mode=(ceil_mode, False), **fixed)
    return window


def _convolution(m, what, where) -> dict[str, Any]:
    _expect(what, where, groups=(m.groups, 1), dilation=(_square(m.dilation, "dilation", what, where), 1),
            padding_mode=(m.padding_mode, "zeros"))
    return {"features": m.out_channels, "kernel_size": _square(m.kernel_size, "kernel_size", what, where),
            "stride": _square(m.stride, "stride", what, where), "padding": _square(m.padding, "padding", what, where),
            "bias": m.bias is not None}


def _module_step(m, where: str) -> tuple[str, dict[str, Any]]:
    """The op and options of the ``torch.nn`` module ``m``."""
    import torch.nn as tnn

    what = _qualified_name(type(m))
    kind = type(m)
    if kind is tnn.Conv2d:
        return "conv2d", _convolution(m, what, where)
    if kind is tnn.ConvTranspose2d:
        return "conv_transpose2d", {**_convolution(m, what, where),
                                    "output_padding": _square(m.output_padding, "output_padding", what, where)}
    if kind is tnn.Linear:
        return "linear", {"features": m.out_features, "bias": m.bias is not None}
    if kind in (tnn.BatchNorm1d, tnn.BatchNorm2d):
        _expect(what, where, affine=(m.affine, True), track_running_stats=(m.track_running_stats, True))
        if m.momentum is None:
            raise _unsupported(f"{what} with momentum=None", where)
        return "batch_norm", {"momentum": m.momentum, "eps": m.eps}
    if kind is tnn.MaxPool2d:
        return "max_pool2d", {"window": _pool_window(what, where, m.kernel_size, m.stride, m.padding, m.dilation,
                                                     m.ceil_mode, return_indices=(m.return_indices, False))}
    if kind is tnn.AvgPool2d:
        return "avg_pool2d", {"window": _pool_window(what, where, m.kernel_size, m.stride, m.padding, 1, m.ceil_mode,
                                                     divisor_override=(m.divisor_override, None))}
    if kind is tnn.Upsample:
        _expect(what, where, size=(m.size, None))
        scale = _square(m.scale_factor, "scale_factor", what, where)
        if m.mode not in ("nearest", "bilinear"):
            raise _unsupported(f"{what} with mode={m.mode!r}", where)
        return "upsample", {"scale": scale, "mode": m.mode, "align_corners": bool(m.align_corners)}
    if kind is tnn.Dropout:
        return "dropout", {"rate": m.p}
    if kind is tnn.Flatten:
        return "flatten", {"start_dim": m.start_dim, "end_dim": m.end_dim}
    if kind is tnn.Unflatten:
        return "unflatten", {"dim": m.dim, "sizes": tuple(m.unflattened_size)}
    if kind is tnn.LeakyReLU:
        return "leaky_relu", {"negative_slope": m.negative_slope}
    simple = {tnn.ReLU: "relu", tnn.Sigmoid: "sigmoid", tnn.Tanh: "tanh", tnn.Identity: "identity"}
    if kind in simple:
        return simple[kind], {}
    raise _unsupported(what, where)


@dataclasses.dataclass(frozen=True)
class _Function:
    """A function or tensor method the graph computes: its parameters (``input`` first, or
    ``*shape`` for a method taking a shape as varargs), their defaults, and how they
    become the step's ``args`` and ``options``.

    ``args``: the parameters passed as the step's arguments; ``options``: as its options;
    ``fixed``: parameters that must keep their default (anything else is refused).
    """

    op: str
    params: tuple[str, ...]
    args: tuple[str, ...] = ("input",)
    options: tuple[str, ...] = ()
    defaults: tuple[tuple[str, Any], ...] = ()
    fixed: tuple[str, ...] = ()


def _functions() -> dict[Any, _Function]:
    """The functions the graph computes, by ``torch.fx`` target (a method by its name)."""
    import torch
    import torch.nn.functional as F

    unary = {"relu": (F.relu, torch.relu, "relu"), "sigmoid": (F.sigmoid, torch.sigmoid, "sigmoid"),
             "tanh": (F.tanh, torch.tanh, "tanh"), "exp": (torch.exp, "exp")}
    binary = {"add": (operator.add, torch.add, "add"), "sub": (operator.sub, torch.sub, "sub"),
              "mul": (operator.mul, torch.mul, "mul"), "truediv": (operator.truediv, torch.div, "div")}
    table = {}
    for op, targets in unary.items():
        for target in targets:
            table[target] = _Function(op, ("input", "inplace"), defaults=(("inplace", False),))
    for op, targets in binary.items():
        for target in targets:
            table[target] = _Function(op, ("input", "other", "alpha", "rounding_mode"), args=("input", "other"),
                                      defaults=(("alpha", 1), ("rounding_mode", None)), fixed=("alpha", "rounding_mode"))
    pool_defaults = (("stride", None), ("padding", 0), ("ceil_mode", False))
    flatten = _Function("flatten", ("input", "start_dim", "end_dim"), options=("start_dim", "end_dim"),
                        defaults=(("start_dim", 0), ("end_dim", -1)))
    table.update({
        F.leaky_relu: _Function("leaky_relu", ("input", "negative_slope", "inplace"), options=("negative_slope",),
                                defaults=(("negative_slope", 0.01), ("inplace", False))),
        F.max_pool2d: _Function("max_pool2d", ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode",
                                               "return_indices"),
                                options=("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
                                defaults=(*pool_defaults, ("dilation", 1), ("return_indices", False)),
                                fixed=("return_indices",)),
        F.avg_pool2d: _Function("avg_pool2d", ("input", "kernel_size", "stride", "padding", "ceil_mode",
                                               "count_include_pad", "divisor_override"),
                                options=("kernel_size", "stride", "padding", "ceil_mode"),
                                defaults=(*pool_defaults, ("count_include_pad", True), ("divisor_override", None)),
                                fixed=("divisor_override",)),
        F.dropout: _Function("dropout", ("input", "p", "training", "inplace"), options=("p",),
                             defaults=(("p", 0.5), ("training", True), ("inplace", False))),
        torch.flatten: flatten,
        "flatten": flatten,
        torch.reshape: _Function("reshape", ("input", "shape"), args=("input", "shape")),
        "view": _Function("reshape", ("input", "*shape"), args=("input", "shape")),
        "reshape": _Function("reshape", ("input", "*shape"), args=("input", "shape")),
        "size": _Function("size", ("input", "dim"), args=("input", "dim"), defaults=(("dim", None),)),
        torch.randn_like: _Function("randn_like", ("input",)),
        operator.getitem: _Function("getitem", ("input", "index"), args=("input", "index")),
    })
    return table


def _bind(node, function: _Function, what: str, where: str) -> dict[str, Any]:
    """``node``'s arguments by parameter name, defaults filled in."""
    args = tuple(node.args)
    if function.params[-1].startswith("*"):  # x.view(b, -1) or x.view((b, -1))
        rest = args[1:]
        args = (*args[:1], tuple(rest[0]) if len(rest) == 1 and isinstance(rest[0], (tuple, list)) else rest)
    names = [name.lstrip("*") for name in function.params]
    unknown = sorted(set(node.kwargs) - set(names))
    if len(args) > len(names) or unknown:
        raise _unsupported(f"{what} with arguments {unknown or args[len(names):]}", where)
    defaults = dict(function.defaults)
    bound = {**defaults, **dict(zip(names, args)), **node.kwargs}
    missing = [name for name in names if name not in bound]
    if missing:
        raise _unsupported(f"{what} without {', '.join(missing)}", where)
    _expect(what, where, **{name: (bound[name], defaults[name]) for name in function.fixed})
    return bound


def _function_step(node, functions: Mapping[Any, _Function]) -> tuple[str, tuple, dict[str, Any]]:
    """The op, args and options of a ``call_function`` or ``call_method`` node."""
    where = _where(node)
    what = f"torch.Tensor.{node.target}" if node.op == "call_method" else _qualified_name(node.target)
    if node.op == "call_function" and node.target is getattr:
        if node.args[1:] != ("shape",):
            raise _unsupported(f"getattr(tensor, {node.args[1]!r})", where)
        return "size", (node.args[0], None), {}
    function = functions.get(node.target)
    if function is None:
        raise _unsupported(what, where)
    bound = _bind(node, function, what, where)
    options = {name: bound[name] for name in function.options}
    if function.op in ("max_pool2d", "avg_pool2d"):
        options = {"window": _pool_window(what, where, **options)}
    if function.op == "dropout":
        options = {"rate": options["p"]}
    return function.op, tuple(bound[name] for name in function.args), options


def _to_args(value):
    """fx arguments as step arguments: nodes become :class:`Ref`, lists tuples."""
    import torch.fx

    if isinstance(value, torch.fx.Node):
        return Ref(value.name)
    if isinstance(value, (tuple, list)):
        return tuple(_to_args(v) for v in value)
    if isinstance(value, slice):
        return slice(_to_args(value.start), _to_args(value.stop), _to_args(value.step))
    return value


def trace(module, method: str = "forward") -> Graph:
    """The :class:`Graph` of ``module``'s ``forward`` (or of its ``method``: another method, or a
    submodule called as one), traced by ``torch.fx.symbolic_trace``. Layers are named by their
    path in ``module`` either way.

    Raises:
      InputError: in one line, for an operation the graph cannot compute (naming it and
        where it is), a ``forward`` that takes other than one input or that fx cannot trace.
    """
    import torch.fx

    prefix = ""
    if method != "forward":
        module, prefix = _entry(module, method), f"{_ENTRY}."
    try:
        traced = torch.fx.symbolic_trace(module)
    except Exception as error:  # fx's errors (control flow on tensors, ...) are of many kinds
        raise InputError(f"from_torch: torch.fx cannot trace {type(module).__name__}: {first_line(error)}") from error
    submodules = dict(traced.named_modules())
    functions = _functions()
    steps, output, names = [], None, {}
    for node in traced.graph.nodes:
        if node.op == "placeholder":
            if steps:
                raise InputError(f"from_torch: forward must take one input, the images; it also takes {node.target!r}")
            steps.append(Step(node.name, "input"))
        elif node.op == "call_module":
            op, options = _module_step(submodules[node.target], _where(node))
            layer = node.target.removeprefix(prefix) if op in _LAYERS else None
            if layer is not None and names.setdefault(flax_name(layer), layer) != layer:
                raise InputError(f"from_torch: modules {names[flax_name(layer)]!r} and {layer!r} have the same Flax "
                                 f"name {flax_name(layer)!r}; rename one")
            steps.append(Step(node.name, op, _to_args(node.args), tuple(options.items()), layer))
        elif node.op in ("call_function", "call_method"):
            op, args, options = _function_step(node, functions)
            steps.append(Step(node.name, op, _to_args(args), tuple(options.items())))
        elif node.op == "output":
            output = _to_args(node.args[0])
            if not isinstance(output, (Ref, tuple)):
                raise InputError(f"from_torch: forward must return a tensor or a tuple of tensors, got {output!r}")
        else:
            raise _unsupported(f"{node.op} {node.target!r} (a parameter or buffer used directly)", _where(node))
    return Graph(tuple(steps), output)


_ENTRY = "traced"


def _entry(module, method: str):
    """A module whose ``forward`` is ``module``'s ``method`` (a method, or a submodule), ``module`` its ``traced``."""
    import torch

    class Entry(torch.nn.Module):
        def __init__(self):
            super().__init__()
            setattr(self, _ENTRY, module)

        def forward(self, x):
            return getattr(getattr(self, _ENTRY), method)(x)

    Entry.__name__ = f"{type(module).__name__}.{method}"
    return Entry()


# Weights.


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    return np.asarray(value)


def _graph(model) -> Graph:
    if isinstance(model, str):
        model = models.create(model)
    if isinstance(model, Graph):
        return model
    if not isinstance(model, TorchGraph):
        raise InputError(f"from_torch: expected a TorchGraph, its Graph or its registered name, got {type(model).__name__}")
    return model.graph


def _torch_keys(graph: Graph) -> list[str]:
    keys = []
    for path, step in graph.layers().items():
        options = dict(step.options)
        if step.op == "batch_norm":
            names = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
        else:
            names = ("weight", "bias") if options["bias"] else ("weight",)
        keys += [f"{path}.{name}" for name in names]
    return keys


def variables_from_torch(model, state_dict: Mapping[str, Any]) -> dict[str, Any]:
    """Flax variables ``{"params": ..., "batch_stats": ...}`` (no ``batch_stats`` without a
    ``BatchNorm``) of a :class:`TorchGraph` (or its :class:`Graph`, or its registered name)
    from the PyTorch module's ``state_dict``.

    Raises:
      InputError: naming the missing and unexpected keys (a weight no traced operation uses
        is unexpected).
    """
    graph = _graph(model)
    state = {key: _to_numpy(value) for key, value in state_dict.items()}
    expected = _torch_keys(graph)
    if set(state) != set(expected):
        raise InputError(f"from_torch: the state_dict does not fit the traced graph: missing keys "
                         f"{sorted(set(expected) - set(state))}, unexpected keys (used by no traced operation) "
                         f"{sorted(set(state) - set(expected))}")
    params, stats = {}, {}
    for path, step in graph.layers().items():
        name = flax_name(path)
        if step.op == "batch_norm":
            params[name] = {"scale": jnp.asarray(state[f"{path}.weight"]), "bias": jnp.asarray(state[f"{path}.bias"])}
            stats[name] = {"mean": jnp.asarray(state[f"{path}.running_mean"]),
                           "var": jnp.asarray(state[f"{path}.running_var"]),
                           "num_batches_tracked": jnp.asarray(state[f"{path}.num_batches_tracked"], jnp.int32)}
            continue
        layout = _LINEAR if step.op == "linear" else _CONV
        params[name] = {"kernel": jnp.asarray(layout.kernel_to_flax(state[f"{path}.weight"]))}
        if f"{path}.bias" in state:
            params[name]["bias"] = jnp.asarray(layout.bias_to_flax(state[f"{path}.bias"]))
    return {"params": params, "batch_stats": stats} if stats else {"params": params}


def to_torch_state_dict(model, variables: Mapping[str, Any]) -> OrderedDict[str, Any]:
    """The PyTorch ``state_dict`` (torch tensors) of a :class:`TorchGraph`'s Flax ``variables``,
    for ``module.load_state_dict``.

    ``model`` is the :class:`TorchGraph` (or its :class:`Graph`, or its registered name);
    ``variables`` is ``{"params": ...}`` with ``"batch_stats"`` where it has a ``BatchNorm``
    (``state.variables`` after ``fit``).
    """
    import torch

    graph = _graph(model)
    params, stats = variables["params"], variables.get("batch_stats", {})
    state = OrderedDict()

    def put(key, value, dtype=None):
        state[key] = torch.from_numpy(np.array(value, dtype=dtype, order="C"))

    for path, step in graph.layers().items():
        name = flax_name(path)
        if step.op == "batch_norm":
            put(f"{path}.weight", params[name]["scale"])
            put(f"{path}.bias", params[name]["bias"])
            put(f"{path}.running_mean", stats[name]["mean"])
            put(f"{path}.running_var", stats[name]["var"])
            put(f"{path}.num_batches_tracked", stats[name]["num_batches_tracked"], np.int64)
            continue
        layout = _LINEAR if step.op == "linear" else _CONV
        put(f"{path}.weight", layout.kernel_to_torch(np.asarray(params[name]["kernel"])))
        if "bias" in params[name]:
            put(f"{path}.bias", layout.bias_to_torch(np.asarray(params[name]["bias"])))
    return state


def from_torch(module, image_shape: tuple[int, int, int], *, name: str, task: str | None = None,
               register: bool = True, transform: str = "to_tensor", replace: bool = False):
    """A PyTorch module as a Flax model jaxae trains, and its weights.

    Args:
      module: a ``torch.nn.Module`` of the operations this module lists; its ``forward``
        takes one batch of NCHW images and returns a tensor or a tuple of them.
      image_shape: one input image, ``(height, width, channels)``, as the Flax model takes it (NHWC).
      name: the model's name in jaxae's registry.
      task: "autoencoder" or "classifier"; by default "autoencoder" where the output (the
        first of a tuple) has the input's shape, else "classifier".
      register: register the model under ``name`` (:func:`jaxae.models.register`), so that
        ``TrainConfig(name, ...)`` and ``fit`` train it.
      transform, replace: as for :func:`jaxae.models.register`.

    Returns:
      ``(model, variables)``: the :class:`TorchGraph` (``models.create(name)`` where
      registered) and its Flax variables from ``module.state_dict()``. An autoencoder
      whose module has ``encode`` and ``decode`` methods (or ``encoder`` and ``decoder``
      submodules) that give its code and decode it to images also gets them, as
      ``model.encode`` and ``model.decode``: ``jaxae explore`` shows its run.

    Raises:
      InputError: in one line, for an operation it cannot convert (before any Flax code
        runs), or a graph that fails on images of ``image_shape``.
    """
    graph = trace(module)
    model = TorchGraph(graph, name=name)
    variables = variables_from_torch(graph, module.state_dict())
    images = jax.ShapeDtypeStruct((1, *image_shape), jnp.float32)
    try:
        abstract = jax.eval_shape(model.init, jax.random.key(0), images)
        outputs = jax.eval_shape(model.apply, abstract, images)
    except Exception as error:  # the user's graph on the given shape: any error is a shape misfit
        raise InputError(f"from_torch: {name}: the traced model fails on images of shape {tuple(image_shape)}: "
                         f"{first_line(error)}") from error
    difference = trees.first_difference(trees.leaf_shapes(abstract), trees.leaf_shapes(variables),
                                        names=("model", "state_dict"))
    if difference:
        raise InputError(f"from_torch: {name}: the state_dict's weights do not fit images of shape "
                         f"{tuple(image_shape)}: {difference}")
    if task is None:
        first = outputs[0] if isinstance(outputs, tuple) else outputs
        task = "autoencoder" if first.shape == images.shape else "classifier"
    halves = _halves(module, model, abstract, images) if task == "autoencoder" else {}
    model = model.clone(**halves)
    if register:
        models.register(name, TorchGraph, image_shape=tuple(image_shape), task=task, transform=transform,
                        defaults={"graph": graph, **halves}, replace=replace)
        model = models.create(name)
    return model, variables


def _halves(module, model: TorchGraph, variables, images) -> dict[str, Graph]:
    """An autoencoder's ways to its code and back, ``{"encoder", "decoder"}``, for :meth:`TorchGraph.encode`
    and :meth:`~TorchGraph.decode` (what ``jaxae explore`` shows): the PyTorch module's ``encode`` and
    ``decode`` methods, else its ``encoder`` and ``decoder`` submodules, where both trace and the decode
    of the code (a VAE's mean) has the images' shape; else none."""
    for names in (("encode", "decode"), ("encoder", "decoder")):
        if not all(callable(getattr(module, name, None)) for name in names):
            continue
        try:
            halves = dict(zip(("encoder", "decoder"), (trace(module, name) for name in names)))
            both = model.clone(**halves)
            codes = jax.eval_shape(lambda v, x: both.apply(v, x, method="code"), variables, images)  # noqa: B023
            decoded = jax.eval_shape(lambda v, z: both.apply(v, z, method="decode"), variables, codes)  # noqa: B023
        except Exception:  # noqa: BLE001 -- a half that fx cannot trace or that does not fit: not a way to the code
            continue
        if getattr(decoded, "shape", None) == images.shape:
            return halves
    return {}
