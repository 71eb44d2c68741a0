"""Alerts: the open/clear rules (pure), the rule and alert API with its tenant scoping, the
problems of each kind, and signed webhook delivery with retries through the outbound guard."""

import hashlib
import hmac
import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from django.core import mail
from django.utils import timezone

from chargers.models import ChargerCertificate, ChargingSession, OcppMessage
from reliability import alerting
from reliability.models import Alert, AlertDelivery, AlertRecipient, AlertRule, PortEvent
from reliability.services import alerts
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db

T0 = timezone.now().replace(microsecond=0)


# -- the pure rules -------------------------------------------------------------------------------


def problem(since, connector=1, kind="faulted"):
    return alerting.Problem(kind, 7, connector, since)


def test_an_alert_opens_once_the_problem_lasted_after_s():
    young = alerting.changes("faulted", 300, [problem(T0 - timedelta(seconds=299))], [], T0)
    assert young.open == [] and young.clear == []
    due = alerting.changes("faulted", 300, [problem(T0 - timedelta(seconds=300))], [], T0)
    assert [p.connector_id for p in due.open] == [1]


def test_one_open_alert_per_problem_and_it_clears_when_the_problem_is_gone():
    since = T0 - timedelta(minutes=10)
    open_alert = alerting.OpenAlert(5, 7, 1, since)
    still = alerting.changes("faulted", 300, [problem(since)], [open_alert], T0)
    assert still.open == [] and still.clear == []
    gone = alerting.changes("faulted", 300, [], [open_alert], T0)
    assert gone.clear == [5] and gone.open == []


def test_a_problem_that_began_again_is_a_new_one():
    old = alerting.OpenAlert(5, 7, 1, T0 - timedelta(minutes=10))
    moved = alerting.changes(
        "stuck_session", 300, [problem(T0 - timedelta(seconds=5), kind="stuck_session")], [old], T0
    )
    assert moved.clear == [5] and moved.open == []  # the session moved: no longer stuck


def test_retries_back_off_and_the_signature_is_hmac_sha256_of_the_body():
    assert [alerting.retry_delay_s(n) for n in (1, 2, 3, 8, 20)] == [30, 60, 120, 3600, 3600]
    raw = alerting.body({"b": 1, "a": 2})
    assert raw == b'{"a":2,"b":1}'
    assert alerting.signature("s3cret", raw) == hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()


# -- a webhook receiver over a real socket ------------------------------------------------------


class Receiver:
    def __init__(self, answers=(204,)):
        self.received: list[tuple[dict, bytes, dict]] = []
        self.answers = list(answers)
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.received.append((json.loads(raw), raw, dict(self.headers)))
                code = receiver.answers.pop(0) if len(receiver.answers) > 1 else receiver.answers[0]
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver(settings):
    server = Receiver()
    settings.OUTBOUND_URL_ALLOWLIST = [f"127.0.0.1:{server.port}"]
    yield server
    server.close()


def faulted(charger, connector=1, ago=600, error="GroundFailure"):
    PortEvent.objects.create(
        charger=charger,
        connector_id=connector,
        kind="status",
        at=timezone.now() - timedelta(seconds=ago),
        status="Faulted",
        error_code=error,
    )


def rule_for(charger, **fields):
    fields.setdefault("kind", "faulted")
    fields.setdefault("after_s", 60)
    return AlertRule.objects.create(organization=charger.property.organization, **fields)


# -- opening, clearing and delivering -----------------------------------------------------------


