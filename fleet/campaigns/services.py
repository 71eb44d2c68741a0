"""Firmware campaigns: create, start, pause, resume, halt; each step observes the sent updates,
asks the pure staging rules what comes next and claims the targets to send (docs/firmware.md).

The CALLs themselves go out after the step's commit (fleet.dispatch), never inside it.
"""

from __future__ import annotations

import logging
import zoneinfo
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from backoffice.models import Organization
from chargers.models import (
    Charger,
    ChargerOperation,
    ChargerOperationStatus,
    ChargingSession,
    Command,
)
from fleet.models import Campaign, CampaignTarget, FirmwareRelease, MaintenanceWindow, TargetEvent
from reliability.models import AlertRule
from reliability.services import subject_problem_report, timeline

from . import staging

logger = logging.getLogger(__name__)


class CampaignRefused(ValueError):
    """A campaign that cannot be made or changed as asked (words for the operator)."""


@dataclass(frozen=True)
class Selection:
    """Which chargers of the organization a campaign targets (all given filters apply)."""

    property_ids: tuple[int, ...] = ()
    vendor: str = ""
    model: str = ""
    current_version: str = ""
    charger_ids: tuple[int, ...] = ()


def targets_select(
    *, organization: Organization, release: FirmwareRelease, selection: Selection
) -> list[Charger]:
    """Return the organization's chargers the selection names, in rollout order. Raise
    CampaignRefused when it names a charger or property that is not the organization's, or a
    charger of another vendor/model than the release's."""
    chargers = Charger.objects.filter(property__organization=organization)
    if selection.charger_ids:
        found = set(chargers.filter(pk__in=selection.charger_ids).values_list("pk", flat=True))
        if found != set(selection.charger_ids):
            raise CampaignRefused("Some of the listed chargers do not exist.")
        chargers = chargers.filter(pk__in=selection.charger_ids)
    if selection.property_ids:
        own = set(
            organization.properties.filter(pk__in=selection.property_ids).values_list(
                "pk", flat=True
            )
        )
        if own != set(selection.property_ids):
            raise CampaignRefused("Some of the properties do not exist.")
        chargers = chargers.filter(property_id__in=selection.property_ids)
    if selection.vendor:
        chargers = chargers.filter(vendor=selection.vendor)
    if selection.model:
        chargers = chargers.filter(model=selection.model)
    if selection.current_version:
        chargers = chargers.filter(firmware_version=selection.current_version)
    selected = list(chargers.order_by("pk"))
    wrong = [
        c.station_id
        for c in selected
        if c.vendor != release.vendor or (release.model and c.model != release.model)
    ]
    if wrong and selection.charger_ids:
        raise CampaignRefused(
            f"Not a {release.vendor} {release.model or ''}: {', '.join(wrong[:5])}".strip()
        )
    return [c for c in selected if c.station_id not in wrong]


@transaction.atomic
def campaign_create(
    *,
    organization: Organization,
    name: str,
    release: FirmwareRelease,
    selection: Selection,
    canary_share: float = 0.1,
    wave_size: int = 10,
    success_threshold: float = 0.95,
    max_failures: int = 1,
    report_timeout_s: int = 3600,
    user: Any = None,
) -> Campaign:
    """Create a draft campaign of the release over the selected chargers."""
    if release.organization_id != organization.pk:
        raise CampaignRefused("The release does not exist.")
    if release.bad:
        raise CampaignRefused("The release is marked bad.")
    chargers = targets_select(organization=organization, release=release, selection=selection)
    if not chargers:
        raise CampaignRefused("No charger matches.")
    same = _same_draft(organization, name, release, [c.pk for c in chargers])
    if same is not None:
        return same
    campaign = Campaign.objects.create(
        organization=organization,
        name=name,
        release=release,
        canary_share=canary_share,
        wave_size=wave_size,
        success_threshold=success_threshold,
        max_failures=max_failures,
        report_timeout_s=report_timeout_s,
        created_by=user if getattr(user, "pk", None) else None,
    )
    CampaignTarget.objects.bulk_create(
        CampaignTarget(
            campaign=campaign, charger=c, position=i, previous_version=c.firmware_version
        )
        for i, c in enumerate(chargers)
    )
    return campaign


