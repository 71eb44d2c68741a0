"""Alerts (docs/reliability.md, "Alerts"): the problems seen now, read from the timeline and
what chargers records; alerts opened and cleared by the pure rules of reliability.alerting;
their events delivered by email and signed webhook, retried with back-off."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta, tzinfo

from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.db.models import Max, Q
from django.utils import timezone

from backoffice import metrics, outbound
from backoffice.formatting import zone_or_utc
from chargers.models import (
    Charger,
    ChargerCertificate,
    ChargingSession,
    MeterValue,
    OcppMessage,
    TransactionEvent,
)

from .. import alerting, outages
from ..models import Alert, AlertDelivery, AlertRule, Exclusion, PortEvent
from . import recipients, uptime

logger = logging.getLogger(__name__)

Kind = AlertRule.Kind
WEBHOOK_TIMEOUT_S = 10
# How long one try holds its delivery (a process killed mid-send leaves it for this long).
SEND_CLAIM = timedelta(minutes=5)
# The first aid each kind may have (docs/reliability.md, "First aid"); "none" is the default.
REMEDIES_BY_KIND = {
    Kind.FAULTED: ("none", "soft_reset", "trigger_status"),
    Kind.STUCK_SESSION: ("none", "stop_stuck"),
}
# Kinds another app reports when it sees the problem and resolves when it is gone
# (`problem_report`, `problem_resolved`): the evaluation leaves their alerts alone.
PUSHED_KINDS = {Kind.POWER_REFUSED, Kind.ACCESS_POINT_BEHIND, Kind.CAMPAIGN_HALTED}
# Kinds read from each port's outages this month (the uptime rules, exclusions applied).
_FROM_OUTAGES = {Kind.FAULTED: outages.FAULTED, Kind.FAILED_START: outages.FAILED_START}


def month_start(now: datetime, zone: tzinfo | None = None) -> datetime:
    """The first moment of `now`'s month in `zone` (None: the current zone)."""
    local = now.astimezone(zone) if zone is not None else timezone.localtime(now)
    return local.replace(day=1, hour=0, minute=0, second=0, microsecond=0, fold=0)


def charger_month_start(charger: Charger, now: datetime) -> datetime:
    """The first moment of this month at the charger's location (its own zone; UTC without
    one): "this month" of an alert is the host's month, not UTC's, which began up to a day
    earlier or later (at 16:00 on the last day of the month in California)."""
    prop = charger.property
    return month_start(now, zone_or_utc(prop.timezone if prop is not None else ""))


# -- the problems seen now ------------------------------------------------------------------------


def _excluded_now(charger: Charger, connector_id: int | None, now: datetime) -> bool:
    ports = (
        Q(connector_id__isnull=True) | Q(connector_id=connector_id)
        if connector_id
        else Q(connector_id__isnull=True)
    )
    return Exclusion.objects.filter(
        ports, charger=charger, withdrawn_at__isnull=True, start__lte=now, end__gt=now
    ).exists()


def offline_problem(charger: Charger, now: datetime) -> alerting.Problem | None:
    """Offline since the timeline's last connection change, if that was a loss (the charger's
    connection changes are brought up to date first)."""
    last = (
        PortEvent.objects.filter(
            charger=charger, kind__in=[PortEvent.Kind.OFFLINE, PortEvent.Kind.ONLINE]
        )
        .order_by("-at", "-id")
        .first()
    )
    if last is None or last.kind != PortEvent.Kind.OFFLINE or _excluded_now(charger, None, now):
        return None
    return alerting.Problem(Kind.OFFLINE, charger.pk, 0, last.at, details="Connection lost")


def outage_problems(ports: Iterable[uptime.PortUptime], now: datetime) -> list[alerting.Problem]:
    """Faulted and failed-start outages still running now and not excluded."""
    from ..faults import table as fault_table

    table = fault_table()
    causes = {cause: kind for kind, cause in _FROM_OUTAGES.items()}
    problems = []
    for port in ports:
        running = [o for o in port.uptime.outages if o.end >= now]  # cut at now: still running
        if not running or running[-1].excluded or running[-1].cause not in causes:
            continue
        outage = running[-1]
        code = table.code(outage.error_code, outage.vendor_code, port.charger.vendor)
        problems.append(
            alerting.Problem(
                causes[outage.cause],
                port.charger.pk,
                port.connector_id,
                outage.start,
                mrec_code=code,
                details=" ".join(c for c in (outage.error_code, outage.vendor_code) if c)[:300],
            )
        )
    return problems


