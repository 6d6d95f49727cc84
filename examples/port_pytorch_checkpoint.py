"""Load a checkpoint trained with the original PyTorch notebook into jaxae.

Here the "notebook" is ``jaxae.torch_port.torch_reference``, which builds the
seed's PyTorch model with the seed's module names; a state_dict saved from the
original notebook loads the same way.

    python examples/port_pytorch_checkpoint.py [MODEL]   # needs the `torch` extra
"""

import sys
import tempfile
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import torch

from jaxae import models
from jaxae.torch_port import params_from_torch, params_to_torch, torch_reference


def main(name: str = "mnist_conv_ae_2d") -> None:
    notebook_model = torch_reference(name).eval()
    checkpoint = Path(tempfile.mkdtemp()) / f"{name}.pt"
    torch.save(notebook_model.state_dict(), checkpoint)

    variables = params_from_torch(name, torch.load(checkpoint))
    model = models.create(name)

    low, high = models.spec(name).value_range
    images = np.random.default_rng(0).uniform(low, high, (8, *model.image_shape)).astype(np.float32)
    ours = np.asarray(model.apply(variables, jnp.asarray(images)))
    with torch.no_grad():
        theirs = notebook_model(torch.from_numpy(images.transpose(0, 3, 1, 2).copy())).numpy()
    theirs = (theirs.transpose(0, 2, 3, 1) if theirs.ndim == 4 else theirs).reshape(ours.shape)
    print(f"{name}: max |jaxae - PyTorch| = {np.abs(ours - theirs).max():.2e} over {ours.size} outputs")

    exported = params_to_torch(name, variables)
    assert all(torch.equal(exported[k], v) for k, v in notebook_model.state_dict().items())
    print(f"{name}: exported back to a PyTorch state_dict, identical to the original")


if __name__ == "__main__":
    main(*sys.argv[1:])