def _same_draft(
    organization: Organization, name: str, release: FirmwareRelease, charger_ids: list[int]
) -> Campaign | None:
    """The organization's draft of this name and release over these chargers, if there is one:
    "Create" sent twice (a double click, a resubmitted page) is that draft, not a second one
    that, started too, would send each charger a second UpdateFirmware. Under the
    organization's row lock, so two requests at once find each other."""
    list(
        Organization.objects.select_for_update(no_key=True)
        .filter(pk=organization.pk)
        .values_list("pk")
    )
    for draft in Campaign.objects.filter(
        organization=organization, name=name, release=release, status=Campaign.Status.DRAFT
    ):
        if sorted(draft.targets.values_list("charger_id", flat=True)) == sorted(charger_ids):
            return draft
    return None


# Which status each operator action moves a campaign from, and to.
TRANSITIONS = {
    "start": ({Campaign.Status.DRAFT}, Campaign.Status.RUNNING),
    "pause": ({Campaign.Status.RUNNING}, Campaign.Status.PAUSED),
    # A halted campaign stays halted (its failures would halt it again): start a new one.
    "resume": ({Campaign.Status.PAUSED, Campaign.Status.HELD}, Campaign.Status.RUNNING),
    "halt": (
        {
            Campaign.Status.DRAFT,
            Campaign.Status.RUNNING,
            Campaign.Status.PAUSED,
            Campaign.Status.HELD,
        },
        Campaign.Status.HALTED,
    ),
}


# A campaign in one of these still sends its pending targets (now or once resumed).
OPEN_CAMPAIGN = (Campaign.Status.RUNNING, Campaign.Status.PAUSED, Campaign.Status.HELD)


def _one_update_at_a_time(campaign: Campaign, action: str) -> None:
    """Refuse to run a campaign whose chargers still wait for, or are taking, another campaign's
    update: a charger takes one firmware update at a time (two UpdateFirmware in flight leave
    its vendor's installer, and both campaigns' verdicts, to chance). Called under the
    organization's row lock, so two campaigns started at once see each other."""
    mine = campaign.targets.filter(
        status__in=[CampaignTarget.Status.PENDING, CampaignTarget.Status.SENT]
    ).values("charger_id")
    other = (
        CampaignTarget.objects.filter(charger_id__in=mine)
        .exclude(campaign=campaign)
        .filter(
            Q(status=CampaignTarget.Status.SENT)
            | Q(status=CampaignTarget.Status.PENDING, campaign__status__in=OPEN_CAMPAIGN)
        )
        .select_related("campaign", "charger")
        .order_by("campaign_id", "charger__station_id")
    )
    first = other.first()
    if first is None:
        return
    shared = other.filter(campaign=first.campaign).count()
    chargers = first.charger.station_id + (
        f" and {shared - 1} other charger{'s' if shared > 2 else ''} are" if shared > 1 else " is"
    )
    raise CampaignRefused(
        f"{chargers} already in the {first.campaign.get_status_display().lower()} campaign "
        f"“{first.campaign.name}” (#{first.campaign.pk}): a charger takes one firmware "
        f"update at a time. Let that campaign finish or halt it, then {action} this one."
    )


def _organization_lock(campaign_id: int) -> None:
    """Lock the campaign's organization's row (before the campaign's, always in this order): a
    start, a resume and a step that sends see what the organization's other campaigns sent."""
    organization_id = Campaign.objects.values_list("organization_id", flat=True).get(pk=campaign_id)
    list(
        Organization.objects.select_for_update(no_key=True)
        .filter(pk=organization_id)
        .values_list("pk")
    )