def uptime_problems(
    ports: Iterable[uptime.PortUptime], threshold: float, now: datetime
) -> list[alerting.Problem]:
    return [
        alerting.Problem(
            Kind.UPTIME_BELOW,
            port.charger.pk,
            port.connector_id,
            charger_month_start(port.charger, now),
            details=f"{port.uptime.percent:.2f} % this month",
        )
        for port in ports
        if port.uptime.percent < threshold
    ]


def last_activity(session: ChargingSession) -> datetime:
    """The session's start, its last meter value or its last transaction event (2.0.1)."""
    meter = MeterValue.objects.filter(session=session).aggregate(at=Max("timestamp"))["at"]
    event = TransactionEvent.objects.filter(session=session).aggregate(at=Max("timestamp"))["at"]
    return max(t for t in (session.started_at, meter, event) if t is not None)


def stuck_problems(charger: Charger, now: datetime) -> list[alerting.Problem]:
    """Open sessions, each stuck since its last sign of life (the rule's after_s decides)."""
    problems = []
    for session in ChargingSession.objects.filter(charger=charger, stopped_at__isnull=True):
        problems.append(
            alerting.Problem(
                Kind.STUCK_SESSION,
                charger.pk,
                session.connector_id,
                last_activity(session),
                details=f"session {session.pk}",
            )
        )
    return problems


def reboot_problem(
    charger: Charger, window_s: int, boots: int, now: datetime
) -> alerting.Problem | None:
    """At least `boots` BootNotifications within `window_s`; the loop began at the first boot
    of the run of boots each less than `window_s` after the one before."""
    window = timedelta(seconds=window_s)
    times = list(
        OcppMessage.objects.filter(
            charger=charger,
            action="BootNotification",
            message_type=OcppMessage.MessageType.CALL,
            timestamp__gte=now - window * boots,
        )
        .order_by("-timestamp")
        .values_list("timestamp", flat=True)[:500]
    )
    recent = [t for t in times if t >= now - window]
    if len(recent) < boots:
        return None
    start = times[0]
    for earlier in times[1:]:
        if start - earlier > window:
            break
        start = earlier
    return alerting.Problem(
        Kind.REBOOT_LOOP, charger.pk, 0, start, details=f"{len(recent)} boots in {window_s} s"
    )


def certificate_problem(charger: Charger, before_s: int, now: datetime) -> alerting.Problem | None:
    """The charger's newest certificate of a type (its client certificate, its ISO 15118 V2G
    certificate; not revoked) expires within `before_s`: the one that expires first."""
    newest: dict[str, ChargerCertificate] = {}
    for row in ChargerCertificate.objects.filter(charger=charger, revoked_at__isnull=True):
        if (
            row.certificate_type not in newest
            or row.not_after > newest[row.certificate_type].not_after
        ):
            newest[row.certificate_type] = row
    certificate = min(newest.values(), key=lambda c: c.not_after, default=None)
    if certificate is None or certificate.not_after - now > timedelta(seconds=before_s):
        return None
    return alerting.Problem(
        Kind.CERTIFICATE_EXPIRING,
        charger.pk,
        0,
        certificate.not_after - timedelta(seconds=before_s),
        details=f"{'V2G ' if certificate.certificate_type == 'V2GCertificate' else ''}"
        f"certificate {certificate.serial_number[:20]} expires "
        f"{certificate.not_after:%Y-%m-%d %H:%M} UTC",
    )


def _problems_for_rule(
    rule: AlertRule, chargers: list[Charger], ports: list[uptime.PortUptime], now: datetime
) -> list[alerting.Problem]:
    found: list[alerting.Problem | None] = []
    if rule.kind == Kind.OFFLINE:
        found = [offline_problem(c, now) for c in chargers]
    elif rule.kind in _FROM_OUTAGES:
        return outage_problems(ports, now)
    elif rule.kind == Kind.UPTIME_BELOW:
        threshold = rule.threshold or alerting.DEFAULT_UPTIME_PERCENT
        return uptime_problems(ports, threshold, now)
    elif rule.kind == Kind.STUCK_SESSION:
        return [p for c in chargers for p in stuck_problems(c, now)]
    elif rule.kind == Kind.REBOOT_LOOP:
        boots = int(rule.threshold or alerting.DEFAULT_REBOOTS)
        found = [reboot_problem(c, rule.after_s, boots, now) for c in chargers]
    elif rule.kind == Kind.CERTIFICATE_EXPIRING:
        found = [certificate_problem(c, rule.after_s, now) for c in chargers]
    return [p for p in found if p is not None]


