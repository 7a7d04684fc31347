"""The rolling request allocation: the sandbox's window ledger (403 REQUEST_LIMIT_EXCEEDED once L
requests fall in the window, accepted again as they age out) and RollingWindowPacer keeping a
client exactly under it."""

from __future__ import annotations

import httpx
import pytest

from runtime.destinations.base import FatalError
from runtime.dialects import get_dialect
from runtime.dialects.salesforce.auth import SalesforceCredentials
from runtime.dialects.salesforce.client import SalesforceClient
from runtime.dialects.salesforce.ratelimit import RollingWindowPacer
from runtime.dialects.salesforce.sandbox import SalesforceSandbox, SyncASGITransport


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.t += s


@pytest.fixture
def org(tmp_path):
    clock = Clock()
    sb = SalesforceSandbox(get_dialect("salesforce").standard_schema(), tmp_path / "o.sqlite",
                           token="t", api_limit=5, api_window=60.0, api_clock=clock)
    http = httpx.Client(transport=SyncASGITransport(sb))
    client = SalesforceClient(credentials=SalesforceCredentials(
        instance_url="http://sf.invalid", access_token="t", source="test"), http=http,
        schema=sb.schema(), owns=(http, sb))
    yield client, sb, clock
    client.close()


def test_rolling_window_refuses_then_recovers(org):
    client, sb, clock = org
    for i in range(5):
        clock.t = i * 10.0
        client.count("Account")
    assert client.api_usage == (5, 5)
    clock.t = 59.0
    with pytest.raises(FatalError, match="allocation is used up"):
        client.count("Account")
    clock.t = 60.0  # the first request (t=0) left the window: one more fits
    client.count("Account")
    with pytest.raises(FatalError):
        client.count("Account")
    assert sb.limited == 2


def test_pacer_sends_the_most_the_window_allows_and_never_a_403(org):
    client, sb, clock = org
    client.pacer = RollingWindowPacer(5, 60.0, clock=clock, sleep=clock.sleep)
    for _ in range(23):
        client.count("Account")
    assert sb.limited == 0
    # 23 requests under 5 per 60 s: the 21st..23rd go at t=240 (four full windows later)
    assert clock.t == pytest.approx(240.0)
    reserve = RollingWindowPacer(100, 60.0, reserve=0.2, clock=clock, sleep=clock.sleep)
    assert reserve.limit == 80


# ---------------------------------------------------------------------- audit fields, ContentNote
@pytest.mark.parametrize("granted", [False, True], ids=["default", "audit-permission"])
def test_audit_fields_only_with_the_permission_and_on_insert(tmp_path, granted):
    from runtime.destinations.base import WriteItem
    from runtime.dialects.salesforce import open_sandbox

    c = open_sandbox(get_dialect("salesforce").standard_schema(), tmp_path / "o.sqlite", None,
                     {"audit_fields": "1" if granted else "0"})
    try:
        made = c.upsert("Contact", [WriteItem("a", "a", {
            "LastName": "L", "CreatedDate": "2019-04-01T10:00:00+00:00"})])[0]
        if not granted:
            assert (made.ok, made.code, made.field) == (False, "INVALID_FIELD_FOR_INSERT_UPDATE",
                                                        "CreatedDate")
            return
        assert made.ok
        rec = c.get("Contact", [made.dest_id])[made.dest_id]
        assert rec["CreatedDate"].startswith("2019-04-01T10:00:00")
        upd = c.update("Contact", [WriteItem("a", None, {"CreatedDate": "2020-01-01T00:00:00Z"},
                                             dest_id=made.dest_id)])[0]
        assert not upd.ok and upd.code == "INVALID_FIELD_FOR_INSERT_UPDATE"  # insert only
        note = c.create("ContentNote", [WriteItem("n", "n", {"Title": "Call",
                                                            "Content": "Rang back"})])[0]
        assert note.ok and note.dest_id.startswith("069") and len(note.dest_id) == 18
    finally:
        c.close()