@transaction.atomic
def campaign_transition(*, campaign_id: int, action: str, now: datetime | None = None) -> Campaign:
    """Start, pause, resume or halt a campaign (an operator's action). Raise CampaignRefused
    when the campaign is not in a status the action applies to, or when starting or resuming
    it would give a charger a second update while another campaign's is open."""
    now = now or timezone.now()
    _organization_lock(campaign_id)  # first: starts of its campaigns take turns
    campaign = Campaign.objects.select_for_update().select_related("release").get(pk=campaign_id)
    allowed, to = TRANSITIONS[action]
    if campaign.status not in allowed:
        raise CampaignRefused(
            f"A {campaign.get_status_display().lower()} campaign cannot {action}."
        )
    if to == Campaign.Status.RUNNING and campaign.release.bad:
        raise CampaignRefused("The release is marked bad.")
    if to == Campaign.Status.RUNNING:
        _one_update_at_a_time(campaign, action)
    campaign.status = to
    campaign.status_reason = "By the operator." if action in ("pause", "halt") else ""
    if action == "start":
        campaign.started_at = now
    campaign.save(update_fields=["status", "status_reason", "started_at"])
    return campaign


@transaction.atomic
def release_mark_bad(*, release_id: int, reason: str) -> int:
    """Mark a release bad: every campaign of it that still runs is held (nothing more is sent).
    Return how many campaigns were held."""
    FirmwareRelease.objects.filter(pk=release_id).update(bad=True, bad_reason=reason[:200])
    return Campaign.objects.filter(
        release_id=release_id, status__in=[Campaign.Status.RUNNING, Campaign.Status.PAUSED]
    ).update(status=Campaign.Status.HELD, status_reason=f"Release marked bad: {reason}"[:300])


def event_add(
    target: CampaignTarget, status: str, at: datetime, details: str = "", source: str = ""
) -> None:
    if source and TargetEvent.objects.filter(target=target, source=source).exists():
        return
    TargetEvent.objects.create(
        target=target, at=at, status=status[:40], details=details[:300], source=source
    )


# -- observing what was sent -----------------------------------------------------------------------


def _news(
    target: CampaignTarget, statuses: list[ChargerOperationStatus], known: set[tuple[int, str]]
) -> tuple[str, list[TargetEvent]]:
    """The operation's statuses not yet on the target's timeline, as events; and its latest
    status. Moves `last_report_at` to the newest notification."""
    latest, events = "", []
    for row in statuses:
        latest = row.status
        if row.source == ChargerOperationStatus.Source.NOTIFICATION:
            target.last_report_at = max(filter(None, [target.last_report_at, row.received_at]))
        source = f"status:{row.pk}"
        if (target.pk, source) not in known:
            events.append(
                TargetEvent(
                    target=target,
                    at=row.received_at,
                    status=row.status[:40],
                    details=row.get_source_display(),
                    source=source,
                )
            )
    return latest, events


def target_finish(target: CampaignTarget, status: str, reason: str, now: datetime) -> None:
    """Record a target's verdict; a failed install marks the charger down on the reliability
    timeline until a good one, which ends that outage."""
    target.status, target.reason, target.finished_at = status, reason[:300], now
    target.save(update_fields=["status", "reason", "finished_at", "last_report_at"])
    event_add(target, status, now, reason, source=f"verdict:{target.pk}")
    timeline.firmware_install_record(
        charger_id=target.charger_id,
        at=now,
        installed=status == staging.SUCCEEDED,
        info=f"Campaign {target.campaign_id}: {reason}",
        source=f"firmware:{target.pk}",
    )