# -- opening and clearing -------------------------------------------------------------------------


def alert_json(alert: Alert) -> dict:
    return {
        "id": alert.pk,
        "kind": alert.kind,
        "station_id": alert.charger.station_id if alert.charger is not None else None,
        "subject": alert.subject or None,
        "connector_id": alert.connector_id or None,
        "since": alert.since.isoformat(),
        "opened_at": alert.opened_at.isoformat(),
        "cleared_at": alert.cleared_at.isoformat() if alert.cleared_at else None,
        "duration_s": alert.duration_s,
        "mrec_code": alert.mrec_code or None,
        "details": alert.details,
        "remediation": alert.remediation,
    }


def _deliveries_queue(alert: Alert, event: str, now: datetime) -> None:
    rule = alert.rule
    rows = []
    # One message per confirmed address (issue 47 item 6): nobody gets alerts they did not agree
    # to, and nobody sees who else gets them.
    for email in recipients.confirmed_emails(rule):
        rows.append(
            AlertDelivery(
                alert=alert,
                event=event,
                channel=AlertDelivery.Channel.EMAIL,
                target=email,
                next_try_at=now,
            )
        )
    if rule.webhook_url:
        rows.append(
            AlertDelivery(
                alert=alert,
                event=event,
                channel=AlertDelivery.Channel.WEBHOOK,
                target=rule.webhook_url,
                next_try_at=now,
            )
        )
    AlertDelivery.objects.bulk_create(rows)


def alert_open(rule: AlertRule, problem: alerting.Problem, now: datetime) -> Alert | None:
    """Open the alert of this problem; None if one is open already (another run was first)."""
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                rule=rule,
                charger_id=problem.charger_id,
                connector_id=problem.connector_id,
                kind=problem.kind,
                since=problem.since,
                opened_at=now,
                mrec_code=problem.mrec_code,
                details=problem.details[:300],
            )
            _deliveries_queue(alert, "opened", now)
    except IntegrityError:
        return None
    return alert


def alert_clear(alert_id: int, now: datetime) -> Alert | None:
    with transaction.atomic():
        updated = Alert.objects.filter(pk=alert_id, cleared_at__isnull=True).update(cleared_at=now)
        if not updated:
            return None
        alert = Alert.objects.select_related("rule", "charger").get(pk=alert_id)
        _deliveries_queue(alert, "cleared", now)
    return alert


def problem_report(
    *, kind: str, charger_id: int, connector_id: int, details: str, now: datetime | None = None
) -> list[Alert]:
    """Open an alert of a pushed kind (PUSHED_KINDS) under every enabled rule of that kind of the
    charger's organization, unless one is open; return the alerts opened."""
    now = now or timezone.now()
    rules = AlertRule.objects.filter(
        kind=kind, enabled=True, organization__properties__chargers=charger_id
    ).select_related("organization")
    problem = alerting.Problem(kind, charger_id, connector_id, now, details=details[:300])
    opened = [alert_open(rule, problem, now) for rule in rules]
    return [alert for alert in opened if alert is not None]


def problem_resolved(
    *, kind: str, charger_id: int, connector_id: int, now: datetime | None = None
) -> int:
    """Clear the open alerts of a pushed kind for this port; return how many cleared."""
    now = now or timezone.now()
    open_ids = Alert.objects.filter(
        kind=kind, charger_id=charger_id, connector_id=connector_id, cleared_at__isnull=True
    ).values_list("pk", flat=True)
    return sum(1 for alert_id in list(open_ids) if alert_clear(alert_id, now) is not None)


def subject_problem_report(
    *,
    kind: str,
    organization_id: int,
    subject: str,
    since: datetime,
    details: str,
    now: datetime | None = None,
) -> list[Alert]:
    """Open an alert of a pushed kind about something of the organization's that is no charger
    (`subject`, e.g. "access point NL") under each of its enabled rules of that kind, unless one
    is open; delivered like every alert. Return the alerts opened."""
    now = now or timezone.now()
    opened = []
    for rule in AlertRule.objects.filter(kind=kind, enabled=True, organization_id=organization_id):
        try:
            with transaction.atomic():
                alert = Alert.objects.create(
                    rule=rule,
                    subject=subject[:40],
                    kind=kind,
                    since=since,
                    opened_at=now,
                    details=details[:300],
                )
                _deliveries_queue(alert, "opened", now)
        except IntegrityError:  # open already (another run was first)
            continue
        opened.append(alert)
    return opened


