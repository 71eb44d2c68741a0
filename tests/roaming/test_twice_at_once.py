"""The same partner message twice at once (a partner retrying while its first call still runs):
each object is stored once, the second call gets the first's result or the answer a late call
gets, never a 500, and nothing money touches is doubled. Threads released together by a
barrier, each with its own connection (PostgreSQL: row locks and unique indexes across
connections)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from authorization.models import Token
from roaming import ocpi, services
from roaming.models import Partner, PartnerLocation, PartnerSession, PushedToken, Terminal
from tests.concurrency import at_once
from tests.factories import OrganizationFactory, TokenFactory
from tests.roaming import spec
from tests.roaming.conftest import PARTNER_TOKEN, auth, connected_partner
from tests.roaming.emsp_stub import EmspStub
from tests.roaming.test_emsp_tokens import CPO_TOKEN, cpo_partner, with_identity

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("postgresql_only")]


def send(method: str, url: str, body: Any, token: str) -> Callable[[], Any]:
    def call() -> Any:
        answer = Client(raise_request_exception=False).generic(
            method,
            url,
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth(token),
        )
        return answer.status_code, answer.json()["status_code"]

    return call


# -- as CPO: an eMSP pushes the same token twice at once ------------------------------------------


def test_a_token_put_twice_at_once_is_one_card_and_no_500(operator):
    connected_partner(operator["org"], country_code="NL", party_id="TNM")
    example = spec.example("token_put_example.json")
    url = "/ocpi/2.2.1/tokens/NL/TNM/012345678"

    answers = at_once(*[send("PUT", url, example, PARTNER_TOKEN) for _ in range(4)])

    assert sorted(answers) == [(200, 1000)] * 3 + [(201, 1000)], answers
    assert Token.objects.filter(uid="012345678").count() == 1
    pushed = PushedToken.objects.get()
    assert pushed.token.uid == "012345678"


# -- as eMSP: a CPO pushes the same session and location twice at once ----------------------------


@pytest.fixture
def emsp_org():
    org = OrganizationFactory()
    with_identity(org)
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    return org


def test_a_session_put_twice_at_once_is_one_row_and_no_500(emsp_org):
    card = TokenFactory(organization=emsp_org, uid="123ABC")
    session = spec.example("session_example_2_short_finished.json", "2.2.1")
    url = "/ocpi/2.2.1/emsp/sessions/BE/BEC/101"

    answers = at_once(*[send("PUT", url, session, CPO_TOKEN) for _ in range(4)])

    assert answers == [(200, 1000)] * 4, answers
    row = PartnerSession.objects.get()
    assert (row.session_id, row.token_id) == ("101", card.pk)


def test_a_location_put_twice_at_once_is_one_row_and_no_500(emsp_org):
    location = spec.example("location_example.json", "2.2.1")
    url = "/ocpi/2.2.1/emsp/locations/BE/BEC/LOC1"

    answers = at_once(*[send("PUT", url, location, CPO_TOKEN) for _ in range(4)])

    assert answers == [(200, 1000)] * 4, answers
    assert PartnerLocation.objects.get().location_id == "LOC1"


# -- as CPO: a payment terminal provider pushes the same terminal twice at once -------------------


PTP_TOKEN = "ptp-calls-us-token"


def test_a_terminal_posted_twice_at_once_is_one_terminal_and_no_500(operator):
    connected_partner(
        operator["org"],
        token=PTP_TOKEN,
        role="PTP",
        country_code="AT",
        party_id="PTP",
        version="2.3.0",
        base="https://ptp.example/ocpi/2.3.0",
    )
    example = spec.example("payment_terminal_create.json", "2.3.0")
    url = "/ocpi/2.3.0/payments/terminals"

    answers = at_once(*[send("POST", url, example, PTP_TOKEN) for _ in range(4)])

    assert sorted(answers) == [(200, 1000)] * 3 + [(201, 1000)], answers
    assert Terminal.objects.get().terminal_id == example["terminal_id"]


# -- credentials: a partner registers (POST) or updates (PUT) twice at once -----------------------


@pytest.fixture
def stub(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]  # the stub listens on loopback
    emsp = EmspStub()
    yield emsp
    emsp.close()


def credentials(method: str, body: dict, token: str) -> Callable[[], Any]:
    def call() -> Any:
        answer = Client(raise_request_exception=False).generic(
            method,
            "/ocpi/2.2.1/credentials",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth(token),
        )
        return answer.status_code, answer.json()

    return call


def only_token_answered(answers: list[Any]) -> str:
    """The one token C we answered, checked to be the one that works."""
    accepted = [body["data"]["token"] for status, body in answers if body["status_code"] == 1000]
    refused = [(status, body["status_code"]) for status, body in answers if status != 200]
    assert (len(accepted), refused) == (1, [(401, 2000)]), answers
    return accepted[0]


def test_credentials_posted_twice_at_once_leave_the_token_we_answered_working(stub):
    partner, token_a = services.partner_invite(organization=OrganizationFactory(), name="Stub")
    stub.cpo_token = "stub-token-b-1"  # what we call the stub with
    body = stub.our_credentials(stub.cpo_token)

    answers = at_once(*[credentials("POST", body, token_a) for _ in range(2)])

    token_c = only_token_answered(answers)
    partner.refresh_from_db()
    assert partner.state == Partner.State.CONNECTED
    assert partner.incoming_token_hash == ocpi.token_hash(token_c)
    assert Partner.objects.count() == 1


def test_credentials_put_twice_at_once_leave_the_token_we_answered_working(stub):
    partner, token_a = services.partner_invite(organization=OrganizationFactory(), name="Stub")
    stub.cpo_token = "stub-token-b-1"
    registered = at_once(*[credentials("POST", stub.our_credentials(stub.cpo_token), token_a)])
    token_c = registered[0][1]["data"]["token"]
    stub.cpo_token = "stub-token-b-2"
    body = stub.our_credentials(stub.cpo_token)

    answers = at_once(*[credentials("PUT", body, token_c) for _ in range(2)])

    new_token = only_token_answered(answers)
    partner.refresh_from_db()
    assert partner.incoming_token_hash == ocpi.token_hash(new_token)


# -- our side: the CDR of one session made, or corrected, twice at once ---------------------------


def finished_roaming_session(operator, *, reason: str):
    """A session of the partner's card at the public charger, 6 kWh, closed with `reason`."""
    from datetime import UTC, datetime
    from decimal import Decimal

    from billing.models import Rate
    from chargers.models import ChargingSession
    from roaming import services as roaming_services

    partner = connected_partner(operator["org"])
    body = {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": "RFID0001",
        "type": "RFID",
        "contract_id": "DE-EMS-C0001",
        "issuer": "EMS",
        "valid": True,
        "whitelist": "ALWAYS",
        "last_updated": "2026-01-01T00:00:00Z",
    }
    roaming_services.token_store(
        partner=partner,
        country_code="DE",
        party_id="EMS",
        uid="RFID0001",
        type_="RFID",
        body=body,
    )
    Rate.objects.create(
        property=operator["public"],
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.35"),
        tax_percent=Decimal("21"),
    )
    start = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    session = ChargingSession.objects.create(
        charger=operator["cp_public"],
        connector_id=1,
        transaction_id=7001,
        id_tag="RFID0001",
        token=Token.objects.get(uid="RFID0001"),
        started_at=start,
        stopped_at=datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
        received_stop_at=datetime.now(UTC),
        meter_start_wh=Decimal("10000"),
        meter_stop_wh=Decimal("16000"),
        stop_reason=reason,
        status=ChargingSession.Status.COMPLETED,
    )
    return partner, session