def _observe(targets: list[CampaignTarget], version: str, now: datetime, timeout_s: int) -> None:
    """Bring the sent targets' timelines up to date and decide those that are decided: three
    reads for all of them, then a write per target whose verdict or last report changed."""
    by_operation: dict[int, list[ChargerOperationStatus]] = {}
    for row in (
        ChargerOperationStatus.objects.filter(
            operation_id__in=[t.operation_id for t in targets if t.operation_id]
        )
        .exclude(source=ChargerOperationStatus.Source.REQUEST)
        .order_by("received_at", "id")
    ):
        by_operation.setdefault(row.operation_id, []).append(row)
    known = set(
        TargetEvent.objects.filter(target__in=targets)
        .exclude(source="")
        .values_list("target_id", "source")
    )
    events: list[TargetEvent] = []
    decided: list[tuple[CampaignTarget, tuple[str, str]]] = []
    for target in targets:
        heard = target.last_report_at
        latest, news = _news(target, by_operation.get(target.operation_id or 0, []), known)
        events += news
        charger = target.charger
        assert target.sent_at is not None
        booted = charger.last_boot_at
        if booted and booted > target.sent_at:
            source = f"boot:{int(booted.timestamp())}"
            if (target.pk, source) not in known:
                events.append(
                    TargetEvent(
                        target=target,
                        at=booted,
                        status="Booted",
                        details=f"firmwareVersion {charger.firmware_version}"[:300],
                        source=source,
                    )
                )
        progress = staging.Progress(
            target_version=version,
            sent_at=target.sent_at,
            last_report_at=target.last_report_at,
            operation_status=latest,
            booted_at=booted,
            reported_version=charger.firmware_version,
        )
        verdict = staging.verdict(progress, timeout_s=timeout_s, now=now)
        if verdict is not None:
            decided.append((target, verdict))
        elif target.last_report_at != heard:
            target.save(update_fields=["last_report_at"])
    TargetEvent.objects.bulk_create(events, ignore_conflicts=True)
    for target, (status, reason) in decided:  # after its reports, so the timeline reads in order
        target_finish(target, status, reason, now)


# -- which targets may be sent now ----------------------------------------------------------------


WAIT_SESSION = "Waiting: a charging session is open"
WAIT_OFFLINE = "Waiting: the charger is offline"
WAIT_WINDOW = "Waiting for the maintenance window"
WAIT_OTHER_UPDATE = "Waiting: the charger is taking another campaign's update"


def _waits(targets: Iterable[CampaignTarget], now: datetime) -> dict[int, str]:
    """Each target and why it may not be sent now ("" it may): its charger online, with no
    session open, taking no other campaign's update, and inside its property's maintenance
    window. (Starts refuse campaigns over one charger, `_one_update_at_a_time`; campaigns that
    ran side by side before that check still send a charger one update at a time.)"""
    targets = list(targets)
    charger_ids = [t.charger_id for t in targets]
    busy = set(
        ChargingSession.objects.filter(
            charger_id__in=charger_ids, stopped_at__isnull=True
        ).values_list("charger_id", flat=True)
    )
    updating = {
        (charger_id, campaign_id)
        for charger_id, campaign_id in CampaignTarget.objects.filter(
            charger_id__in=charger_ids, status=CampaignTarget.Status.SENT
        ).values_list("charger_id", "campaign_id")
    }
    windows = {
        w.property_id: w
        for w in MaintenanceWindow.objects.filter(
            property__chargers__in=charger_ids
        ).select_related("property")
    }
    waits: dict[int, str] = {}
    for target in targets:
        charger = target.charger
        window = windows.get(charger.property_id or 0)
        if target.charger_id in busy:
            waits[target.pk] = WAIT_SESSION
        elif any(c == target.charger_id and k != target.campaign_id for c, k in updating):
            waits[target.pk] = WAIT_OTHER_UPDATE
        elif not charger.is_online(now):
            waits[target.pk] = WAIT_OFFLINE
        elif window is not None and not _in_window(window, now):
            waits[target.pk] = f"{WAIT_WINDOW} ({window.start:%H:%M}–{window.end:%H:%M})"
        else:
            waits[target.pk] = ""
    return waits


def maintenance_window_set(*, property_id: int, start: time | None, end: time | None) -> None:
    """Set the location's maintenance window (local time; end before start crosses midnight), or
    remove it (None, None): then firmware may be installed at any time."""
    if start is None or end is None:
        MaintenanceWindow.objects.filter(property_id=property_id).delete()
        return
    MaintenanceWindow.objects.update_or_create(
        property_id=property_id, defaults={"start": start, "end": end}
    )


