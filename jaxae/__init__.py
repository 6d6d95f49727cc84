"""jaxae: the autoencoders and classifiers of four PyTorch teaching materials, in JAX/Flax."""

from jaxae import models

__version__ = "0.1.0"
__all__ = ["models"]
