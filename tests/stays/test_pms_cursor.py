"""A PMS's change times as the incremental cursor: one in the future (a vendor's clock bug, hostile
data) never becomes a cursor past our own now, which would make every later pull skip real changes;
and the records a pull leaves out (no usable id or dates) are counted where the host sees them."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from stays.models import PmsIntegration
from stays.services.pms import pms_sync

NOW = datetime(2026, 7, 2, 12, 0, tzinfo=UTC)


GUESTY_LISTINGS = {"results": [{"_id": "L1", "title": "Cabin 1"}], "count": 1}


def guesty_client(reservations: list[dict]) -> httpx.Client:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/oauth2/token":
            return httpx.Response(200, json={"access_token": "tok"})
        if request.url.path == "/v1/listings":
            return httpx.Response(200, json=GUESTY_LISTINGS)
        if request.url.path == "/v1/reservations":
            return httpx.Response(200, json={"results": reservations, "count": len(reservations)})
        return httpx.Response(404, json={})

    return httpx.Client(transport=httpx.MockTransport(answer))


def pms_reservation(n: int, updated: str, **extra) -> dict:
    return {
        "_id": f"R{n}",
        "listingId": "L1",
        "checkIn": "2026-07-01T13:00:00.000Z",
        "checkOut": "2026-07-04T09:00:00.000Z",
        "status": "confirmed",
        "guest": {"fullName": f"Guest {n}", "email": f"guest{n}@example.com"},
        "lastUpdatedAt": updated,
        **extra,
    }


@pytest.mark.django_db
def test_a_change_time_in_the_future_is_no_cursor_past_our_now(guesty):
    # A vendor's clock bug (or hostile data) stamps one reservation in 2099: before, that became
    # the cursor and every later pull asked for changes since 2099, skipping every real one.
    stays = [
        pms_reservation(1, "2026-06-20T08:00:00.000Z"),
        pms_reservation(2, "2099-01-01T00:00:00.000Z"),
        pms_reservation(3, "not a time"),
    ]
    assert pms_sync(integration_id=guesty.pk, client=guesty_client(stays), now=NOW).ok
    guesty.refresh_from_db()
    assert guesty.cursor == "2026-07-02T12:00:00.000Z"  # our now, not 2099
    seen: list[httpx.Request] = []
    client = guesty_client([])
    client.event_hooks["request"].append(seen.append)
    pms_sync(integration_id=guesty.pk, client=client, now=NOW + timedelta(minutes=15))
    assert '"value": "2026-07-02T12:00:00.000Z"' in seen[-1].url.params["filters"]


@pytest.mark.django_db
def test_a_stored_cursor_in_the_future_is_dropped_for_a_full_pull(guesty):
    # An integration whose cursor a far-future stamp set before the cap: pulled whole once.
    PmsIntegration.objects.filter(pk=guesty.pk).update(cursor="2099-01-01T00:00:00.000Z")
    seen: list[httpx.Request] = []
    client = guesty_client([pms_reservation(1, "2026-06-20T08:00:00.000Z")])
    client.event_hooks["request"].append(seen.append)
    assert pms_sync(integration_id=guesty.pk, client=client, now=NOW).reservations == 1
    assert "filters" not in seen[-1].url.params
    guesty.refresh_from_db()
    assert guesty.cursor == "2026-06-20T08:00:00.000Z"


@pytest.mark.django_db
def test_records_left_out_of_a_sync_are_counted_for_the_host(client, guesty):
    from tests.factories import MembershipFactory

    stays = [
        pms_reservation(1, "2026-06-20T08:00:00.000Z"),
        pms_reservation(2, "2026-06-20T08:00:00.000Z", checkOut="2026-06-30T09:00:00.000Z"),
        pms_reservation(3, "2026-06-20T08:00:00.000Z", _id=None),
        "not a record",
    ]
    result = pms_sync(integration_id=guesty.pk, client=guesty_client(stays), now=NOW)
    assert result.ok and result.reservations == 1 and result.left_out == 3
    guesty.refresh_from_db()
    assert guesty.state == "ok"
    assert guesty.last_error.startswith("3 record(s) from the PMS were left out")
    client.force_login(MembershipFactory(organization=guesty.organization, role="viewer").user)
    assert (
        "3 record(s) from the PMS were left out"
        in client.get(f"/stays/integrations/{guesty.pk}/").content.decode()
    )
    # A clean pull clears the note.
    assert (
        pms_sync(
            integration_id=guesty.pk, client=guesty_client(stays[:1]), now=NOW, force=True
        ).left_out
        == 0
    )
    guesty.refresh_from_db()
    assert guesty.last_error == ""
