"""One run per work dir: a lock that a second process is refused by, and that dies with its holder."""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from pathlib import Path

import jax

from jaxae.errors import WorkdirInUseError


@contextlib.contextmanager
def exclusive_workdir(path: str | Path):
    """Holds ``path`` (created if missing) for this process until the block ends.

    The lock is an advisory ``flock`` on ``path/.lock``, which the operating
    system releases when its process ends, however it ends: a run killed with
    SIGKILL blocks nothing, and resuming from its checkpoints works as before.
    Each process of a multi-process run locks its own file.

    Raises:
      WorkdirInUseError: another live process holds ``path``; the message names it.
    """
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    name = ".lock" if jax.process_count() == 1 else f".lock.{jax.process_index()}"
    with open(path / name, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise WorkdirInUseError(
                f"the work dir {path} is in use by {holder}: wait for that run to end, or choose another work dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(f"process {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
        lock.flush()
        try:
            yield path
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
