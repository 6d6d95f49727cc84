# %% [markdown]
# # Your own model through jaxae's trainer
#
# jaxae's `fit` trains any Linen or NNX module you register, through the same door as the
# seed models: checkpoints that resume bitwise, one-line faults and Ctrl-C, evaluation, the
# metrics log, `compute_dtype`, several seeds in one program, data parallelism. Here: E3's idea
# (an MNIST convolutional autoencoder, Adam at 5e-4, MSE, batch 32, seed 123) with a code of
# three numbers instead of two, written once in Linen with jaxae's PyTorch-semantics layers and
# once in NNX with Flax's own layers, both trained by `fit`, and compared with E3's shipped weights.
#
#     python examples/your_own_model.py [--quick] [--epochs N] [--data-dir D] [--workdir W]

# %%
import flax.linen as nn
import numpy as np
from _options import parse, split
from flax import nnx

from jaxae import figures, models, pretrained
from jaxae import nnx as jaxae_nnx
from jaxae.data import BatchSpec, load_split, make_pipeline, to_tensor
from jaxae.models.layers import Conv2d, ConvTranspose2d, Linear
from jaxae.train import TrainConfig, fit

args = parse("your_own_model", "Your own autoencoders, in Linen and NNX, trained by jaxae's fit", epochs=5)
train_split, test_split = split("train", args.quick), split("test", args.quick, examples=100)

# %% [markdown]
# ## A Linen model
# Two stride-2 convolutions down to 7×7, a Linear to the 3-D code, and back. jaxae's layers
# (`Conv2d`, `ConvTranspose2d`, `Linear`) initialise as PyTorch does and compute each convolution
# the way XLA:CPU runs it fastest; `flax.linen.Conv` works just as well. `__call__` may take
# `train` (for dropout); an autoencoder's `encode` and `decode` are used by `jaxae.latent`.

# %%
class LinenCodeOf3(nn.Module):
    code: int = 3

    def setup(self):
        self.conv1, self.conv2 = Conv2d(32, 3, stride=2, padding=1), Conv2d(64, 3, stride=2, padding=1)
        self.to_code, self.from_code = Linear(self.code), Linear(7 * 7 * 64)
        self.deconv1 = ConvTranspose2d(32, 3, stride=2, padding=1, output_padding=1)
        self.deconv2 = ConvTranspose2d(1, 3, stride=2, padding=1, output_padding=1)

    def encode(self, images):
        x = nn.leaky_relu(self.conv2(nn.leaky_relu(self.conv1(images))))
        return self.to_code(x.reshape(x.shape[0], -1))

    def decode(self, codes):
        x = nn.leaky_relu(self.from_code(codes)).reshape(-1, 7, 7, 64)
        return nn.sigmoid(self.deconv2(nn.leaky_relu(self.deconv1(x))))

    def __call__(self, images, train: bool = False):
        return self.decode(self.encode(images))


# %% [markdown]
# ## The same network in NNX
# An `nnx.Module` built with `rngs`, holding its weights. `fit` trains it functionally (the
# parameters as a pytree, the step compiled once), then it comes back as an NNX object.

# %%
class NnxCodeOf3(nnx.Module):
    def __init__(self, code: int = 3, *, rngs: nnx.Rngs):
        conv = dict(kernel_size=(3, 3), strides=(2, 2), padding=1, rngs=rngs)
        self.conv1, self.conv2 = nnx.Conv(1, 32, **conv), nnx.Conv(32, 64, **conv)
        self.to_code, self.from_code = nnx.Linear(7 * 7 * 64, code, rngs=rngs), nnx.Linear(code, 7 * 7 * 64, rngs=rngs)
        self.deconv1 = nnx.ConvTranspose(64, 32, kernel_size=(3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.deconv2 = nnx.ConvTranspose(32, 1, kernel_size=(3, 3), strides=(2, 2), padding="SAME", rngs=rngs)

    def encode(self, images):
        x = nnx.leaky_relu(self.conv2(nnx.leaky_relu(self.conv1(images))))
        return self.to_code(x.reshape(x.shape[0], -1))

    def decode(self, codes):
        x = nnx.leaky_relu(self.from_code(codes)).reshape(-1, 7, 7, 64)
        return nnx.sigmoid(self.deconv2(nnx.leaky_relu(self.deconv1(x))))

    def __call__(self, images):
        return self.decode(self.encode(images))


# %% [markdown]
# ## Registered, then trained like a seed model
# The registration says what the engine cannot read off a module: the input shape, that it is
# an autoencoder (its loss compares with the images), and its pixels (`ToTensor`'s, in [0, 1]).
# A `TrainConfig` then names it like any seed model, and stays plain data that a checkpoint
# compares on resume (register again before resuming in a new process).

# %%
for name, module in (("e3_code3_linen", LinenCodeOf3), ("e3_code3_nnx", NnxCodeOf3)):
    models.register(name, module, image_shape=(28, 28, 1), task="autoencoder", transform="to_tensor", replace=True)

histories, states = {}, {}
for name in ("e3_code3_linen", "e3_code3_nnx"):
    config = TrainConfig(name, loss="mse", optimizer="adam", learning_rate=5e-4, epochs=args.epochs,
                         batch_size=32, seed=123)
    train = make_pipeline("mnist", train_split, config.batch_spec(), data_dir=args.data_dir)
    test = make_pipeline("mnist", test_split, BatchSpec(256, shuffle=False), data_dir=args.data_dir)
    states[name], histories[name] = fit(config, train, args.workdir / name, eval_data=test)

# %% [markdown]
# ## The NNX model comes back as NNX
# `jaxae.nnx.create` builds a registered model as an NNX module; `params=` puts the trained
# parameters in (`jaxae.train.restore_state(config, workdir).params` reads them from a checkpoint).

# %%
trained_nnx = jaxae_nnx.create("e3_code3_nnx", params=states["e3_code3_nnx"].params)
images, labels = load_split("mnist", test_split, args.data_dir)
pixels = np.asarray(to_tensor(images[:10]))
print("three test digits' codes:", np.round(np.asarray(trained_nnx.encode(pixels[:3])), 2).tolist())

# %% [markdown]
# ## Against E3
# The test MSE of each, beside E3's shipped weights (a 2-D code, 20 epochs) on the same images.

# %%
e3_loss = pretrained.evaluate("E3", images, labels)["test_loss"]
print("| model | code | epochs | test MSE |\n| --- | ---: | ---: | ---: |")
for name, history in histories.items():
    print(f"| {name} | 3 | {len(history)} | {history[-1]['test_loss']:.4f} |")
print(f"| E3 (shipped) | 2 | 20 | {e3_loss:.4f} |")

linen_model = models.create("e3_code3_linen")
rows = {"original": pixels,
        "Linen, 3-D code": np.asarray(linen_model.apply({"params": states["e3_code3_linen"].params}, pixels)),
        "NNX, 3-D code": np.asarray(trained_nnx(pixels)),
        "E3, 2-D code": np.asarray(pretrained.model("E3").apply({"params": pretrained.load("E3")}, pixels))}
figures.reconstruction_grid(rows, ncols=10).savefig(args.workdir / "reconstructions.png")
curves = {name: np.concatenate([r["train_step_loss"] for r in history]) for name, history in histories.items()}
figures.training_curves(curves, "MSE").savefig(args.workdir / "train_loss.png")
