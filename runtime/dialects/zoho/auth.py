"""Zoho OAuth: data centres, credentials and the refresh-token flow.

Credentials come from the environment (``ZOHO_CLIENT_ID``, ``ZOHO_CLIENT_SECRET``,
``ZOHO_REFRESH_TOKEN``, or a ready ``ZOHO_ACCESS_TOKEN``), else from the system keyring (service
``fmap-zoho``, same names as keys) when the optional ``keyring`` package is installed. Secrets are
never logged, printed or put in a ``repr``; token requests send them in the form body (httpx logs
request URLs, never bodies). TLS verification is never turned off.

Data centres (API_NOTES.md 1.1): the API domain and the accounts server must match the org's DC.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from runtime.destinations.base import FatalError
from runtime.dialects._oauth import RefreshingToken

__all__ = [
    "DATA_CENTRES", "ENV_VARS", "REFRESH_HINT", "ZohoCredentials", "TokenManager", "data_centre",
    "ZohoAuthError",
]

# dc -> (API domain, accounts server)
DATA_CENTRES: dict[str, tuple[str, str]] = {
    "com": ("https://www.zohoapis.com", "https://accounts.zoho.com"),
    "eu": ("https://www.zohoapis.eu", "https://accounts.zoho.eu"),
    "in": ("https://www.zohoapis.in", "https://accounts.zoho.in"),
    "com.au": ("https://www.zohoapis.com.au", "https://accounts.zoho.com.au"),
    "jp": ("https://www.zohoapis.jp", "https://accounts.zoho.jp"),
    "ca": ("https://www.zohoapis.ca", "https://accounts.zohocloud.ca"),
    "sa": ("https://www.zohoapis.sa", "https://accounts.zoho.sa"),
    "com.cn": ("https://www.zohoapis.com.cn", "https://accounts.zoho.com.cn"),
}
# the `location` values of Zoho's authorization redirect
_DC_ALIASES = {"us": "com", "au": "com.au", "cn": "com.cn", "": "com"}
ENV_VARS = ("ZOHO_CLIENT_ID", "ZOHO_CLIENT_SECRET", "ZOHO_REFRESH_TOKEN", "ZOHO_ACCESS_TOKEN")
KEYRING_SERVICE = "fmap-zoho"
# the remedy every credential error names (the refresh flow here, the client on a 401)
REFRESH_HINT = ("set ZOHO_REFRESH_TOKEN (with ZOHO_CLIENT_ID and ZOHO_CLIENT_SECRET) or a fresh "
                "ZOHO_ACCESS_TOKEN")


class ZohoAuthError(FatalError):
    """Credentials missing or refused; the message names the environment variables to set."""


def data_centre(dc: str) -> tuple[str, str]:
    """(API domain, accounts server) of a data centre (``com``, ``eu``, ``us``, ``au``...)."""
    key = dc.strip().lower().lstrip(".")
    key = _DC_ALIASES.get(key, key)
    if key not in DATA_CENTRES:
        raise ValueError(f"unknown Zoho data centre {dc!r}; one of {', '.join(DATA_CENTRES)}")
    return DATA_CENTRES[key]


@dataclass(frozen=True, repr=False)
class ZohoCredentials:
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    access_token: str | None = None
    source: str = "explicit"

    def __repr__(self) -> str:  # never show secrets
        have = [n for n in ("client_id", "client_secret", "refresh_token", "access_token")
                if getattr(self, n)]
        return f"ZohoCredentials(source={self.source!r}, set={have})"

    __str__ = __repr__

    @property
    def can_refresh(self) -> bool:
        return bool(self.client_id and self.client_secret and self.refresh_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ZohoCredentials:
        env = os.environ if env is None else env
        return cls(env.get("ZOHO_CLIENT_ID") or None, env.get("ZOHO_CLIENT_SECRET") or None,
                   env.get("ZOHO_REFRESH_TOKEN") or None, env.get("ZOHO_ACCESS_TOKEN") or None,
                   source="environment")

    @classmethod
    def from_keyring(cls, service: str = KEYRING_SERVICE) -> ZohoCredentials | None:
        try:
            import keyring  # optional
        except ImportError:
            return None
        try:
            values = {n: keyring.get_password(service, n) for n in ENV_VARS}
        except Exception:  # no usable backend: treat as absent
            return None
        if not any(values.values()):
            return None
        return cls(values["ZOHO_CLIENT_ID"], values["ZOHO_CLIENT_SECRET"],
                   values["ZOHO_REFRESH_TOKEN"], values["ZOHO_ACCESS_TOKEN"], source="keyring")

    @classmethod
    def discover(cls, env: Mapping[str, str] | None = None) -> ZohoCredentials:
        """Environment first, then the keyring."""
        creds = cls.from_env(env)
        if creds.access_token or creds.can_refresh:
            return creds
        return cls.from_keyring() or creds


class TokenManager(RefreshingToken):
    """Holds the current access token; refreshes it through the accounts server."""

    def __init__(self, credentials: ZohoCredentials, accounts_domain: str,
                 http: httpx.Client) -> None:
        super().__init__(credentials, http)
        self.accounts_domain = accounts_domain.rstrip("/")
        self.api_domain: str | None = None  # from the token response, when it says

    def __repr__(self) -> str:
        return f"TokenManager(accounts={self.accounts_domain!r}, refreshes={self.refreshes})"

    def _refresh_locked(self) -> None:
        if not self._creds.can_refresh:
            raise ZohoAuthError(f"no usable Zoho access token: {REFRESH_HINT}")
        url = f"{self.accounts_domain}/oauth/v2/token"
        form = {"grant_type": "refresh_token", "client_id": self._creds.client_id,
                "client_secret": self._creds.client_secret,
                "refresh_token": self._creds.refresh_token}
        status, body = self._post_refresh(url, form, f"POST {url}")
        token = body.get("access_token") if isinstance(body, dict) else None
        if status != 200 or not isinstance(token, str) or not token:
            err = body.get("error") if isinstance(body, dict) else None
            raise ZohoAuthError(f"Zoho refused the refresh token at {url} "
                                f"({err or 'HTTP ' + str(status)}): {REFRESH_HINT}")
        self._token = token
        self.refreshes += 1
        if isinstance(body.get("api_domain"), str):
            self.api_domain = body["api_domain"]
