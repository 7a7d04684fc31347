"""The half of an OAuth refresh-token flow that is the same for every CRM that has one (Zoho,
Salesforce): holding the current access token across threads, refreshing it once when several
calls find it stale together, and posting the refresh form.

What differs stays in the dialect's ``auth.py``: the token endpoint, which credentials go in the
form, what else the response carries (Zoho's ``api_domain``, Salesforce's ``instance_url``) and
the error message naming the environment variables to set. Secrets travel in the form body only
(httpx logs request URLs, never bodies) and never reach a message or a ``repr``.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import httpx

from runtime.destinations.base import TransientError

__all__ = ["RefreshingToken"]


class _Credentials(Protocol):
    access_token: str | None

    @property
    def can_refresh(self) -> bool: ...


class RefreshingToken:
    """Holds the current access token; subclasses implement :meth:`_refresh_locked` (get a new
    one into ``self._token`` through :meth:`_post_refresh`, count it in ``refreshes``)."""

    def __init__(self, credentials: _Credentials, http: httpx.Client) -> None:
        self._creds = credentials
        self._token = credentials.access_token
        self._http = http
        self._lock = threading.Lock()
        self.refreshes = 0

    @property
    def can_refresh(self) -> bool:
        return self._creds.can_refresh

    def token(self) -> str:
        with self._lock:
            if self._token is None:
                self._refresh_locked()
            assert self._token is not None
            return self._token

    def refresh(self, stale: str | None = None) -> str:
        """A new access token, unless another thread already replaced the ``stale`` one (calls
        that failed together with the same token refresh it once, not once each)."""
        with self._lock:
            if stale is None or self._token == stale:
                self._refresh_locked()
            assert self._token is not None
            return self._token

    def _refresh_locked(self) -> None:
        raise NotImplementedError

    def _post_refresh(self, url: str, form: dict[str, Any], endpoint: str) -> tuple[int, Any]:
        """POST the refresh ``form`` -> (status, parsed JSON body or None). No answer or a 5xx is
        a :class:`TransientError` (nothing was changed; the call may be retried); ``endpoint``
        names the call in messages."""
        try:
            resp = self._http.post(url, data=form)
        except httpx.TransportError as exc:
            raise TransientError(f"{endpoint}: {type(exc).__name__} while refreshing the token",
                                 maybe_committed=False) from None
        if resp.status_code >= 500:
            raise TransientError(f"{endpoint}: HTTP {resp.status_code} while refreshing the token",
                                 maybe_committed=False)
        try:
            return resp.status_code, resp.json()
        except ValueError:
            return resp.status_code, None
