"""Spawn ``fmap sandbox serve --dialect X`` for a loopback test, the way a user runs it.

    from tests.dialects.served import serve

    with serve(tmp_path, "salesforce", ["--users", str(users_json)]) as port:
        client = open_target(f"salesforce://127.0.0.1:{port}")

The server asks the OS for a port (``--port 0``) and the helper reads the real one from the
``target: <scheme>://127.0.0.1:PORT`` line the command prints, so parallel tests never race for a
"free" port. Output goes to files in ``tmp_path`` (a pipe nobody reads could fill and stall the
server); a server that dies or never binds fails the test with its stderr.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = ["serve", "ROOT"]

ROOT = Path(__file__).resolve().parents[2]
_TARGET = re.compile(r"^target: \S+://[^\s]*:(\d+)\s*$", re.M)


@contextmanager
def serve(tmp_path: Path, dialect: str, extra_args: Sequence[str] = (),
          token: str | None = "e2e-loopback-token", *, timeout: float = 30.0) -> Iterator[int]:
    """Yield the port of a running sandbox; stop it on exit. ``token=None`` lets the server
    generate one (it is then printed on ``served-<dialect>.out``)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("FMAP_SANDBOX_TOKEN", None)
    if token is not None:
        env["FMAP_SANDBOX_TOKEN"] = token
    args = [sys.executable, "-m", "fmap", "sandbox", "serve", "--dialect", dialect,
            "--port", "0"]
    if "--db" not in extra_args:
        args += ["--db", str(tmp_path / f"served-{dialect}.sqlite")]
    out_path, err_path = tmp_path / f"served-{dialect}.out", tmp_path / f"served-{dialect}.err"
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen([*args, *extra_args], cwd=tmp_path, env=env, stdout=out,
                                stderr=err, stdin=subprocess.DEVNULL)
    try:
        port = _wait_for_port(proc, err_path, timeout)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_for_port(proc: subprocess.Popen, err_path: Path, timeout: float) -> int:
    import socket

    deadline = time.monotonic() + timeout
    port: int | None = None
    while time.monotonic() < deadline:
        text = err_path.read_text("utf-8", "replace")
        if proc.poll() is not None:
            raise AssertionError(f"fmap sandbox serve exited ({proc.returncode}):\n{text}")
        if port is None and (m := _TARGET.search(text)):
            port = int(m.group(1))
        if port is not None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                return port
            except OSError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"fmap sandbox serve did not start within {timeout:.0f} s:\n"
                         + err_path.read_text("utf-8", "replace"))