def test_the_cdr_of_a_session_made_twice_at_once_is_one_cdr_sent_once(operator):
    from roaming import sessions
    from roaming.models import Cdr, Delivery

    partner, session = finished_roaming_session(operator, reason="Local")

    made = at_once(
        *[lambda: sessions.cdr_create(session_id=session.pk)] * 2 + [sessions.sessions_sweep] * 2
    )

    assert not [r for r in made if isinstance(r, BaseException)], made
    cdr = Cdr.objects.get()
    assert cdr.cdr_id == f"CDR-{session.pk}"
    assert Delivery.objects.filter(partner=partner, module="cdrs").count() == 1


def test_an_estimated_cdr_corrected_twice_at_once_is_credited_and_replaced_once(operator):
    """Two support agents press *Credit and replace* while the sweep runs twice: one Credit CDR
    and one new CDR go to the partner."""
    from chargers.models import ChargingSession
    from roaming import sessions
    from roaming.models import Cdr, Delivery

    partner, session = finished_roaming_session(operator, reason="NoStopTransaction")
    first = sessions.cdr_create(session_id=session.pk)
    assert first is not None and first.estimated
    # The charger's own stop came since: 12 kWh, not the 6 of our estimate.
    ChargingSession.objects.filter(pk=session.pk).update(stop_reason="Local", meter_stop_wh=22000)

    done = at_once(*[lambda: sessions.cdrs_correct([first.pk])] * 2 + [sessions.sessions_sweep] * 2)

    assert not [r for r in done if isinstance(r, BaseException)], done
    ids = sorted(Cdr.objects.values_list("cdr_id", flat=True))
    assert ids == sorted([f"CDR-{session.pk}", f"CDR-{session.pk}-2", f"CDR-{session.pk}-C"])
    assert Delivery.objects.filter(partner=partner, module="cdrs").count() == 3
    assert Cdr.objects.current().get().cdr_id == f"CDR-{session.pk}-2"


