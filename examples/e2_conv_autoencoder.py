"""CIFAR-10: a convolutional autoencoder and latent interpolation (COMP90051 Workshop 8).

Three stride-2 convolutions down to a 4x4x32 code and back, Adam 1e-3, summed
squared error, 48 epochs. Figures: reconstructions, and interpolation between two
test images in pixel space against latent space.

    python examples/e2_conv_autoencoder.py                       # jaxae, the full recipe
    python examples/e2_conv_autoencoder.py --quick               # a smoke run on 256 images
    python examples/e2_conv_autoencoder.py --framework both      # also the PyTorch rerun, for the comparison table

Other options are those of ``jaxae reproduce`` (``--workdir``, ``--data-dir``,
``--raw-data``, ``--seeds``, ``--epochs``). Metrics, checkpoints and figures go to
``runs/E2/<framework>/seed<k>/``; the comparison table is printed at the end.
The recipe itself is ``jaxae/experiments/e2_conv_autoencoder.py``.
"""

import sys

from jaxae.cli import main

if __name__ == "__main__":
    main(["reproduce", "E2", *sys.argv[1:]])
