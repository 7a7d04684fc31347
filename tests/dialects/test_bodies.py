"""The body plumbing the four emulators share (``runtime/dialects/_bodies.py``): what each
vendor's error answer is built on, so these pin the cases those answers branch on."""

from __future__ import annotations

import httpx
import pytest

from runtime.dialects._bodies import BadBody, json_object, json_response, multipart_form


def test_json_response_is_compact_with_the_vendors_content_type():
    status, headers, body = json_response(207, {"a": [1, 2]}, {"x-extra": "1"},
                                          content_type="application/json")
    assert (status, headers, body) == (207, {"content-type": "application/json",
                                             "x-extra": "1"}, b'{"a":[1,2]}')


@pytest.mark.parametrize("body, not_json", [(b"{nope", True), (b"[1]", False)])
def test_json_object_says_which_way_a_body_is_bad(body, not_json):
    with pytest.raises(BadBody) as e:
        json_object(body)
    assert e.value.not_json is not_json
    assert json_object(b"") == {} and json_object(b'{"k": 1}') == {"k": 1}


def test_multipart_form_reads_the_file_and_the_text_fields():
    req = httpx.Request("POST", "http://x/", files={"file": ("a.txt", b"\x00bytes")},
                        data={"targetable_id": "7", "note": "h\u00e9"})
    form = multipart_form(req.headers["content-type"], req.read())
    assert form is not None and form.has_file
    assert (form.filename, form.content) == ("a.txt", b"\x00bytes")
    assert form.texts() == {"targetable_id": "7", "note": "h\u00e9"}


def test_multipart_form_without_a_file_or_not_multipart():
    req = httpx.Request("POST", "http://x/", files={"other": ("a", b"x")}, data={"k": "v"})
    form = multipart_form(req.headers["content-type"], req.read())
    assert form is not None and not form.has_file and form.content is None
    assert multipart_form("application/json", b"{}") is None