# -- as CPO: an eMSP sends the same command twice at once -----------------------------------------


@pytest.fixture
def queued(monkeypatch):
    """The ids of the commands queued for the worker, which has not run them yet (the partner
    retries while its first command waits for the charger)."""
    from roaming import schedule

    ids: list[int] = []

    def later(name: str, *args: object) -> None:
        if name == schedule.COMMAND_EXECUTE:
            ids.append(args[0])  # type: ignore[arg-type]

    monkeypatch.setattr(schedule, "later", later)
    return ids


def command_body(operator, command: str, **fields) -> dict:
    return {
        "response_url": f"https://emsp.example/ocpi/emsp/2.2.1/commands/{command}/42",
        **fields,
    }


def app_token() -> dict:
    return {
        "country_code": "DE",
        "party_id": "EMS",
        "uid": "APP0001",
        "type": "APP_USER",
        "contract_id": "DE-EMS-C1",
        "issuer": "EMS",
        "valid": True,
        "whitelist": "ALLOWED",
        "last_updated": "2024-01-01T00:00:00Z",
    }


def test_a_start_session_sent_twice_at_once_reaches_the_charger_once(operator, partner, queued):
    from roaming.models import RemoteCommand

    body = command_body(
        operator,
        "START_SESSION",
        token=app_token(),
        location_id=str(operator["public"].pk),
        evse_uid="PUB-1*1",
        authorization_reference="AUTH-1",
    )

    answers = at_once(
        *[send("POST", "/ocpi/2.2.1/commands/START_SESSION", body, PARTNER_TOKEN)] * 4
    )

    assert answers == [(200, 1000)] * 4, answers
    command = RemoteCommand.objects.get()
    assert (command.type, command.response) == ("START_SESSION", "ACCEPTED")
    assert queued == [command.pk]


