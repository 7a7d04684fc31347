"""Request and response bodies the four emulators (``<dialect>/sandbox.py``) read and write alike.

Each vendor wraps a JSON answer with its own ``content-type`` and refuses a bad body with its own
error shape, but the bytes underneath are the same: compact JSON out, a JSON object in, a
multipart/form-data upload with a ``file`` part. Those are here, once; the vendor's content type
and error answers stay in its folder (a dialect catches :class:`BadBody` and answers its way).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from runtime.dialects._asgi import Response

__all__ = ["BadBody", "Form", "json_response", "json_object", "multipart_form"]


def json_response(status: int, body: Any, headers: dict[str, str] | None = None, *,
                  content_type: str) -> Response:
    """``body`` as compact JSON, with the vendor's ``content_type`` and any extra ``headers``."""
    return status, {"content-type": content_type, **(headers or {})}, \
        json.dumps(body, separators=(",", ":")).encode()


class BadBody(ValueError):
    """A request body that is not a JSON object; ``not_json``: it is not JSON at all."""

    def __init__(self, not_json: bool) -> None:
        super().__init__("the body is not JSON" if not_json else "the body is not an object")
        self.not_json = not_json


def json_object(body: bytes) -> dict[str, Any]:
    """The JSON object of ``body`` (an empty body is ``{}``); raises :class:`BadBody`."""
    try:
        data = json.loads(body or b"{}")
    except ValueError:
        raise BadBody(not_json=True) from None
    if not isinstance(data, dict):
        raise BadBody(not_json=False)
    return data


@dataclass
class Form:
    """A multipart/form-data body: its text fields and its ``file`` part, if it has one."""

    fields: dict[str, bytes] = field(default_factory=dict)  # the other named parts, undecoded
    has_file: bool = False
    filename: str | None = None  # as the ``file`` part's content-disposition names it
    content: bytes | None = None  # the decoded ``file`` part (None if it is itself multipart)

    def texts(self) -> dict[str, str]:
        """The text fields as UTF-8 (one that is not raises :class:`UnicodeDecodeError`)."""
        return {k: v.decode("utf-8") for k, v in self.fields.items()}


def multipart_form(content_type: str, body: bytes) -> Form | None:
    """The form of ``body``; None when ``content_type`` is not multipart/form-data (compared
    without case, as media types are)."""
    if not content_type.lower().startswith("multipart/form-data"):
        return None
    msg = BytesParser(policy=HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body)
    form = Form()
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if name == "file":
            if not form.has_file:  # the first file part, as every vendor reads it
                form.has_file = True
                form.filename = part.get_filename()
                form.content = payload if isinstance(payload, bytes) else None
        elif name:
            form.fields[str(name)] = payload if isinstance(payload, bytes) else b""
    return form
