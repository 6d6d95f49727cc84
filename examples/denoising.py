# %% [markdown]
# # A denoising autoencoder, as a Keras user would write it
#
# The data as NumPy arrays divided by 255, a small convolutional autoencoder of Flax's own layers
# ending in a sigmoid, binary cross-entropy, Adam: the denoising autoencoder of the Keras
# tutorials, trained by jaxae's `fit`. Each step corrupts its images with Gaussian noise of
# standard deviation 0.4, clipped to [0, 1], drawn inside the compiled step from a random stream
# of its own; the loss compares the outputs with the clean images, in training and evaluation.
#
#     python examples/denoising.py [--quick] [--epochs N] [--data-dir D] [--workdir W]

# %%
import flax.linen as nn
import jax
import numpy as np
from _options import parse, split

from jaxae import figures, losses, models
from jaxae.data import BatchSpec, from_arrays, load_split
from jaxae.train import TrainConfig, Trainer, fit

args = parse("denoising", "A denoising convolutional autoencoder on MNIST arrays", epochs=5)
x_train, _ = load_split("mnist", split("train", args.quick), args.data_dir)
x_test, _ = load_split("mnist", split("test", args.quick, examples=100), args.data_dir)
x_train, x_test = x_train / np.float32(255), x_test / np.float32(255)  # what a Keras user holds: floats in [0, 1]


# %% [markdown]
# ## The model
# Two convolutions with max pooling down to 7×7×32, two stride-2 transposed convolutions back, and a
# sigmoid: Flax's layers, registered as an autoencoder of 28×28×1 images in [0, 1].

# %%
class DenoisingAutoencoder(nn.Module):
    @nn.compact
    def __call__(self, images, train: bool = False):
        x = nn.max_pool(nn.relu(nn.Conv(32, (3, 3))(images)), (2, 2), (2, 2))
        x = nn.max_pool(nn.relu(nn.Conv(32, (3, 3))(x)), (2, 2), (2, 2))
        x = nn.relu(nn.ConvTranspose(32, (3, 3), strides=(2, 2))(x))
        x = nn.relu(nn.ConvTranspose(32, (3, 3), strides=(2, 2))(x))
        return nn.sigmoid(nn.Conv(1, (3, 3))(x))


models.register("denoising_ae", DenoisingAutoencoder, image_shape=(28, 28, 1), transform="to_tensor")

# %% [markdown]
# ## Trained on corrupted images, scored against clean ones
# `corruption="gaussian"` with `corruption_level=0.4` is the config's, compared on resume like
# the rest of the run.

# %%
config = TrainConfig("denoising_ae", loss="binary_cross_entropy", optimizer="adam", learning_rate=1e-3,
                     epochs=args.epochs, batch_size=128, seed=0, corruption="gaussian", corruption_level=0.4)
train = from_arrays(x_train, batch_spec=config.batch_spec(), name="x_train")
test = from_arrays(x_test, batch_spec=BatchSpec(256, shuffle=False), name="x_test")
state, history = fit(config, train, args.workdir / "run", eval_data=test)

# %% [markdown]
# ## Noisy, denoised, clean
# The first ten test digits corrupted as in training (the figure's own key), the model's outputs,
# and the clean digits; the mean squared error to the clean digits before and after.

# %%
trainer = Trainer.create(config)
clean = x_test[:256]
noisy = np.asarray(trainer.corrupt(clean, jax.random.key(1)))
denoised = np.asarray(trainer.model.apply({"params": state.params}, noisy))
print("| images | MSE to the clean digits |\n| --- | ---: |")
print(f"| noisy | {float(losses.mse(noisy, clean).mean()):.4f} |")
print(f"| denoised | {float(losses.mse(denoised, clean).mean()):.4f} |")
print(f"test binary cross-entropy, noisy input against clean digits: {history[-1]['test_loss']:.4f}")
rows = {"noisy": noisy[:10], "denoised": denoised[:10], "clean": clean[:10]}
figures.reconstruction_grid(rows, ncols=10).savefig(args.workdir / "denoised.png")
