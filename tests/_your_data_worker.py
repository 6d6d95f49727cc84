"""A Keras user's data and recipe through jaxae, as a script outside the repository (the wheel test runs it).

    python _your_data_worker.py TFDS_DIR MNIST_RAW_DIR WORKDIR

MNIST as float arrays divided by 255 without labels, a denoising autoencoder of Flax's layers with
binary cross-entropy and AdamW, trained 1 epoch then continued to 2 and compared with 2 straight; the
same images as a folder of PNGs and as Fashion-MNIST by name, each trained with Adadelta; a PyTorch
autoencoder with BatchNorm traced into Flax, trained, and loaded back into PyTorch; and a PyTorch
user's NCHW arrays refused in one line. Prints "ok" at the end.
"""

import sys
from pathlib import Path

import flax.linen as nn
import jax
import numpy as np
import torch
from PIL import Image
from torch import nn as tnn

from jaxae import models
from jaxae.data import from_arrays, from_folder, import_dataset, load_split, make_pipeline
from jaxae.errors import InputError
from jaxae.torch_graph import from_torch, to_torch_state_dict
from jaxae.train import TrainConfig, fit

tfds_dir, raw, workdir = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])


class DenoisingAutoencoder(nn.Module):
    @nn.compact
    def __call__(self, images, train: bool = False):
        x = nn.max_pool(nn.relu(nn.Conv(8, (3, 3))(images)), (2, 2), (2, 2))
        return nn.sigmoid(nn.ConvTranspose(1, (3, 3), strides=(2, 2))(x))


models.register("keras_denoiser", DenoisingAutoencoder, image_shape=(28, 28, 1))
models.register("keras_denoiser", DenoisingAutoencoder, image_shape=(28, 28, 1))  # the cell run twice
images, labels = load_split("mnist", "train[:96]", tfds_dir)
x_train = images / np.float32(255)
config = TrainConfig("keras_denoiser", "binary_cross_entropy", "adamw", 1e-3, epochs=1, batch_size=32,
                     optimizer_args=(("weight_decay", 1e-4),), corruption="gaussian", corruption_level=0.4)
longer = TrainConfig(**{**config.__dict__, "epochs": 2})
fit(config, from_arrays(x_train, batch_spec=config.batch_spec()), workdir / "continued", progress=False)
continued, _ = fit(longer, from_arrays(x_train, batch_spec=config.batch_spec()), workdir / "continued", progress=False)
straight, _ = fit(longer, from_arrays(images, batch_spec=config.batch_spec()), workdir / "straight", progress=False)
for a, b in zip(jax.tree.leaves(continued.params), jax.tree.leaves(straight.params), strict=True):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))  # float arrays and uint8 ones: the same pixels

for index, (image, label) in enumerate(zip(images, labels)):
    folder = workdir / "pngs" / "train" / str(label)
    folder.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image[..., 0]).save(folder / f"{index}.png")
import_dataset("fashion_mnist", raw, tfds_dir, full=False)
adadelta = TrainConfig("keras_denoiser", "binary_cross_entropy", "adadelta", 1.0, epochs=1, batch_size=32,
                       optimizer_args=(("rho", 0.95), ("eps", 1e-7)))
for name, pipeline in (("folder", from_folder(workdir / "pngs" / "train", adadelta.batch_spec())),
                       ("fashion", make_pipeline("fashion_mnist", "train[:96]", adadelta.batch_spec(), data_dir=tfds_dir))):
    _, history = fit(adadelta, pipeline, workdir / name, progress=False)
    assert np.isfinite(history[-1]["train_loss"]), name

# A PyTorch user's autoencoder with BatchNorm, traced into Flax, trained by fit, and back into PyTorch.
torch_ae = tnn.Sequential(tnn.Flatten(), tnn.Linear(784, 16), tnn.BatchNorm1d(16), tnn.ReLU(), tnn.Linear(16, 784),
                          tnn.Sigmoid(), tnn.Unflatten(1, (1, 28, 28)))
model, variables = from_torch(torch_ae, (28, 28, 1), name="torch_ae")
torch_config = TrainConfig("torch_ae", "binary_cross_entropy", "adam", 1e-3, epochs=1, batch_size=32)
state, _ = fit(torch_config, from_arrays(x_train, batch_spec=torch_config.batch_spec(drop_remainder=True)),
               workdir / "torch_ae", initial_params=variables, progress=False)
torch_ae.load_state_dict(to_torch_state_dict(model, state.variables))
torch_ae.eval()
with torch.no_grad():
    back = torch_ae(torch.from_numpy(x_train[:8].transpose(0, 3, 1, 2))).numpy().transpose(0, 2, 3, 1)
np.testing.assert_allclose(back, model.apply(state.variables, x_train[:8]), atol=1e-5)

try:
    from_arrays(np.zeros((4, 1, 28, 28), np.float32), batch_spec=config.batch_spec(), name="x_torch")
except InputError as error:
    assert "use images.transpose(0, 2, 3, 1)" in str(error) and "\n" not in str(error)
else:
    raise AssertionError("NCHW arrays were not refused")
print("ok")
