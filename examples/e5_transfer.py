"""CIFAR-10: a conv autoencoder, then its encoder transferred to a classifier (IIT KGP Lecture 32).

The autoencoder trains 5 epochs (Adam 1e-3, MSE, batch 2000); its encoder plus a
fresh head then trains as a classifier. Figures: AE loss curve, first-layer kernels
(init / trained / difference), accuracy per epoch, per-class accuracy.

    python examples/e5_transfer.py                       # jaxae, the full recipe
    python examples/e5_transfer.py --quick               # a smoke run on 256 images
    python examples/e5_transfer.py --framework both      # also the PyTorch rerun, for the comparison table

Other options are those of ``jaxae reproduce`` (``--workdir``, ``--data-dir``,
``--raw-data``, ``--seeds``, ``--epochs``). Metrics, checkpoints and figures go to
``runs/E5/<framework>/seed<k>/``; the comparison table is printed at the end.
The recipe itself is ``jaxae/experiments/e5_transfer.py``.
"""

import sys

from jaxae.cli import main

if __name__ == "__main__":
    main(["reproduce", "E5", *sys.argv[1:]])
