"""Delta reads: ``GET /sobjects/{o}/updated/`` and ``/deleted/`` through SalesforceClient against
the sandbox on a settable clock (whole-minute windows, the 30-day limit, deletion tombstones), and
SOQL ``SELECT COUNT()``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from runtime.destinations.base import WriteItem
from runtime.dialects import get_dialect
from runtime.dialects.salesforce.auth import SalesforceCredentials
from runtime.dialects.salesforce.client import SalesforceAPIError, SalesforceClient
from runtime.dialects.salesforce.sandbox import SalesforceSandbox, SyncASGITransport

T0 = datetime(2025, 3, 10, 9, 0, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def org(tmp_path):
    clock = Clock()
    sb = SalesforceSandbox(get_dialect("salesforce").standard_schema(), tmp_path / "o.sqlite",
                           token="t", store_clock=clock)
    http = httpx.Client(transport=SyncASGITransport(sb))
    client = SalesforceClient(credentials=SalesforceCredentials(
        instance_url="http://sf.invalid", access_token="t", source="test"), http=http,
        schema=sb.schema(), owns=(http, sb))
    yield client, sb, clock
    client.close()


def _accounts(client, n, prefix="A"):
    return [r.dest_id for r in client.upsert("Account", [
        WriteItem(f"{prefix}{i}", f"{prefix}{i}", {"Name": f"Acme {i}"}) for i in range(n)])]


def test_updated_and_deleted_windows(org):
    client, sb, clock = org
    clock.now = T0 + timedelta(seconds=20)
    first = _accounts(client, 3)
    clock.now = T0 + timedelta(minutes=5, seconds=40)
    client.update("Account", [WriteItem("A0", None, {"Phone": "1"}, dest_id=first[0])])
    later = _accounts(client, 2, prefix="B")
    clock.now = T0 + timedelta(minutes=9)
    client.delete("Account", [first[1]])
    clock.now = T0 + timedelta(hours=1)

    ids, latest = client.updated("Account", T0, T0 + timedelta(minutes=5, seconds=59))
    # the end is truncated to 09:05, so the 09:05:40 changes are not in this window (first[0]
    # was changed then; first[1] is deleted)
    assert ids == [first[2]] and latest == "2025-03-10T09:05:00.000+0000"
    ids, _ = client.updated("Account", T0 + timedelta(minutes=5, seconds=30), clock.now)
    # the start is truncated to 09:05: both 09:05:40 changes are in
    assert sorted(ids) == sorted([first[0], *later])
    gone, latest = client.deleted("Account", T0, clock.now)
    assert gone == [{"id": first[1], "deletedDate": "2025-03-10T09:09:00.000+0000"}]
    assert latest == "2025-03-10T10:00:00.000+0000"
    assert client.deleted("Account", T0, T0 + timedelta(minutes=8))[0] == []
    assert sb.calls["GET /sobjects/Account/updated"] == 2
    assert sb.calls["GET /sobjects/Account/deleted"] == 2
    # the end is capped at now
    ids, latest = client.updated("Account", T0, clock.now + timedelta(days=2))
    assert latest == "2025-03-10T10:00:00.000+0000" and len(ids) == 4


def test_thirty_day_limit_and_bad_windows(org):
    client, sb, clock = org
    clock.now = T0 + timedelta(days=40)
    with pytest.raises(SalesforceAPIError) as exc:
        client.updated("Account", T0, clock.now)
    assert exc.value.code == "INVALID_REPLICATION_DATE" and exc.value.status == 400
    with pytest.raises(SalesforceAPIError) as exc:
        client.deleted("Account", clock.now, clock.now - timedelta(hours=1))
    assert exc.value.code == "INVALID_REPLICATION_DATE"
    client.updated("Account", clock.now - timedelta(days=29), clock.now)  # inside: fine
    gone = client._delta("Account", "deleted", clock.now - timedelta(days=1), clock.now)
    assert gone["earliestDateAvailable"] == "2025-03-20T09:00:00.000+0000"


def test_count_is_a_soql_count(org):
    client, sb, _ = org
    _accounts(client, 7)
    assert client.count("Account") == 7
    assert sb.calls["GET /query"] == 1
