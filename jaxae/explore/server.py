"""The explorer's local web server: the page, its static files and a small JSON API.

Bound to 127.0.0.1 only; Python's standard ``http.server``, one thread per request.

- ``GET /api/catalogue``: the planes, the interpolation models, the sources.
- ``GET /api/plane?model=E3``: the test codes of a plane, their labels, bounds.
- ``GET /api/decode?model=E3&z=0.5,-1.2``: the image a point of the plane decodes to
  (``z=z1,z2,z3`` for a code of three numbers).
- ``GET /api/images?dataset=mnist``: the test images to pick from.
- ``GET /api/interpolate?model=E2&a=0&b=1&alpha=0.3``: pixel and latent blends, reconstructions.

Images travel as ``{"shape": [H, W, C], "pixels": base64 of uint8}``. A bad
request gets a 4xx and one line of JSON, ``{"error": ...}``; so does a request
whose ``Host`` is not this server's own address (a page elsewhere reaching it
through a rebound DNS name). A bug in a handler answers 500 and prints its
traceback on the console, and the server goes on.
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import json
import math
import threading
import traceback
import urllib.parse
from collections.abc import Iterator
from importlib import resources
from typing import Any

import numpy as np

from jaxae.errors import InputError
from jaxae.explore.spaces import LatentSpaces

STATIC = {"index.html": "text/html; charset=utf-8", "explorer.js": "text/javascript; charset=utf-8",
          "explorer.css": "text/css; charset=utf-8"}


class HttpError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def image_json(image: np.ndarray) -> dict[str, Any]:
    """A uint8 image (H, W, C) as the API sends it."""
    return {"shape": list(image.shape), "pixels": base64.b64encode(np.ascontiguousarray(image).tobytes()).decode()}


def _one(query: dict[str, list[str]], key: str) -> str:
    values = query.get(key)
    if not values:
        raise HttpError(400, f"missing query parameter {key!r}")
    if len(values) > 1:
        raise HttpError(400, f"query parameter {key!r} given {len(values)} times")
    return values[0]


def _number(query, key: str, kind=float):
    text = _one(query, key)
    try:
        value = kind(text)
    except ValueError:
        raise HttpError(400, f"{key} must be {'an integer' if kind is int else 'a number'}, got {text!r}") from None
    if kind is float and not math.isfinite(value):
        raise HttpError(400, f"{key} must be finite, got {text!r}")
    return value


def _point(query) -> tuple[float, ...]:
    text = _one(query, "z")
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise HttpError(400, f"z must be numbers separated by commas, 'z1,z2', got {text!r}") from None


class _Api:
    """The JSON answers, one method per endpoint; each takes the parsed query string."""

    def __init__(self, spaces: LatentSpaces):
        self.spaces = spaces

    def catalogue(self, query):
        return self.spaces.catalogue()

    def plane(self, query):
        return self.spaces.plane(_one(query, "model"))

    def decode(self, query):
        z = _point(query)
        return {"z": list(z), "image": image_json(self.spaces.decode(_one(query, "model"), z))}

    def images(self, query):
        images, labels = self.spaces.images(_one(query, "dataset"))
        return {"count": len(images), "shape": list(images.shape[1:]), "labels": labels.tolist(),
                "pixels": base64.b64encode(np.ascontiguousarray(images).tobytes()).decode()}

    def interpolate(self, query):
        blends = self.spaces.interpolate(_one(query, "model"), _number(query, "a", int), _number(query, "b", int),
                                         _number(query, "alpha"))
        return {name: image_json(image) for name, image in blends.items()}


def _error_body(message: str) -> tuple[str, bytes]:
    return "application/json", json.dumps({"error": message}).encode()


def make_handler(spaces: LatentSpaces) -> type[http.server.BaseHTTPRequestHandler]:
    api = _Api(spaces)
    endpoints = {f"/api/{name}": getattr(api, name) for name in ("catalogue", "plane", "decode", "images", "interpolate")}
    static = resources.files("jaxae.explore") / "static"

    class Handler(http.server.BaseHTTPRequestHandler):
        server_version = "jaxae-explore"

        def do_GET(self):
            try:
                self._check_host()
                status, content_type, body = 200, *self._answer(urllib.parse.urlsplit(self.path))
            except HttpError as error:
                status, content_type, body = error.status, *_error_body(str(error))
            except Exception:  # noqa: BLE001 (a bug: its traceback on the console, the server goes on)
                traceback.print_exc()
                status, content_type, body = 500, *_error_body("internal error; its traceback is on the server's console")
            self._send(status, content_type, body)

        def _check_host(self):
            port = self.server.server_address[1]
            if self.headers.get("Host") not in (f"127.0.0.1:{port}", f"localhost:{port}"):
                raise HttpError(403, f"the explorer answers requests for 127.0.0.1:{port} or localhost:{port} only")

        def _answer(self, url) -> tuple[str, bytes]:
            if url.path in endpoints:
                query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
                try:
                    return "application/json", json.dumps(endpoints[url.path](query), allow_nan=False).encode()
                except InputError as error:
                    raise HttpError(400, str(error)) from None
            name = url.path.lstrip("/") or "index.html"
            if name not in STATIC:
                raise HttpError(404, f"no such page: {url.path}")
            return STATIC[name], (static / name).read_bytes()

        def _refuse(self):
            self._send(405, *_error_body(f"method {self.command} not allowed; the explorer answers GET only"))

        do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _refuse

        def _send(self, status: int, content_type: str, body: bytes):
            try:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)
            except ConnectionError:  # the page went away (reloaded, closed) before its answer
                pass

        def log_request(self, code="-", size="-"):  # answered requests are not logged; malformed ones are
            pass

    return Handler


@contextlib.contextmanager
def running(spaces: LatentSpaces) -> Iterator[str]:
    """The server on a free port, answering from a background thread while the block runs; yields its address.

    For scripts and tests that drive the page or the API in the same process.
    """
    server = make_server(spaces, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def make_server(spaces: LatentSpaces, port: int = 0) -> http.server.ThreadingHTTPServer:
    """The server on 127.0.0.1:``port`` (0: a free port; see ``server.server_address``), not yet serving."""
    try:
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), make_handler(spaces))
    except OSError as error:
        raise InputError(f"cannot listen on 127.0.0.1:{port}: {error.strerror}; pass --port N (0: any free port)") from None
    server.daemon_threads = True
    return server
