"""MNIST: autoencoder-based PCA against 2- and 3-layer autoencoders (Assignment 9).

Four runs of 100 epochs each (PCA, 2-layer [64, 16], 2-layer [128, 16], 3-layer
[64, 32, 16]), Adam 1e-3 (the rate examples/e4_learning_rate_search.py picked),
pixels in [-1, 1]. Figures: reconstructions, smoothed train curves, 1<->7 and 4<->8
interpolations with the PCA and 3-layer models.

    python examples/e4_dense_autoencoders.py                       # jaxae, the full recipe
    python examples/e4_dense_autoencoders.py --quick               # a smoke run on 256 images
    python examples/e4_dense_autoencoders.py --framework both      # also the PyTorch rerun, for the comparison table

Other options are those of ``jaxae reproduce`` (``--workdir``, ``--data-dir``,
``--raw-data``, ``--seeds``, ``--epochs``). Metrics, checkpoints and figures go to
``runs/E4/<framework>/seed<k>/``; the comparison table is printed at the end.
The recipe itself is ``jaxae/experiments/e4_dense_autoencoders.py``.
"""

import sys

from jaxae.cli import main

if __name__ == "__main__":
    main(["reproduce", "E4", *sys.argv[1:]])
