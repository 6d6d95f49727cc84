"""Class names of the datasets, as the seeds print them."""

from __future__ import annotations

from jaxae.errors import InputError

CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "cifar10": ("plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"),
}
"""The class names of each dataset, by label; CIFAR-10's are the seeds' short ones."""

DATASETS = tuple(CLASS_NAMES)
"""The seeds' datasets (TFDS names); any other TFDS image dataset prepared in a data dir is read too."""

IDX_DATASETS = ("mnist", "fashion_mnist", "kmnist")
"""The datasets published as MNIST's four IDX files, which ``jaxae data import`` prepares offline."""
IMPORTABLE = (*IDX_DATASETS, "cifar10")
"""The datasets ``jaxae data import`` prepares from their publishers' raw files."""


def class_names(dataset: str) -> tuple[str, ...]:
    """The class names of ``dataset`` ("mnist" or "cifar10"), indexed by label.

    >>> class_names("cifar10")[3]
    'cat'
    """
    try:
        return CLASS_NAMES[dataset]
    except (KeyError, TypeError):
        raise InputError(
            f"unknown dataset {dataset!r}; class names are known for {', '.join(CLASS_NAMES)}"
        ) from None