def subject_problem_resolved(
    *, kind: str, organization_id: int, subject: str, now: datetime | None = None
) -> int:
    """Clear the open alerts of a pushed kind about this subject; return how many cleared."""
    now = now or timezone.now()
    open_ids = Alert.objects.filter(
        kind=kind,
        rule__organization_id=organization_id,
        charger__isnull=True,
        subject=subject[:40],
        cleared_at__isnull=True,
    ).values_list("pk", flat=True)
    return sum(1 for alert_id in list(open_ids) if alert_clear(alert_id, now) is not None)


def _org_chargers(organization_id: int) -> list[Charger]:
    return list(
        Charger.objects.filter(property__organization_id=organization_id)
        .select_related("property")
        .order_by("pk")
    )


def _org_ports(
    rules: list[AlertRule], chargers: list[Charger], now: datetime
) -> list[uptime.PortUptime]:
    """Each port's month so far, when a rule needs it (faulted, failed start, uptime)."""
    if not any(r.kind in _FROM_OUTAGES or r.kind == Kind.UPTIME_BELOW for r in rules):
        return []
    return [
        p for c in chargers for p in uptime.charger_uptime(c, charger_month_start(c, now), now, now)
    ]


def evaluate(now: datetime | None = None) -> list[Alert]:
    """Open and clear every enabled rule's alerts; return the alerts opened or still open (the
    first aid works on those)."""
    now = now or timezone.now()
    rules = list(
        AlertRule.objects.filter(enabled=True)
        .exclude(kind__in=PUSHED_KINDS)
        .order_by("organization_id", "id")
    )
    by_org: dict[int, list[AlertRule]] = {}
    for rule in rules:
        by_org.setdefault(rule.organization_id, []).append(rule)
    for organization_id, org_rules in by_org.items():
        chargers = _org_chargers(organization_id)
        from .timeline import links_sync

        links_sync(chargers, now)
        ports = _org_ports(org_rules, chargers, now)
        for rule in org_rules:
            _evaluate_rule(rule, chargers, ports, now)
    return list(
        Alert.objects.filter(cleared_at__isnull=True, rule__enabled=True).select_related(
            "rule", "charger"
        )
    )


def _evaluate_rule(
    rule: AlertRule, chargers: list[Charger], ports: list[uptime.PortUptime], now: datetime
) -> None:
    problems = _problems_for_rule(rule, chargers, ports, now)
    open_alerts = [
        alerting.OpenAlert(a.pk, a.charger_id, a.connector_id, a.since)
        for a in Alert.objects.filter(rule=rule, cleared_at__isnull=True)
        if a.charger_id is not None
    ]
    change = alerting.changes(rule.kind, rule.after_s, problems, open_alerts, now)
    for alert_id in change.clear:
        alert_clear(alert_id, now)
    for problem in change.open:
        alert_open(rule, problem, now)


# -- delivery -------------------------------------------------------------------------------------


def _claim(delivery: AlertDelivery, now: datetime) -> bool:
    """Take this delivery for one try (another process running the same task skips it). Held
    from the moment it is taken, not from the sweep's start, and for longer than a slow mail
    server takes: the beat starts the next sweep while a slow one still sends, and a claim
    already past would let it send the same message again."""
    held_from = max(now, timezone.now())
    return bool(
        AlertDelivery.objects.filter(
            pk=delivery.pk, status=AlertDelivery.Status.PENDING, next_try_at=delivery.next_try_at
        ).update(next_try_at=held_from + SEND_CLAIM)
    )


def webhook_send(delivery: AlertDelivery) -> int:
    """POST the event, signed; return the HTTP status. Through the one outbound guard."""
    alert = delivery.alert
    raw = alerting.body({"event": delivery.event, "alert": alert_json(alert)})
    headers = {
        "Content-Type": "application/json",
        "X-Signature": alerting.signature(alert.rule.webhook_secret, raw),
        "X-Alert-Event": delivery.event,
    }
    with outbound.http_client(timeout=WEBHOOK_TIMEOUT_S) as client:
        response = client.post(delivery.target, content=raw, headers=headers)
    return response.status_code


