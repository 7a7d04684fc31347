"""Freshsales API-key authentication (API_NOTES.md 3.1).

Every request carries ``Authorization: Token token=<API_KEY>``. The key comes from the
environment variable ``FRESHSALES_API_KEY``; the bundle (account) domain comes from the target URI
``freshsales://<bundle>.myfreshworks.com`` (API base ``https://<bundle>.myfreshworks.com/crm/sales``)
or ``freshsales://<domain>.freshsales.io`` (older accounts, API base ``https://<domain>.freshsales.io``).

The key is never logged, printed or put in a ``repr``; TLS verification is never turned off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.destinations.base import FatalError

__all__ = ["ENV_VAR", "FreshsalesCredentials", "FreshsalesAuthError", "api_base"]

ENV_VAR = "FRESHSALES_API_KEY"


class FreshsalesAuthError(FatalError):
    """The API key is missing or refused; the message names ``FRESHSALES_API_KEY``."""


@dataclass(frozen=True, repr=False)
class FreshsalesCredentials:
    """An API key and where it came from (``env``, ``sandbox``, ``explicit``)."""

    api_key: str
    source: str = "explicit"

    def __repr__(self) -> str:
        return f"FreshsalesCredentials(api_key=<redacted>, source={self.source!r})"

    __str__ = __repr__

    def header(self) -> dict[str, str]:
        return {"Authorization": f"Token token={self.api_key}"}

    @classmethod
    def discover(cls, env: Mapping[str, str] | None = None) -> FreshsalesCredentials:
        env = os.environ if env is None else env
        key = (env.get(ENV_VAR) or "").strip()
        if not key:
            raise FreshsalesAuthError(
                f"no Freshsales API key: set {ENV_VAR} (Freshsales > Profile settings > API "
                "settings)")
        return cls(key, source="env")


def api_base(host: str) -> str:
    """The API base URL of a bundle host: ``https://<bundle>.myfreshworks.com/crm/sales`` or
    ``https://<domain>.freshsales.io`` (older accounts)."""
    host = host.strip().strip("/").lower()
    if not host or "/" in host or "@" in host:
        raise ValueError(f"invalid Freshsales bundle domain {host!r}; use "
                         "freshsales://<bundle>.myfreshworks.com")
    if host.endswith(".freshsales.io"):
        return f"https://{host}"
    if "." not in host:  # a bare bundle alias
        host = f"{host}.myfreshworks.com"
    return f"https://{host}/crm/sales"
