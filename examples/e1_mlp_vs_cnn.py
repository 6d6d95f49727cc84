"""CIFAR-10: a multilayer perceptron against a small CNN (COMP90051 Workshop 8).

Both classifiers train 10 epochs with SGD (lr 0.01, momentum 0.9) on batches of 128
and are tested after every epoch (dropout left on, as the workshop did). Figures:
training loss and accuracy curves, test accuracy per epoch beside the published one.

    python examples/e1_mlp_vs_cnn.py                       # jaxae, the full recipe
    python examples/e1_mlp_vs_cnn.py --quick               # a smoke run on 256 images
    python examples/e1_mlp_vs_cnn.py --framework both      # also the PyTorch rerun, for the comparison table

Other options are those of ``jaxae reproduce`` (``--workdir``, ``--data-dir``,
``--raw-data``, ``--seeds``, ``--epochs``). Metrics, checkpoints and figures go to
``runs/E1/<framework>/seed<k>/``; the comparison table is printed at the end.
The recipe itself is ``jaxae/experiments/e1_classifiers.py``.
"""

import sys

from jaxae.cli import main

if __name__ == "__main__":
    main(["reproduce", "E1", *sys.argv[1:]])