def email_send(delivery: AlertDelivery) -> None:
    alert = delivery.alert
    port = f" port {alert.connector_id}" if alert.connector_id else ""
    state = "cleared" if delivery.event == "cleared" else "opened"
    what = alert.charger.station_id if alert.charger is not None else alert.subject
    subject = f"{alert.get_kind_display()}: {what}{port} ({state})"
    lines = [
        f"{alert.get_kind_display()} on {what}{port}.",
        f"Since: {alert.since:%Y-%m-%d %H:%M:%S} UTC",
    ]
    if alert.cleared_at:
        lines.append(
            f"Cleared: {alert.cleared_at:%Y-%m-%d %H:%M:%S} UTC after {alert.duration_s:.0f} s"
        )
    if alert.mrec_code:
        lines.append(f"ChargeX MREC code: {alert.mrec_code}")
    if alert.details:
        lines.append(alert.details)
    # Deliveries queued before one row per address held "a, b": each still goes alone, and only
    # to an address confirmed now.
    for email in (part.strip() for part in delivery.target.split(",")):
        if email and recipients.is_confirmed(alert.rule.organization_id, email):
            send_mail(subject, "\n".join(lines), None, [email])


def delivery_try(delivery: AlertDelivery, now: datetime) -> None:
    delivery.attempts += 1
    try:
        if delivery.channel == AlertDelivery.Channel.WEBHOOK:
            delivery.response_status = webhook_send(delivery)
            ok = 200 <= delivery.response_status < 300
            error = "" if ok else f"The receiver answered HTTP {delivery.response_status}."
        else:
            email_send(delivery)
            ok, error = True, ""
    except Exception as exc:  # any failure is retried; the log keeps plain words
        logger.info("Alert delivery %s failed", delivery.pk, exc_info=True)
        who = (
            "the alert receiver"
            if delivery.channel == AlertDelivery.Channel.WEBHOOK
            else "the mail server"
        )
        ok, error = False, outbound.failure_words(exc, who)
    metrics.delivery(
        "webhook" if delivery.channel == AlertDelivery.Channel.WEBHOOK else "email", ok=ok
    )
    if ok:
        delivery.status, delivery.sent_at, delivery.last_error = AlertDelivery.Status.SENT, now, ""
    else:
        delivery.last_error = error[:300]
        if delivery.attempts >= alerting.MAX_ATTEMPTS:
            delivery.status = AlertDelivery.Status.FAILED
        delivery.next_try_at = now + timedelta(seconds=alerting.retry_delay_s(delivery.attempts))
    delivery.save(
        update_fields=[
            "attempts",
            "response_status",
            "status",
            "sent_at",
            "last_error",
            "next_try_at",
        ]
    )


def deliveries_send(now: datetime | None = None, limit: int = 100) -> int:
    """Send the deliveries that are due, oldest first; return how many were tried."""
    now = now or timezone.now()
    due = list(
        AlertDelivery.objects.filter(status=AlertDelivery.Status.PENDING, next_try_at__lte=now)
        .select_related("alert__rule", "alert__charger")
        .order_by("next_try_at", "id")[:limit]
    )
    tried = 0
    for delivery in due:
        if _claim(delivery, now):
            delivery_try(delivery, now)
            tried += 1
    return tried


# -- what the dashboard and the assistant show ----------------------------------------------------


def open_alerts_for(organization_ids: list[int] | None, limit: int = 50) -> list[Alert]:
    """The open alerts of these organizations' chargers (None: all), newest problem first."""
    # A charger's alerts: an organization's own (an access point's feed) are shown by the app
    # that reports them (roaming's Needs attention rows).
    queryset = Alert.objects.filter(
        cleared_at__isnull=True, rule__enabled=True, charger__isnull=False
    )
    if organization_ids is not None:
        queryset = queryset.filter(charger__property__organization_id__in=organization_ids)
    return list(queryset.select_related("charger__property").order_by("-since", "-id")[:limit])


def dashboard_figures(
    *,
    user: object,
    organization_ids: list[int] | None,
    today: datetime,
    since: datetime,
    now: datetime,
) -> dict:
    """The dashboard's "Needs attention": one row per charger with open alerts, with the same
    facts the support assistant gives (charger_facts)."""
    by_charger: dict[int, list[Alert]] = {}
    chargers: dict[int, Charger] = {}
    for alert in open_alerts_for(organization_ids):
        if alert.charger is None:  # excluded by the query; the column is nullable
            continue
        chargers[alert.charger.pk] = alert.charger
        by_charger.setdefault(alert.charger.pk, []).append(alert)
    rows = [
        {
            "charger": chargers[charger_id],
            "alerts": found,
            "facts": charger_facts(chargers[charger_id], now),
        }
        for charger_id, found in list(by_charger.items())[:10]
    ]
    return {"alert_rows": rows}


