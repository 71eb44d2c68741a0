"""Status changes of published EVSEs are PATCHed to partners through the outbox, in order,
and kept until a partner that was down accepts them."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chargers.models import Connector
from chargers.signals import connector_status_changed
from chargers.state import charger as connection_state
from roaming import services, tasks
from roaming.models import Delivery
from tests.roaming.conftest import connected_partner
from tests.roaming.emsp_stub import EmspStub


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    emsp = EmspStub()
    yield emsp
    emsp.close()


@pytest.fixture
def stub_partner(operator, stub):
    partner = connected_partner(
        operator["org"], base=stub.base + "/2.2.1", outgoing_token="cpo-calls-stub-with-this"
    )
    stub.cpo_token = partner.outgoing_token
    return partner


def _status(charger, connector_id, status, *, at=None):
    """A StatusNotification as the OCPP path stores it, then the signal chargers sends on commit."""
    connection_state.connector_status_update(
        charger_id=charger.pk,
        connector_id=connector_id,
        status=status,
        error_code="NoError",
        timestamp=at or timezone.now(),
    )
    connector_status_changed.send(sender=Connector, connectors=[(charger.pk, connector_id)])


def test_a_status_change_is_patched_to_the_partner_evse(operator, stub, stub_partner):
    charger = operator["cp_public"]
    _status(charger, 1, "Charging")

    (patch,) = stub.requests_to("locations", "PATCH")
    location_id = operator["public"].pk
    assert patch["path"] == f"/ocpi/emsp/2.2.1/locations/NL/EVB/{location_id}/PUB-1*1"
    assert patch["body"]["status"] == "CHARGING" and patch["body"]["last_updated"].endswith("Z")
    assert patch["headers"]["Authorization"].startswith("Token ")
    assert patch["headers"]["X-Request-ID"] and patch["headers"]["X-Correlation-ID"]
    delivery = Delivery.objects.get(partner=stub_partner)
    assert delivery.status == Delivery.Status.SENT
    stub_partner.refresh_from_db()
    assert stub_partner.last_push_at is not None


def test_unpublished_chargers_push_nothing(operator, stub, stub_partner):
    for key in ("cp_private", "cp_guest", "cp_closed", "cp_nodata"):
        _status(operator[key], 1, "Charging")
    _status(operator["cp_public"], 0, "Unavailable")  # connector 0 is the charger, not an EVSE
    assert stub.requests_to("locations") == []
    assert not Delivery.objects.exists()


def test_the_sweep_pushes_a_change_whose_signal_was_missed_and_only_once(
    operator, stub, stub_partner
):
    charger = operator["cp_public"]
    tasks.evse_status_sweep_task.delay()  # first sweep: what partners do not have yet
    first = len(stub.requests_to("locations", "PATCH"))
    connection_state.connector_status_update(
        charger_id=charger.pk,
        connector_id=2,
        status="Faulted",
        error_code="GroundFailure",
        timestamp=timezone.now(),
    )

    tasks.evse_status_sweep_task.delay()
    tasks.evse_status_sweep_task.delay()

    patches = stub.requests_to("locations", "PATCH")[first:]
    assert [(p["path"].rsplit("/", 1)[1], p["body"]["status"]) for p in patches] == [
        ("PUB-1*2", "OUTOFORDER")
    ]


def test_a_charger_that_disconnects_is_pushed_as_unknown_by_the_sweep(operator, stub, stub_partner):
    charger = operator["cp_public"]
    tasks.evse_status_sweep_task.delay()
    first = len(stub.requests_to("locations", "PATCH"))
    type(charger).objects.filter(pk=charger.pk).update(
        connection_id="", disconnected_at=timezone.now()
    )

    tasks.evse_status_sweep_task.delay()

    patches = stub.requests_to("locations", "PATCH")[first:]
    assert sorted(p["body"]["status"] for p in patches) == ["UNKNOWN", "UNKNOWN"]


def test_a_partner_that_was_down_gets_the_latest_state_when_it_is_back(
    operator, stub, stub_partner
):
    charger = operator["cp_public"]
    stub.down = True
    _status(charger, 1, "Charging")
    delivery = Delivery.objects.get()
    assert delivery.status == Delivery.Status.PENDING and delivery.attempts == 1
    assert delivery.next_attempt_at > timezone.now()
    stub_partner.refresh_from_db()
    assert "503" in stub_partner.last_error

    # More changes while it is down: the waiting PATCH carries the newest state (no stale replay).
    _status(charger, 1, "Faulted")
    _status(charger, 1, "Available")
    assert Delivery.objects.count() == 1

    stub.down = False
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    tasks.deliveries_sweep_task.delay()

    (patch,) = stub.requests_to("locations", "PATCH")
    assert patch["body"]["status"] == "AVAILABLE"
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_a_failed_push_holds_back_later_pushes_of_the_same_object_only(
    operator, stub, stub_partner
):
    first = services.delivery_enqueue(
        partner=stub_partner,
        module="cdrs",
        object_key="cdr:1",
        method="POST",
        path="",
        body={"id": "1"},
    )
    second = services.delivery_enqueue(
        partner=stub_partner,
        module="cdrs",
        object_key="cdr:1",
        method="POST",
        path="",
        body={"id": "1-bis"},
    )
    other = services.delivery_enqueue(
        partner=stub_partner,
        module="cdrs",
        object_key="cdr:2",
        method="POST",
        path="",
        body={"id": "2"},
    )
    Delivery.objects.filter(pk=first.pk).update(
        next_attempt_at=timezone.now() + timedelta(minutes=5)
    )

    services.deliveries_send(partner_id=stub_partner.pk)

    assert [r["body"]["id"] for r in stub.requests_to("cdrs")] == ["2"]
    assert Delivery.objects.get(pk=second.pk).status == Delivery.Status.PENDING
    assert Delivery.objects.get(pk=other.pk).status == Delivery.Status.SENT
    Delivery.objects.filter(pk=first.pk).update(next_attempt_at=timezone.now())
    services.deliveries_send(partner_id=stub_partner.pk)
    assert [r["body"]["id"] for r in stub.requests_to("cdrs")] == ["2", "1", "1-bis"]


def _while_sending(monkeypatch, during):
    """Run `during()` once, inside the first partner call of a deliveries_send (its lock held)."""
    real_call, calls = services.client.call, []

    def call(**kwargs):
        calls.append(kwargs["body"])
        if len(calls) == 1:
            during()
        return real_call(**kwargs)

    monkeypatch.setattr(services.client, "call", call)
    return calls


def test_a_push_queued_while_another_sender_holds_the_lock_is_sent_by_that_sender(
    operator, stub, stub_partner, monkeypatch
):
    charger = operator["cp_public"]
    cdr = services.delivery_enqueue(
        partner=stub_partner,
        module="cdrs",
        object_key="cdr:1",
        method="POST",
        path="",
        body={"id": "1"},
    )

    def status_change():
        _status(charger, 1, "Unavailable")  # its own send finds the lock taken and returns

    _while_sending(monkeypatch, status_change)

    services.deliveries_send(partner_id=stub_partner.pk)

    assert [p["body"]["status"] for p in stub.requests_to("locations", "PATCH")] == ["INOPERATIVE"]
    assert Delivery.objects.get(pk=cdr.pk).status == Delivery.Status.SENT
    assert not Delivery.objects.filter(status=Delivery.Status.PENDING).exists()


def test_a_newer_body_given_to_a_push_on_its_way_is_sent_after_it(
    operator, stub, stub_partner, monkeypatch
):
    charger = operator["cp_public"]
    _while_sending(monkeypatch, lambda: _status(charger, 1, "Faulted"))

    _status(charger, 1, "Charging")

    assert [p["body"]["status"] for p in stub.requests_to("locations", "PATCH")] == [
        "CHARGING",
        "OUTOFORDER",
    ]
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_a_partner_that_is_down_is_not_asked_again_in_a_loop(
    operator, stub, stub_partner, monkeypatch
):
    charger = operator["cp_public"]
    stub.down = True
    calls = _while_sending(monkeypatch, lambda: _status(charger, 2, "Faulted"))

    _status(charger, 1, "Charging")

    assert (
        len(calls) == 1
    )  # the push queued meanwhile waits with the first for the partner's return
    assert Delivery.objects.filter(status=Delivery.Status.PENDING).count() == 2


def test_push_tries_are_counted_as_ocpi_deliveries_for_the_metrics(operator, stub, stub_partner):
    from prometheus_client import REGISTRY

    def tries(outcome: str) -> float:
        labels = {"kind": "ocpi", "outcome": outcome}
        return REGISTRY.get_sample_value("evportal_outbound_deliveries_total", labels) or 0.0

    failed, sent = tries("failed"), tries("sent")
    stub.down = True
    _status(operator["cp_public"], 1, "Charging")
    assert (tries("failed"), tries("sent")) == (failed + 1, sent)
    stub.down = False
    Delivery.objects.update(next_attempt_at=timezone.now() - timedelta(seconds=1))
    tasks.deliveries_sweep_task.delay()
    assert (tries("failed"), tries("sent")) == (failed + 1, sent + 1)


def test_the_sweep_still_pushes_a_change_older_than_ten_minutes_after_redis_lost_its_mark(
    operator, stub, stub_partner
):
    """The sweep's mark is kept in the database: a Redis that restarted empty (here: the cache
    cleared) made the next sweep look back 10 minutes only, and a status that changed 30 minutes
    ago, after the last sweep (the beat was down meanwhile), never reached the partner."""
    import time_machine
    from django.core.cache import cache

    charger = operator["cp_public"]
    now = timezone.now()
    long_ago = now - timedelta(hours=2)
    Connector.objects.filter(charger=charger).update(status_timestamp=long_ago)
    type(charger).objects.update(connected_at=long_ago)  # connected before the first sweep
    with time_machine.travel(now - timedelta(hours=1)):
        tasks.evse_status_sweep_task.delay()
    first = len(stub.requests_to("locations", "PATCH"))
    with time_machine.travel(now - timedelta(minutes=30)):
        connection_state.connector_status_update(  # its signal was missed
            charger_id=charger.pk,
            connector_id=2,
            status="Faulted",
            error_code="GroundFailure",
            timestamp=timezone.now(),
        )
    cache.clear()  # Redis restarted empty

    tasks.evse_status_sweep_task.delay()

    patches = stub.requests_to("locations", "PATCH")[first:]
    assert [(p["path"].rsplit("/", 1)[1], p["body"]["status"]) for p in patches] == [
        ("PUB-1*2", "OUTOFORDER")
    ]