def _in_window(window: MaintenanceWindow, now: datetime) -> bool:
    local = now.astimezone(zoneinfo.ZoneInfo(window.property.timezone)).time()
    return staging.in_window(window.start, window.end, local)


def _waits_note(waits: dict[int, str]) -> None:
    """Say on each pending target why it waits (the campaign's page shows it), writing only the
    ones whose reason changed."""
    by_reason: dict[str, list[int]] = {}
    for target_id, reason in waits.items():
        by_reason.setdefault(reason, []).append(target_id)
    for reason, ids in by_reason.items():
        CampaignTarget.objects.filter(pk__in=ids, status=CampaignTarget.Status.PENDING).exclude(
            reason=reason
        ).update(reason=reason)


def charger_busy(charger_id: int) -> bool:
    """Whether a session is open on the charger (checked again right before a CALL goes out)."""
    return ChargingSession.objects.filter(charger_id=charger_id, stopped_at__isnull=True).exists()


# -- one step ---------------------------------------------------------------------------------------

# A claimed target whose charger got no update command this long after the claim: the dispatch
# never ran (its worker killed after the step committed) or failed before sending.
NOT_SENT_AFTER = timedelta(minutes=10)
UPDATE_ACTIONS = ("UpdateFirmware", "SignedUpdateFirmware")


def _claims_never_sent(sent: list[CampaignTarget], now: datetime) -> list[CampaignTarget]:
    """Put back to pending the sent targets whose update never went out; return them. Not
    failed for "no report" an hour later: the charger was never asked."""
    old = [t for t in sent if t.sent_at is not None and t.sent_at <= now - NOT_SENT_AFTER]
    if not old:
        return []
    last_asked: dict[int, datetime] = {}
    for charger_id, created_at in Command.objects.filter(
        charger_id__in={t.charger_id for t in old},
        source="fleet",
        action__in=UPDATE_ACTIONS,
        created_at__gte=min(t.sent_at for t in old if t.sent_at is not None),
    ).values_list("charger_id", "created_at"):
        last_asked[charger_id] = max(created_at, last_asked.get(charger_id, created_at))
    never = [
        t
        for t in old
        if t.operation_id is None
        and t.sent_at is not None
        and last_asked.get(t.charger_id, t.sent_at - NOT_SENT_AFTER) < t.sent_at
    ]
    for target in never:
        target.status, target.sent_at = CampaignTarget.Status.PENDING, None
        target.reason = "Not sent: the step was interrupted before the update went out."
        target.save(update_fields=["status", "sent_at", "reason"])
        event_add(
            target,
            "Not sent",
            now,
            "The step that took it was interrupted before UpdateFirmware went out: it goes again.",
        )
    return never


def _stop(campaign: Campaign, status: str, reason: str, now: datetime) -> None:
    campaign.status, campaign.status_reason = status, reason[:300]
    if status in (Campaign.Status.HALTED, Campaign.Status.COMPLETED):
        campaign.finished_at = now
    campaign.save(update_fields=["status", "status_reason", "finished_at"])
    if status == Campaign.Status.HALTED:
        logger.warning("Firmware campaign %s halted: %s", campaign.pk, reason)
        subject_problem_report(
            kind=AlertRule.Kind.CAMPAIGN_HALTED,
            organization_id=campaign.organization_id,
            subject=f"firmware campaign {campaign.pk}",
            since=now,
            details=f"{campaign.name}: {reason}",
            now=now,
        )