def test_faulted_port_opens_a_signed_alert_with_its_mrec_code_and_clears(charger, receiver):
    rule = rule_for(
        charger, webhook_url=receiver.url, webhook_secret="s3cret", email=["host@example.com"]
    )
    AlertRecipient.objects.create(  # a confirmed address (tests/reliability/test_alert_recipients.py)
        organization=rule.organization, email="host@example.com", key="k", confirmed_at=T0
    )
    faulted(charger)
    alerts.evaluate()
    assert alerts.deliveries_send() == 2
    alert = Alert.objects.get()
    assert (alert.kind, alert.connector_id, alert.mrec_code) == ("faulted", 1, "CX002")
    body, raw, headers = receiver.received[0]
    assert body["event"] == "opened" and body["alert"]["mrec_code"] == "CX002"
    assert headers["X-Signature"] == hmac.new(b"s3cret", raw, hashlib.sha256).hexdigest()
    assert "Port faulted: CP-TEST-1 port 1 (opened)" in mail.outbox[0].subject
    # Seen again: still one open alert.
    alerts.evaluate()
    assert Alert.objects.filter(cleared_at__isnull=True).count() == 1
    # The port recovers: the alert clears with its duration, and "cleared" goes out.
    PortEvent.objects.create(
        charger=charger, connector_id=1, kind="status", at=timezone.now(), status="Available"
    )
    alerts.evaluate()
    alerts.deliveries_send()
    alert.refresh_from_db()
    assert alert.cleared_at is not None and alert.duration_s >= 600
    cleared = receiver.received[-1][0]
    assert cleared["event"] == "cleared" and cleared["alert"]["duration_s"] >= 600
    assert rule.alerts.count() == 1


def test_a_failing_receiver_is_retried_with_back_off_then_delivered(charger, receiver):
    receiver.answers = [500, 204]
    rule_for(charger, webhook_url=receiver.url, webhook_secret="s")
    faulted(charger)
    alerts.evaluate()
    alerts.deliveries_send()
    delivery = AlertDelivery.objects.get()
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.response_status == 500 and "HTTP 500" in delivery.last_error
    assert alerts.deliveries_send() == 0  # not due yet
    alerts.deliveries_send(now=timezone.now() + timedelta(seconds=31))
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts, delivery.response_status) == ("sent", 2, 204)


def test_a_webhook_to_a_private_address_is_refused_at_connect_time(charger, settings):
    # Saved when allow-listed, then taken off the list: the client refuses before sending.
    rule = rule_for(charger, webhook_url="http://127.0.0.1:9/hook", webhook_secret="s")
    settings.OUTBOUND_URL_ALLOWLIST = []
    faulted(charger)
    alerts.evaluate()
    alerts.deliveries_send()
    delivery = AlertDelivery.objects.get(alert__rule=rule)
    assert delivery.status == "pending" and "private network" in delivery.last_error


def test_an_excluded_fault_opens_no_alert(charger):
    from reliability.models import Exclusion

    rule_for(charger)
    faulted(charger)
    Exclusion.objects.create(
        charger=charger,
        connector_id=1,
        start=timezone.now() - timedelta(hours=1),
        end=timezone.now() + timedelta(hours=1),
        reason="planned_maintenance",
    )
    alerts.evaluate()
    assert not Alert.objects.exists()


def test_offline_charger_alert_is_for_the_whole_charger(charger):
    rule_for(charger, kind="offline", after_s=60)
    PortEvent.objects.create(
        charger=charger, connector_id=0, kind="offline", at=timezone.now() - timedelta(seconds=90)
    )
    alerts.evaluate()
    alert = Alert.objects.get()
    assert (alert.kind, alert.connector_id) == ("offline", 0)


def test_stuck_session_reboot_loop_and_expiring_certificate(charger):
    now = timezone.now()
    rule_for(charger, kind="stuck_session", after_s=600)
    rule_for(charger, kind="reboot_loop", after_s=3600, threshold=3)
    rule_for(charger, kind="certificate_expiring", after_s=7 * 86400)
    ChargingSession.objects.create(
        charger=charger,
        connector_id=2,
        transaction_id=42,
        id_tag="04A1",
        started_at=now - timedelta(minutes=30),
        meter_start_wh=0,
    )
    for minutes in (50, 30, 10):
        OcppMessage.objects.create(
            charger=charger,
            direction="in",
            message_type=2,
            action="BootNotification",
            timestamp=now - timedelta(minutes=minutes),
        )
    ChargerCertificate.objects.create(
        charger=charger,
        serial_number="1F",
        fingerprint_sha256="a" * 64,
        subject="CN=CP-TEST-1",
        not_before=now - timedelta(days=300),
        not_after=now + timedelta(days=3),
        certificate_pem="-",
    )
    alerts.evaluate(now)
    kinds = {(a.kind, a.connector_id) for a in Alert.objects.all()}
    assert kinds == {("stuck_session", 2), ("reboot_loop", 0), ("certificate_expiring", 0)}


