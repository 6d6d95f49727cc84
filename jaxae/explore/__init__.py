"""``jaxae explore``: the trained latent spaces in the browser.

A local page (served on 127.0.0.1 only) with two views:

- **The 2-D plane** of E3's autoencoder beside its VAE: the codes of the MNIST
  test images scattered by class, and the digit that the point under the
  pointer decodes to, decoded live.
- **Interpolation** between two test images for E2, E2-VAE and E4's four
  autoencoders: the pixels blended against the codes blended and decoded, with
  a slider for the mixing weight α.

By default it shows the shipped weights and test samples (:mod:`jaxae.pretrained`):
no training and no dataset needed. ``workdir`` and ``data_dir`` show the runs of a
``jaxae reproduce`` work dir and the whole test sets of a TFDS data dir instead.

``workdir`` may also be the work dir of one ``fit`` run of any registered
autoencoder, your own included (registered in this process first, as for resuming
it): a code of two numbers is shown as a plane, one of three as a plane with a
slider for the third, and with test images (``dataset``, or ``images`` of your
own) the codes of any shape are blended between two of them::

    import my_models  # registers my_ae
    from jaxae import explore
    explore.serve(workdir="runs/my_ae", images=test_images, labels=test_labels)
"""

from __future__ import annotations

import signal
import time
import webbrowser
from pathlib import Path

from jaxae import signals
from jaxae.explore.server import make_server, running
from jaxae.explore.spaces import INTERPOLATIONS, PLANES, LatentSpaces

__all__ = ["INTERPOLATIONS", "PLANES", "LatentSpaces", "make_server", "running", "serve"]


def serve(port: int = 8800, open_browser: bool = True, workdir: str | Path | None = None,
          data_dir: str | None = None, dataset: str | None = None, images=None, labels=None) -> None:
    """Serves the explorer until Ctrl-C, SIGINT or SIGTERM; opens it in the browser unless ``open_browser`` is False.

    ``workdir``, ``data_dir``, ``dataset``, ``images`` and ``labels`` say what it shows, as
    for :class:`~jaxae.explore.spaces.LatentSpaces`.
    """
    start = time.perf_counter()
    server = None
    try:
        # SIGINT and SIGTERM stop it from the start: a signal may come as soon as the address is printed.
        with signals.handled(signal.default_int_handler):
            spaces = LatentSpaces(workdir, data_dir, dataset, images, labels)
            server = make_server(spaces, port)  # a port in use fails before the decoders compile
            spaces.warm_up()
            host, port = server.server_address[:2]
            url = f"http://{host}:{port}/"
            print(f"jaxae explore: {len(spaces.spaces)} models ready in {time.perf_counter() - start:.1f} s; "
                  f"serving {url} (Ctrl-C stops)", flush=True)
            if open_browser:
                webbrowser.open(url)
            server.serve_forever()
    except KeyboardInterrupt:
        print("\njaxae explore: stopped")
    finally:
        if server is not None:
            server.server_close()