def charger_facts(charger: Charger, now: datetime | None = None) -> list[str]:
    """What the dashboard and the support assistant both say of a charger's reliability: its
    open alerts, the last first aid and each port's uptime this month."""
    from backoffice.formatting import datetime_text
    from backoffice.templatetags.when import zone_of

    now = now or timezone.now()
    zone = zone_of(charger)
    facts = []
    for alert in Alert.objects.filter(
        charger=charger, cleared_at__isnull=True, rule__enabled=True
    ).order_by("since", "id"):
        where = f" on port {alert.connector_id}" if alert.connector_id else ""
        code = f" ({alert.mrec_code})" if alert.mrec_code else ""
        facts.append(
            f"Alert open: {alert.get_kind_display()}{where}{code} since "
            f"{datetime_text(alert.since, zone)}."
        )
    facts.extend(fault_facts(charger))
    steps = [
        step
        for remediation in Alert.objects.filter(charger=charger)
        .exclude(remediation=[])
        .order_by("-opened_at")
        .values_list("remediation", flat=True)[:5]
        for step in remediation
    ]
    if steps:
        last = max(steps, key=lambda s: s.get("sent_at", ""))
        sent = datetime.fromisoformat(last["sent_at"])
        facts.append(
            f"Last first aid: {last['action']} sent {datetime_text(sent, zone)}, "
            f"answer: {last['result']}" + ("" if last["result"].endswith(".") else ".")
        )
    this_month = charger_month_start(charger, now)
    for port in uptime.charger_uptime(charger, this_month, now, now):
        below = (
            f" (below the {uptime.TARGET_PERCENT:.0f} % target)"
            if port.uptime.percent < uptime.TARGET_PERCENT
            else ""
        )
        facts.append(
            f"Port {port.connector_id} uptime this month: {port.uptime.percent:.2f} %{below}."
        )
    facts.extend(success_facts(charger, this_month, now))
    return facts


def success_facts(charger: Charger, start: datetime, now: datetime) -> list[str]:
    """Each port's ChargeX success KPIs this month, in words (docs/reliability.md)."""
    from .. import kpi_selectors

    board = kpi_selectors.board([charger], start, now, now)
    facts = []
    for (_, connector), tally in sorted(board.ports.items()):
        k = tally.as_json()
        if not k["charge_attempts"]:
            continue
        where = f"Port {connector}" if connector else "Authorizes naming no port"
        sentence = (
            f"{where} this month: {k['completions']} of {k['charge_attempts']} charge attempts "
            f"completed (session success {k['session_success_percent']:.2f} %, charge start "
            f"success {k['charge_start_success_percent']:.2f} %"
        )
        if k["charge_end_success_percent"] is not None:
            sentence += f", charge end success {k['charge_end_success_percent']:.2f} %"
        sentence += ")"
        if k["orphan_authorizes"] or k["orphan_remote_starts"]:
            sentence += (
                f"; {k['orphan_authorizes']} Authorize(s) and {k['orphan_remote_starts']} remote "
                "start(s) never started a transaction"
            )
        if k["start_time_samples"]:
            sentence += f"; median start time {k['start_time_p50_s']} s"
        if k["first_attempt_success_percent"] is not None:
            sentence += (
                f"; first-attempt success {k['first_attempt_success_percent']:.2f} % of "
                f"{k['visits']} visits"
            )
        facts.append(sentence + ".")
    return facts


def fault_facts(charger: Charger) -> list[str]:
    """Each fault code open on a port, in words: name, who may cause it, class and source."""
    from ..faults import port_faults

    facts = []
    for port, found in sorted(port_faults(charger).items()):
        where = f"port {port}" if port else "the whole charger"
        for f in found:
            secondary = (
                " (a secondary source)"
                if f["secondary_source"] and "secondary" not in f["source"]
                else ""
            )
            facts.append(
                f"Fault code open on {where}: {f['label']} (ChargeX MREC), may be caused by: "
                f"{f['responsible'] or 'not recorded'}; class: {f['class'] or 'not recorded'}; "
                f"{f['source_words']}{secondary}."
            )
    return facts