def test_uptime_below_target(charger):
    rule_for(charger, kind="uptime_below", threshold=99.999)
    faulted(charger, ago=120)
    alerts.evaluate()
    assert Alert.objects.get().kind == "uptime_below"


# -- the API and its tenant scoping ---------------------------------------------------------------


def test_rules_are_created_for_ones_own_organization_only(api_client, host, charger, settings):
    settings.OUTBOUND_URL_ALLOWLIST = []
    api_client.force_authenticate(host)
    organization = charger.property.organization
    body = {
        "organization": organization.pk,
        "kind": "faulted",
        "after_s": 120,
        "remediation": "soft_reset",
        "email": ["ops@example.com"],
        "webhook_url": "https://hooks.example.com/alerts",
        "webhook_secret": "s3cret",
    }
    created = api_client.post("/api/v1/alert-rules/", body, format="json")
    assert created.status_code == 201, created.data
    assert "webhook_secret" not in created.data and created.data["has_webhook_secret"]
    other = PropertyFactory().organization
    foreign = api_client.post(
        "/api/v1/alert-rules/", {**body, "organization": other.pk}, format="json"
    )
    assert foreign.status_code == 400 and "organization" in foreign.data
    private = api_client.post(
        "/api/v1/alert-rules/", {**body, "webhook_url": "https://10.0.0.5/x"}, format="json"
    )
    assert private.status_code == 400 and "private network" in str(private.data["webhook_url"])
    no_secret = api_client.post(
        "/api/v1/alert-rules/", {**body, "webhook_secret": ""}, format="json"
    )
    assert no_secret.status_code == 400 and "webhook_secret" in no_secret.data
    wrong_aid = api_client.post("/api/v1/alert-rules/", {**body, "kind": "offline"}, format="json")
    assert wrong_aid.status_code == 400 and "remediation" in wrong_aid.data
    viewer = MembershipFactory(organization=organization, role="viewer").user
    api_client.force_authenticate(viewer)
    assert api_client.post("/api/v1/alert-rules/", body, format="json").status_code == 403
    assert [r["id"] for r in api_client.get("/api/v1/alert-rules/").data["results"]] == [
        created.data["id"]
    ]


def test_alerts_are_listed_per_station_and_only_to_their_organization(api_client, host, charger):
    other_charger = ChargerFactory(station_id="CP-OTHER")
    for c in (charger, other_charger):
        rule = AlertRule.objects.create(organization=c.property.organization, kind="faulted")
        Alert.objects.create(
            rule=rule, charger=c, connector_id=1, kind="faulted", since=T0, opened_at=T0
        )
    api_client.force_authenticate(host)
    listed = api_client.get("/api/v1/alerts/", {"station_id": "CP-TEST-1"}).data["results"]
    assert [a["station_id"] for a in listed] == ["CP-TEST-1"]
    assert set(listed[0]) >= {
        "id",
        "kind",
        "station_id",
        "connector_id",
        "opened_at",
        "cleared_at",
        "remediation",
    }
    assert api_client.get("/api/v1/alerts/", {"station_id": "CP-OTHER"}).data["results"] == []
    foreign = Alert.objects.get(charger=other_charger)
    assert api_client.get(f"/api/v1/alerts/{foreign.pk}/").status_code == 404
    foreign_rule = foreign.rule
    assert api_client.get(f"/api/v1/alert-rules/{foreign_rule.pk}/").status_code == 404
    assert (
        api_client.patch(
            f"/api/v1/alert-rules/{foreign_rule.pk}/", {"after_s": 1}, format="json"
        ).status_code
        == 404
    )


