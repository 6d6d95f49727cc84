"""The XLA:CPU speed path, in one place.

Nothing here changes how jaxae computes on GPU or TPU, and nothing changes
process-wide state when it is imported:

* :mod:`jaxae.cpu.convolution`: convolution lowerings that XLA:CPU runs faster
  than its own convolution, and the rule that picks one per layer
  (``conv_lowering="auto"``; models reach it through :mod:`jaxae.models.convolution`).
* :mod:`jaxae.cpu.xla_options`: the compiler options every step compiles with
  on CPU (:func:`jit_with_cpu_options`).
* :mod:`jaxae.cpu.chunks`: the default size of a step's gradient chunks on CPU.
* :mod:`jaxae.cpu.host_memory`: keeping the host memory XLA:CPU frees
  (:func:`retain_freed_memory`, switched on by ``fit``, the CLI and the
  benchmarks) and running computations on the calling thread (opt-in).

``docs/performance.md`` has the measurements behind each choice.
"""

from jaxae.cpu.chunks import activation_bytes_per_example, default_microbatch_size
from jaxae.cpu.host_memory import dispatch_is_inline, execute_on_calling_thread, retain_freed_memory
from jaxae.cpu.xla_options import COMPILER_OPTIONS, jit_with_cpu_options

__all__ = [
    "COMPILER_OPTIONS",
    "activation_bytes_per_example",
    "default_microbatch_size",
    "dispatch_is_inline",
    "execute_on_calling_thread",
    "jit_with_cpu_options",
    "retain_freed_memory",
]
