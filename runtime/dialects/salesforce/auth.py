"""Salesforce OAuth: credentials and the refresh-token flow (API_NOTES.md 2.1).

Every call goes to ``{instance_url}/services/data/vXX.X/...`` with ``Authorization: Bearer
<access token>``. Credentials come from the environment: ``SF_INSTANCE_URL`` plus either a ready
``SF_ACCESS_TOKEN`` or the refresh flow (``SF_CLIENT_ID``, ``SF_CLIENT_SECRET``,
``SF_REFRESH_TOKEN``; ``SF_LOGIN_URL`` picks the token endpoint's host, default
``https://login.salesforce.com``, ``https://test.salesforce.com`` for sandboxes). The token
response's ``instance_url`` wins over ``SF_INSTANCE_URL``.

Secrets are never logged, printed or put in a ``repr``; the refresh request sends them in the form
body (httpx logs request URLs, never bodies). TLS verification is never turned off.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from runtime.destinations.base import FatalError
from runtime.dialects._oauth import RefreshingToken

__all__ = ["ENV_VARS", "SalesforceCredentials", "TokenManager", "SalesforceAuthError",
           "DEFAULT_LOGIN_URL"]

ENV_VARS = ("SF_INSTANCE_URL", "SF_ACCESS_TOKEN", "SF_CLIENT_ID", "SF_CLIENT_SECRET",
            "SF_REFRESH_TOKEN", "SF_LOGIN_URL")
DEFAULT_LOGIN_URL = "https://login.salesforce.com"
REFRESH_HINT = ("set SF_REFRESH_TOKEN (with SF_CLIENT_ID and SF_CLIENT_SECRET) or a fresh "
                "SF_ACCESS_TOKEN")


class SalesforceAuthError(FatalError):
    """Credentials missing or refused; the message names the environment variables to set."""


@dataclass(frozen=True, repr=False)
class SalesforceCredentials:
    instance_url: str | None = None
    access_token: str | None = None
    client_id: str | None = None
    client_secret: str | None = None
    refresh_token: str | None = None
    login_url: str = DEFAULT_LOGIN_URL
    source: str = "explicit"

    def __repr__(self) -> str:  # never show secrets
        have = [n for n in ("access_token", "client_id", "client_secret", "refresh_token")
                if getattr(self, n)]
        return (f"SalesforceCredentials(source={self.source!r}, "
                f"instance_url={self.instance_url!r}, set={have})")

    __str__ = __repr__

    @property
    def can_refresh(self) -> bool:
        return bool(self.client_id and self.client_secret and self.refresh_token)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SalesforceCredentials:
        env = os.environ if env is None else env
        return cls(instance_url=env.get("SF_INSTANCE_URL") or None,
                   access_token=env.get("SF_ACCESS_TOKEN") or None,
                   client_id=env.get("SF_CLIENT_ID") or None,
                   client_secret=env.get("SF_CLIENT_SECRET") or None,
                   refresh_token=env.get("SF_REFRESH_TOKEN") or None,
                   login_url=env.get("SF_LOGIN_URL") or DEFAULT_LOGIN_URL,
                   source="environment")

    discover = from_env


class TokenManager(RefreshingToken):
    """Holds the current access token (and instance URL); refreshes through the login host."""

    def __init__(self, credentials: SalesforceCredentials, http: httpx.Client) -> None:
        super().__init__(credentials, http)
        self.instance_url: str | None = credentials.instance_url

    def __repr__(self) -> str:
        return f"TokenManager({self._creds!r}, refreshes={self.refreshes})"

    def _refresh_locked(self) -> None:
        c = self._creds
        if not c.can_refresh:
            raise SalesforceAuthError(f"no Salesforce access token: {REFRESH_HINT}")
        url = c.login_url.rstrip("/") + "/services/oauth2/token"
        status, body = self._post_refresh(url, {
            "grant_type": "refresh_token", "client_id": c.client_id,
            "client_secret": c.client_secret, "refresh_token": c.refresh_token},
            "POST /services/oauth2/token")
        if status != 200 or not isinstance(body, dict) \
                or not isinstance(body.get("access_token"), str):
            err = body.get("error") if isinstance(body, dict) else None
            raise SalesforceAuthError(
                f"Salesforce refused the refresh token ({err or f'HTTP {status}'}); "
                f"{REFRESH_HINT}")
        self._token = body["access_token"]
        if isinstance(body.get("instance_url"), str):
            self.instance_url = body["instance_url"]
        self.refreshes += 1