def test_a_stop_session_sent_twice_at_once_reaches_the_charger_once(operator, queued):
    from chargers.models import ChargingSession
    from roaming.models import RemoteCommand

    _, session = finished_roaming_session(operator, reason="")
    ChargingSession.objects.filter(pk=session.pk).update(
        status=ChargingSession.Status.ACTIVE, stopped_at=None, stop_reason=""
    )
    body = command_body(operator, "STOP_SESSION", session_id=str(session.pk))

    answers = at_once(*[send("POST", "/ocpi/2.2.1/commands/STOP_SESSION", body, PARTNER_TOKEN)] * 4)

    assert answers == [(200, 1000)] * 4, answers
    command = RemoteCommand.objects.get()
    assert queued == [command.pk]


def test_a_command_task_delivered_twice_at_once_runs_once_and_answers_once(
    operator, partner, own_cache
):
    """The command's task redelivered while it runs (acks late: a worker lost, or the broker's
    visibility timeout): the charger gets the command once and the partner one CommandResult."""
    from chargers.models import Charger, Command
    from roaming import commands
    from roaming.models import Delivery, RemoteCommand

    Charger.objects.filter(pk=operator["cp_public"].pk).update(connection_id="", last_seen_at=None)
    remote = RemoteCommand.objects.create(
        partner=partner,
        type=RemoteCommand.Type.UNLOCK_CONNECTOR,
        request={"location_id": str(operator["public"].pk), "evse_uid": "PUB-1*1"},
        # Refused at once by the outbound guard (loopback): the result waits in the outbox.
        response_url="https://127.0.0.1:9/ocpi/emsp/2.2.1/commands/UNLOCK_CONNECTOR/42",
        charger=operator["cp_public"],
        connector_id=1,
        response="ACCEPTED",
    )

    results = at_once(*[lambda: commands.command_execute(remote_command_id=remote.pk)] * 4)

    assert not [r for r in results if isinstance(r, BaseException)], results
    remote.refresh_from_db()
    assert remote.result == "FAILED"  # the charger is offline
    assert Command.objects.filter(charger=operator["cp_public"]).count() == 1
    assert Delivery.objects.filter(module="commands").count() == 1


def test_connect_to_a_partner_submitted_twice_at_once_makes_one_partner(live_server, stub):
    """*Connect to a partner* submitted twice (a double click, two tabs, the API retried): one
    partner row is registered; the other submit is told a registration is under way."""
    organization = OrganizationFactory()

    def connect() -> Any:
        return services.partner_connect(
            organization=organization,
            name="Stub",
            versions_url=stub.versions_url,
            token_a=stub.token_a,
            our_versions_url=f"{live_server.url}/ocpi/versions",
        )

    results = at_once(*[connect] * 2)

    connected = [r for r in results if isinstance(r, Partner)]
    refused = [r for r in results if isinstance(r, services.RegistrationError)]
    assert (len(connected), len(refused)) == (1, 1), results
    assert "already" in refused[0].message
    assert list(Partner.objects.values_list("pk", "state")) == [(connected[0].pk, "connected")]


def test_a_terminal_start_sent_twice_at_once_is_one_payment(operator, queued):
    """A payment terminal provider's START_SESSION retried at once with its authorization
    reference: one payment (one one-off card, one session, one CDR and invoice), one start."""
    from roaming import payments
    from roaming.models import RemoteCommand, TerminalPayment

    ptp = connected_partner(
        operator["org"],
        token=PTP_TOKEN,
        role="PTP",
        country_code="AT",
        party_id="PTP",
        version="2.3.0",
        base="https://ptp.example/ocpi/2.3.0",
    )
    terminal, _ = payments.terminal_receive(
        partner=ptp, body={"terminal_id": "T-1", "invoice_creator": "CPO"}
    )
    payments.terminal_assign(terminal=terminal, location_ids=[operator["public"].pk], evses=[])
    body = {
        "response_url": "https://ptp.example/ocpi/2.3.0/commands/START_SESSION/1",
        "token": {**app_token(), "country_code": "AT", "party_id": "PTP", "type": "AD_HOC_USER"},
        "location_id": str(operator["public"].pk),
        "evse_uid": "PUB-1*1",
        "authorization_reference": "pp-100100-1",
    }

    def start() -> Any:
        answer = Client(raise_request_exception=False).post(
            "/ocpi/2.3.0/commands/START_SESSION",
            json.dumps(body),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth(PTP_TOKEN),
        )
        return answer.status_code, answer.json()["data"]["result"]

    answers = at_once(*[start] * 4)

    assert [answers.count((200, "ACCEPTED")), answers.count((200, "REJECTED"))] == [1, 3], answers
    payment = TerminalPayment.objects.get()
    assert RemoteCommand.objects.get(response="ACCEPTED").pk == payment.command_id
    assert queued == [payment.command_id]
    # The refused tries' one-off cards never work.
    assert list(Token.objects.filter(uid__startswith="PT", valid=True)) == [payment.token]


