"""Pipedrive credentials and company domains.

Two ways in (API_NOTES.md 4.1): an API token sent as the ``x-api-token`` header (environment
variable ``PIPEDRIVE_API_TOKEN``) or an OAuth access token sent as ``Authorization: Bearer``
(``PIPEDRIVE_ACCESS_TOKEN``; the OAuth app refreshes it, not this connector). The API token wins
when both are set. Secrets are never logged, printed or put in a ``repr``; headers are built per
request and TLS verification is never turned off.

The company domain comes from the target URI ``pipedrive://<company>.pipedrive.com`` (or
``pipedrive://<company>``); the base URLs are ``https://<company>.pipedrive.com/api/v2`` and
``https://<company>.pipedrive.com/api/v1``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from runtime.destinations.base import FatalError

__all__ = ["ENV_API_TOKEN", "ENV_ACCESS_TOKEN", "PipedriveCredentials", "PipedriveAuthError",
           "company_base_url"]

ENV_API_TOKEN = "PIPEDRIVE_API_TOKEN"
ENV_ACCESS_TOKEN = "PIPEDRIVE_ACCESS_TOKEN"
_COMPANY = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")


class PipedriveAuthError(FatalError):
    """Credentials missing or refused; the message names the environment variable to set."""


@dataclass(frozen=True, repr=False)
class PipedriveCredentials:
    api_token: str | None = None
    access_token: str | None = None
    source: str = "explicit"

    def __repr__(self) -> str:  # never show secrets
        return f"PipedriveCredentials(source={self.source!r}, kind={self.kind!r})"

    __str__ = __repr__

    @property
    def kind(self) -> str:
        return "api_token" if self.api_token else "oauth" if self.access_token else "none"

    @property
    def env_var(self) -> str:
        """The environment variable that holds (or would hold) the credential in use."""
        return ENV_ACCESS_TOKEN if self.kind == "oauth" else ENV_API_TOKEN

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> PipedriveCredentials:
        env = os.environ if env is None else env
        return cls(api_token=env.get(ENV_API_TOKEN) or None,
                   access_token=env.get(ENV_ACCESS_TOKEN) or None, source="environment")

    def headers(self) -> dict[str, str]:
        if self.api_token:
            return {"x-api-token": self.api_token}
        if self.access_token:
            return {"Authorization": f"Bearer {self.access_token}"}
        raise PipedriveAuthError(f"no Pipedrive credentials: set {ENV_API_TOKEN} (API token) or "
                                 f"{ENV_ACCESS_TOKEN} (OAuth access token)")


def company_base_url(netloc: str) -> str:
    """``acme.pipedrive.com`` or ``acme`` -> ``https://acme.pipedrive.com``."""
    host = netloc.strip().lower().rstrip("/")
    company = host[:-len(".pipedrive.com")] if host.endswith(".pipedrive.com") else host
    if not _COMPANY.match(company):
        raise ValueError(f"bad Pipedrive company domain {netloc!r}: use "
                         "pipedrive://<company>.pipedrive.com")
    return f"https://{company}.pipedrive.com"
