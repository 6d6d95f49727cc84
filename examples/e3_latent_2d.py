"""MNIST: a convolutional autoencoder with a 2-D code (Raschka, STAT 453 L16.4).

Adam 5e-4, MSE, 20 epochs, batch 32. Figures: loss curve, reconstructions, the
2-D latent scatter coloured by digit, and images decoded from chosen latent points.

    python examples/e3_latent_2d.py                       # jaxae, the full recipe
    python examples/e3_latent_2d.py --quick               # a smoke run on 256 images
    python examples/e3_latent_2d.py --framework both      # also the PyTorch rerun, for the comparison table

Other options are those of ``jaxae reproduce`` (``--workdir``, ``--data-dir``,
``--raw-data``, ``--seeds``, ``--epochs``). Metrics, checkpoints and figures go to
``runs/E3/<framework>/seed<k>/``; the comparison table is printed at the end.
The recipe itself is ``jaxae/experiments/e3_latent_2d.py``.
"""

import sys

from jaxae.cli import main

if __name__ == "__main__":
    main(["reproduce", "E3", *sys.argv[1:]])
