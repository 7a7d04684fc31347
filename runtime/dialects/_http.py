"""Client-side HTTP plumbing every dialect's connector (``<dialect>/client.py``) shares.

What is here is the same for every CRM: where a ``<dialect>://host`` target points, how a call
that never got an answer becomes a :class:`TransientError`, reading a JSON body, chunking, and the
client's lifecycle. What a vendor's answers mean (envelopes, error codes, rate-limit headers, when
to refresh a token) stays in the dialect's own ``client.py``.
"""

from __future__ import annotations

from urllib.parse import urlsplit

__all__ = ["LOOPBACK_HOSTS", "split_target"]

# hosts a ``<dialect>://HOST:PORT`` target may name for a loopback ``fmap sandbox serve``
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def split_target(uri: str) -> tuple[str, str | None]:
    """(netloc, loopback base URL or None) of a target URI ``<dialect>://host[:port][?options]``.

    A loopback host is a local ``fmap sandbox serve``, spoken to in plain HTTP
    (``http://127.0.0.1:PORT``); anything else is the vendor's API, which each dialect turns into
    its own HTTPS base URL from the netloc.
    """
    parts = urlsplit(uri.split("?", 1)[0])
    host = (parts.hostname or "").strip("[]")
    return parts.netloc, (f"http://{parts.netloc}" if host in LOOPBACK_HOSTS else None)