@pytest.fixture
def own_cache(settings):
    """A cache prefix of this test's own: the claims below live in the cache, which other test
    processes sharing the Redis database clear."""
    settings.CACHES = {
        name: {**config, "KEY_PREFIX": f"twice-{uuid.uuid4().hex}"}
        for name, config in settings.CACHES.items()
    }


def test_the_cdr_push_sent_by_two_workers_at_once_reaches_the_partner_once(
    operator, stub, own_cache
):
    """The deliveries sweep and the CDR's own task (or the task delivered twice) send the
    partner's pushes at the same moment: one sender at a time, the CDR is POSTed once."""
    from roaming.models import Delivery

    partner = connected_partner(
        operator["org"], base=stub.base + "/2.2.1", outgoing_token="cpo-calls-stub"
    )
    stub.cpo_token = partner.outgoing_token
    services.delivery_enqueue(
        partner=partner,
        module="cdrs",
        object_key="cdr:1",
        method="POST",
        path="",
        body={"id": "CDR-1", "total_cost": {"excl_vat": 4.0}},
    )

    at_once(*[lambda: services.deliveries_send(partner_id=partner.pk)] * 4)

    assert [r["body"]["id"] for r in stub.requests_to("cdrs", "POST")] == ["CDR-1"]
    assert Delivery.objects.get().status == Delivery.Status.SENT


def test_a_sender_whose_lock_ran_out_sends_nothing_more_and_leaves_the_new_holders_lock(
    operator, stub, own_cache
):
    """A send pass slower than the lock's lifetime (a partner answering each push at its
    timeout): the lock ran out and the sweep's sender took it. The first sender checks the lock
    before every push, so the same CDR is not POSTed by both, and its clean-up does not free the
    new holder's lock for a third."""
    from roaming.models import Delivery
    from roaming.sender_lock import SenderLock

    partner = connected_partner(
        operator["org"], base=stub.base + "/2.2.1", outgoing_token="cpo-calls-stub"
    )
    stub.cpo_token = partner.outgoing_token
    for n in (1, 2):
        services.delivery_enqueue(
            partner=partner,
            module="cdrs",
            object_key=f"cdr:{n}",
            method="POST",
            path="",
            body={"id": f"CDR-{n}", "total_cost": {"excl_vat": 4.0}},
        )
    slow = SenderLock(partner.pk)
    assert slow.take()
    cache.delete(slow.key)  # its lifetime is over ...
    sweep = SenderLock(partner.pk)
    assert sweep.take()  # ... and the sweep's sender has the partner's pushes now

    assert services.deliveries_pass(partner.pk, 500, {}, slow) == (0, False)
    assert stub.requests_to("cdrs", "POST") == []
    slow.let_go()
    assert cache.get(sweep.key) == sweep.token  # not freed for a third sender
    assert services.deliveries_send(partner_id=partner.pk) == 0  # a third waits its turn

    assert services.deliveries_pass(partner.pk, 500, {}, sweep) == (2, True)
    sweep.let_go()
    assert [r["body"]["id"] for r in stub.requests_to("cdrs", "POST")] == ["CDR-1", "CDR-2"]
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENT}
    assert cache.get(sweep.key) is None