def test_an_organizations_own_alerts_are_listed_to_it_only(api_client, host, charger):
    """An alert with no charger (a halted firmware campaign, an access point's feed) is the
    organization's: listed to its members with its subject, never to another organization."""
    other = ChargerFactory(station_id="CP-OTHER")
    for c, subject in ((charger, "firmware campaign 7"), (other, "firmware campaign 8")):
        rule = AlertRule.objects.create(
            organization=c.property.organization, kind=AlertRule.Kind.CAMPAIGN_HALTED
        )
        Alert.objects.create(
            rule=rule, subject=subject, kind="campaign_halted", since=T0, opened_at=T0
        )
    api_client.force_authenticate(host)
    listed = api_client.get("/api/v1/alerts/", {"open": "true"}).data["results"]
    assert [(a["subject"], a["station_id"]) for a in listed] == [("firmware campaign 7", None)]
    foreign = Alert.objects.get(subject="firmware campaign 8")
    assert api_client.get(f"/api/v1/alerts/{foreign.pk}/").status_code == 404
    # Asked for a station, only that station's alerts.
    assert (
        api_client.get("/api/v1/alerts/", {"station_id": charger.station_id}).data["results"] == []
    )


def test_open_alerts_need_attention_on_the_dashboard_of_their_organization_only(
    client, host, charger
):
    rule = rule_for(charger)
    faulted(charger)
    Alert.objects.create(
        rule=rule,
        charger=charger,
        connector_id=1,
        kind="faulted",
        since=T0,
        opened_at=T0,
        mrec_code="CX002",
        remediation=[{"action": "Reset", "sent_at": T0.isoformat(), "result": "Accepted"}],
    )
    client.force_login(host)
    page = client.get("/").content.decode()
    assert 'data-alerts="faulted ' in page and "(CX002)" in page
    assert "Last first aid: Reset sent" in page and "answer: Accepted." in page
    assert "Port 1 uptime this month:" in page
    client.force_login(MembershipFactory().user)
    assert "data-alerts=" not in client.get("/").content.decode()


def test_the_assistant_gives_a_host_the_same_reliability_facts(host, charger):
    from support.assistant.diagnosis import Viewer, diagnose
    from support.assistant.topics import Topic

    rule_for(charger)
    faulted(charger)
    alerts.evaluate()
    diagnosis = diagnose(
        Topic.CHARGER_OFFLINE, viewer=Viewer.for_user(host), station_id="CP-TEST-1"
    )
    assert alerts.charger_facts(charger) == [
        f
        for f in diagnosis.facts
        if f.startswith(("Alert open", "Fault code open", "Last first aid", "Port 1 uptime"))
    ]
    assert any(f.startswith("Alert open: Port faulted on port 1 (CX002)") for f in diagnosis.facts)
    assert any(f.startswith("Port 1 uptime this month:") for f in diagnosis.facts)


def test_webhook_tries_are_counted_by_outcome_for_the_metrics(charger, receiver):
    from prometheus_client import REGISTRY

    def tries(outcome: str) -> float:
        labels = {"kind": "webhook", "outcome": outcome}
        return REGISTRY.get_sample_value("evportal_outbound_deliveries_total", labels) or 0.0

    failed, sent = tries("failed"), tries("sent")
    receiver.answers = [500, 204]
    rule_for(charger, webhook_url=receiver.url, webhook_secret="s")
    faulted(charger)
    alerts.evaluate()
    alerts.deliveries_send()
    assert (tries("failed"), tries("sent")) == (failed + 1, sent)
    alerts.deliveries_send(now=timezone.now() + timedelta(seconds=31))
    assert (tries("failed"), tries("sent")) == (failed + 1, sent + 1)