@transaction.atomic
def campaign_step(*, campaign_id: int, now: datetime | None = None) -> list[int]:
    """Observe the campaign's sent updates, decide what comes next and claim the targets to
    send (marked sent now). Return their ids, for fleet.dispatch after the commit."""
    now = now or timezone.now()
    _organization_lock(campaign_id)  # steps of one organization's campaigns see each other's sends
    campaign = Campaign.objects.select_for_update().select_related("release").get(pk=campaign_id)
    if campaign.status not in (
        Campaign.Status.RUNNING,
        Campaign.Status.PAUSED,
        Campaign.Status.HELD,
        Campaign.Status.HALTED,
    ):
        return []
    targets = list(campaign.targets.select_related("charger"))
    sent = [t for t in targets if t.status == CampaignTarget.Status.SENT]
    if sent:
        again = _claims_never_sent(sent, now)
        sent = [t for t in sent if t not in again]
    if sent:
        _observe(sent, campaign.release.version, now, campaign.report_timeout_s)
    if campaign.status != Campaign.Status.RUNNING:
        return []  # paused, held or halted: what was sent is still followed, nothing more goes
    pending = [t for t in targets if t.status == CampaignTarget.Status.PENDING]
    waits = _waits(pending, now)
    _waits_note(waits)
    ready = {target_id for target_id, reason in waits.items() if not reason}
    decision = staging.decide(
        staging.Rules(
            campaign.canary_share,
            campaign.wave_size,
            campaign.success_threshold,
            campaign.max_failures,
        ),
        [staging.Target(t.pk, t.position, t.status, t.pk in ready) for t in targets],
        release_bad=campaign.release.bad,
    )
    if decision.verdict == staging.HALT:
        _stop(campaign, Campaign.Status.HALTED, decision.reason, now)
    elif decision.verdict == staging.HOLD:
        _stop(campaign, Campaign.Status.HELD, decision.reason, now)
    elif decision.verdict == staging.COMPLETE:
        _stop(campaign, Campaign.Status.COMPLETED, "", now)
    if decision.verdict != staging.DISPATCH:
        return []
    claimed = list(decision.send)
    CampaignTarget.objects.filter(pk__in=claimed, status=CampaignTarget.Status.PENDING).update(
        status=CampaignTarget.Status.SENT, sent_at=now, reason=""
    )
    return claimed


def campaigns_due() -> list[int]:
    """The campaigns a step has work for: running, or with updates still being followed."""
    return list(
        Campaign.objects.filter(
            Q(status=Campaign.Status.RUNNING) | Q(targets__status=CampaignTarget.Status.SENT)
        )
        .distinct()
        .order_by("pk")
        .values_list("pk", flat=True)
    )


# -- what a dispatch records ---------------------------------------------------------------------


@transaction.atomic
def target_sent(
    *,
    target_id: int,
    method: str,
    request_id: int | None,
    command_id: int,
    answer: str,
    now: datetime | None = None,
) -> None:
    """The charger took the update (the command's answer): follow its firmware operation."""
    now = now or timezone.now()
    target = CampaignTarget.objects.get(pk=target_id)
    target.method, target.request_id = method, request_id
    target.operation = ChargerOperation.objects.filter(command_id=command_id).first()
    target.save(update_fields=["method", "request_id", "operation"])
    # At the claim, before the answer: the timeline reads in order (sent, answered, ...).
    event_add(
        target,
        "Sent",
        target.sent_at or now,
        f"{method}: {answer or 'answered'}",
        source=f"command:{command_id}",
    )


@transaction.atomic
def target_unsent(
    *, target_id: int, reason: str, failed: bool, now: datetime | None = None
) -> None:
    """The update did not go out: back to pending (offline, a session began) or failed (refused)."""
    now = now or timezone.now()
    target = CampaignTarget.objects.select_for_update().get(pk=target_id)
    if target.status != CampaignTarget.Status.SENT:
        return
    if failed:
        target_finish(target, staging.FAILED, reason, now)
        return
    target.status, target.sent_at, target.reason = CampaignTarget.Status.PENDING, None, reason[:300]
    target.save(update_fields=["status", "sent_at", "reason"])


def target_note(*, target_id: int, status: str, details: str) -> None:
    """A step of the dispatch worth seeing on the timeline (a refusal that was retried)."""
    target = CampaignTarget.objects.get(pk=target_id)
    event_add(target, status, timezone.now(), details)


def signed_known(charger_id: int) -> bool:
    """Whether the 1.6 charger took a signed update before (then it gets one straight away)."""
    return CampaignTarget.objects.filter(
        charger_id=charger_id, method=CampaignTarget.Method.SIGNED, operation__isnull=False
    ).exists()
