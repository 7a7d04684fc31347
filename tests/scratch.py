"""Where tests put their scratch files.

tmpfs (``/dev/shm``) when there is one with room: the state store fsyncs every commit
(``synchronous=FULL``, power-loss durability) and a SIGKILL loses nothing the kernel already has,
so tmpfs proves the same while thousands of fsyncs on a busy disk no longer dominate the suite.
Containers often mount a 64 MiB ``/dev/shm``; the seed-pair and crash tests write hundreds of
MiB, so a small one is passed over for the ordinary temp dir rather than failing with ENOSPC.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["fast_dir", "scratch_dir"]

SHM = Path("/dev/shm")
MIN_FREE = 2 * 1024**3  # bytes; the largest module's files at most run to about 0.5 GiB


def fast_dir() -> str | None:
    """``/dev/shm`` when writable with at least 2 GiB free, else ``None`` (tempfile's default)."""
    try:
        if not (SHM.is_dir() and os.access(SHM, os.W_OK)):
            return None
        st = os.statvfs(SHM)
    except OSError:
        return None
    return str(SHM) if st.f_bavail * st.f_frsize >= MIN_FREE else None


@contextmanager
def scratch_dir(prefix: str) -> Iterator[Path]:
    """A fresh directory under :func:`fast_dir` for a module's shared runs, removed afterwards."""
    d = Path(tempfile.mkdtemp(prefix=prefix, dir=fast_dir()))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)
