"""Configuration baselines: their settings written (each change a new version), which chargers a
baseline covers, which are due after a boot or on demand, each application recorded, and the
drift between a baseline and what a charger last reported (docs/operations.md).

The CALLs go out from fleet.rules.dispatch, after these writes commit, never inside them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.db.models import F, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from chargers.models import Charger, Command, DeviceVariable
from chargers.state.charger import fingerprint
from fleet.models import Baseline, BaselineApplication, BaselineSetting

from . import rules

# How many answered GetConfiguration / ChangeConfiguration commands of a 1.6 charger are read
# to know its keys (newest; a full GetConfiguration is one of them).
COMMANDS_READ = 200


class BaselineRefused(ValueError):
    """A baseline that cannot be saved or applied as asked (words for the operator)."""


def setting_of(row: BaselineSetting) -> rules.Setting:
    return rules.Setting(
        variable=row.variable,
        value=row.value,
        component=row.component,
        component_instance=row.component_instance,
        evse_id=row.evse_id,
        connector_id=row.connector_id,
        variable_instance=row.variable_instance,
        attribute_type=row.attribute_type or "Actual",
    )


def settings_of(baseline_id: int) -> list[rules.Setting]:
    return [setting_of(r) for r in BaselineSetting.objects.filter(baseline_id=baseline_id)]


def protocol_of(charger: Charger) -> str:
    return rules.V201 if charger.speaks_v2() else rules.V16


def setting_check(protocol: str, item: dict[str, Any]) -> None:
    """Raise BaselineRefused when the setting cannot be part of a baseline of `protocol`."""
    if not str(item.get("variable", "")).strip():
        raise BaselineRefused("Every setting needs its key (1.6) or variable (2.0.1).")
    if protocol == rules.V201 and not str(item.get("component", "")).strip():
        raise BaselineRefused("A 2.0.1 setting needs its component.")
    if protocol == rules.V16 and item.get("component"):
        raise BaselineRefused("A 1.6 setting is a configuration key: no component.")
    if rules.is_credential(protocol, str(item.get("component", "")), str(item["variable"])):
        raise BaselineRefused(
            f"{item['variable']} is a charger's own credential: set it on the charger's "
            "Security tab, not in a baseline."
        )


@transaction.atomic
def baseline_settings_replace(*, baseline_id: int, items: list[dict[str, Any]]) -> Baseline:
    """Replace the baseline's settings and start a new version (every charger is compared with
    it; a reboot may be asked once more for it). Raises BaselineRefused, nothing changed."""
    baseline = Baseline.objects.select_for_update().get(pk=baseline_id)
    seen: set[rules.Key] = set()
    rows = []
    for item in items:
        setting_check(baseline.protocol, item)
        row = BaselineSetting(baseline=baseline, **item)
        key = rules.key_of(setting_of(row))
        if key in seen:
            raise BaselineRefused(f"{setting_of(row).label} is set twice.")
        seen.add(key)
        rows.append(row)
    BaselineSetting.objects.filter(baseline=baseline).delete()
    BaselineSetting.objects.bulk_create(rows)
    baseline.version = F("version") + 1
    baseline.save(update_fields=["version", "updated_at"])
    baseline.refresh_from_db()
    return baseline


def setting_items(baseline_id: int) -> list[dict[str, Any]]:
    """The baseline's settings as the fields `baseline_settings_replace` takes."""
    return [
        dict(row)
        for row in BaselineSetting.objects.filter(baseline_id=baseline_id).values(
            "component",
            "component_instance",
            "evse_id",
            "connector_id",
            "variable",
            "variable_instance",
            "attribute_type",
            "value",
        )
    ]


# -- which chargers -------------------------------------------------------------------------------


def _versions(protocol: str) -> list[str]:
    if protocol == rules.V16:
        return [Charger.OcppVersion.V16]
    return [Charger.OcppVersion.V201, Charger.OcppVersion.V21]


def chargers_of(baseline: Baseline) -> QuerySet[Charger]:
    """The organization's chargers this baseline is for: its vendor (and model) on its protocol.
    A baseline for every model leaves out the models that have a baseline of their own."""
    chargers = Charger.objects.filter(
        property__organization_id=baseline.organization_id,
        vendor=baseline.vendor,
        ocpp_version__in=_versions(baseline.protocol),
    )
    if baseline.model:
        return chargers.filter(model=baseline.model)
    own_models = Baseline.objects.filter(
        organization_id=baseline.organization_id,
        vendor=baseline.vendor,
        protocol=baseline.protocol,
    ).exclude(model="")
    return chargers.exclude(model__in=own_models.values("model"))


def baseline_for(charger: Charger) -> Baseline | None:
    """The baseline that applies to the charger: its model's, else its vendor's."""
    if charger.property_id is None:
        return None
    found = Baseline.objects.filter(
        organization__properties=charger.property_id,
        vendor=charger.vendor,
        model__in=[charger.model, ""],
        protocol=protocol_of(charger),
    ).order_by("-model")
    return found.first()


# -- due ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Due:
    application_id: int
    trigger: str


def _boot_candidates(baseline: Baseline) -> QuerySet[Charger]:
    """The baseline's connected, accepted chargers never given it or booted since they were
    (the pure rule decides which of those are due)."""
    applied = BaselineApplication.objects.filter(baseline=baseline, charger=OuterRef("pk"))
    return (
        chargers_of(baseline)
        .exclude(connection_id="")
        .filter(registration_status=Charger.Registration.ACCEPTED, last_boot_at__isnull=False)
        .annotate(applied_at=Subquery(applied.values("applied_at")[:1]))
        .filter(Q(applied_at__isnull=True) | Q(last_boot_at__gt=F("applied_at")))
        .order_by("last_boot_at", "pk")
    )


def _claim(baseline: Baseline, charger: Charger, trigger: str, now: datetime) -> int:
    application, _ = BaselineApplication.objects.update_or_create(
        baseline=baseline,
        charger=charger,
        defaults={
            "version": baseline.version,
            "fingerprint": fingerprint(charger.vendor, charger.model, charger.firmware_version),
            "trigger": trigger,
            "outcome": BaselineApplication.Outcome.QUEUED,
            "requested_at": None,
            "applied_at": now,
        },
    )
    return application.pk


# An application still queued this long after its claim, with no call to its charger lately: the
# sweep that claimed it died before its dispatch (a worker killed after the commit).
QUEUED_STALE = timedelta(minutes=30)


def _stale_claims(limit: int, now: datetime) -> list[Due]:
    """Claim again the applications a dead sweep left queued: nothing else would (the claim time
    is after the boot, and a queued one is not "never reached the charger" to the boot rule)."""
    stale = (
        BaselineApplication.objects.select_for_update(skip_locked=True, of=("self",))
        .filter(
            outcome=BaselineApplication.Outcome.QUEUED,
            requested_at__isnull=True,
            applied_at__lte=now - QUEUED_STALE,
        )
        .select_related("baseline", "charger")
        .order_by("applied_at", "pk")[:limit]
    )
    claims: list[Due] = []
    for application in stale:
        assert application.applied_at is not None
        talking = Command.objects.filter(
            charger_id=application.charger_id,
            source="fleet",
            created_at__gte=max(application.applied_at, now - QUEUED_STALE),
        )
        if talking.exists():
            continue  # its dispatch is still at work (a slow charger, many settings)
        trigger = application.trigger or "boot"
        claims.append(Due(_claim(application.baseline, application.charger, trigger, now), trigger))
    return claims


def due_claim(*, limit: int, now: datetime | None = None) -> list[Due]:
    """Claim at most `limit` applications to make now: those asked on demand first, then the
    boots that make a baseline due (rules.boot_due), oldest boot first. Claiming records
    the version and the charger's vendor/model/firmware, so the next sweep does not take them
    again."""
    now = now or timezone.now()
    claimed: list[Due] = []
    with transaction.atomic():
        asked = (
            # Only the applications' rows (of=self): locking the joined baseline and charger
            # too made a second sweep at once hold rows it then skipped, so neither took them,
            # and held the chargers' rows (written on their frames) for the whole sweep.
            BaselineApplication.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(requested_at__isnull=False)
            .select_related("baseline", "charger")
            .order_by("requested_at", "pk")[:limit]
        )
        for application in asked:
            claimed.append(
                Due(_claim(application.baseline, application.charger, "demand", now), "demand")
            )
        claimed.extend(_stale_claims(limit - len(claimed), now))
        # A baseline's boots are claimed by one sweep at a time: a second sweep running at once
        # (two workers, a redelivered task) skips the baselines the first holds. Without the
        # lock both read the same boots as due and each sent the charger the baseline.
        for baseline in (
            Baseline.objects.select_for_update(skip_locked=True)
            .filter(apply_on_boot=True)
            .order_by("pk")
        ):
            if len(claimed) >= limit:
                break
            claimed.extend(_boot_claims(baseline, limit - len(claimed), now))
    return claimed


def _boot_claims(baseline: Baseline, limit: int, now: datetime) -> list[Due]:
    candidates = list(_boot_candidates(baseline)[: limit * 4])
    applied = {
        a.charger_id: a
        for a in BaselineApplication.objects.filter(
            baseline=baseline, charger_id__in=[c.pk for c in candidates]
        )
    }
    claims: list[Due] = []
    for charger in candidates:
        previous = applied.get(charger.pk)
        due = rules.boot_due(
            baseline_version=baseline.version,
            fingerprint=fingerprint(charger.vendor, charger.model, charger.firmware_version),
            last_boot_at=charger.last_boot_at,
            applied_version=previous.version if previous else None,
            applied_fingerprint=previous.fingerprint if previous else "",
            applied_outcome=previous.outcome if previous else "",
            applied_at=previous.applied_at if previous else None,
        )
        if due:
            claims.append(Due(_claim(baseline, charger, "boot", now), "boot"))
        elif previous is not None:
            # Seen: this boot changes nothing; the next sweep does not look at it again.
            BaselineApplication.objects.filter(pk=previous.pk).update(applied_at=now)
        if len(claims) >= limit:
            break
    return claims


def apply_request(*, baseline: Baseline, charger_ids: Iterable[int] | None = None) -> int:
    """Ask for the baseline to be applied (on demand) to these of its chargers, or all of them;
    the sweep applies them at the fleet's pace. Returns how many were asked."""
    chargers = chargers_of(baseline)
    if charger_ids is not None:
        chargers = chargers.filter(pk__in=list(charger_ids))
    now = timezone.now()
    ids = list(chargers.values_list("pk", flat=True))
    # One upsert: "Re-apply" pressed twice at once asks again instead of failing on
    # unique_baseline_charger (two inserts of the charger's first application).
    BaselineApplication.objects.bulk_create(
        [BaselineApplication(baseline=baseline, charger_id=pk, requested_at=now) for pk in ids],
        update_conflicts=True,
        unique_fields=["baseline", "charger"],
        update_fields=["requested_at"],
    )
    return len(ids)


def application_now(*, baseline: Baseline, charger: Charger) -> int:
    """Claim one charger's application to make at once (the charger page's re-apply)."""
    with transaction.atomic():
        return _claim(baseline, charger, "demand", timezone.now())


# -- results --------------------------------------------------------------------------------------


def application_load(
    application_id: int,
) -> tuple[BaselineApplication, list[rules.Setting], bool]:
    application = BaselineApplication.objects.select_related("baseline", "charger").get(
        pk=application_id
    )
    busy = application.charger.sessions.filter(stopped_at__isnull=True).exists()
    return application, settings_of(application.baseline_id), busy


def application_record(
    *,
    application_id: int,
    settings: list[rules.Setting],
    statuses: list[str | None],
    outcome: str,
    reboot_asked: bool,
    note: str = "",
) -> None:
    """Keep each value's answer (in its protocol's words) and the outcome; a reboot asked is
    remembered for the version applied, so it is never asked again for that version."""
    application = BaselineApplication.objects.get(pk=application_id)
    application.outcome = outcome
    application.results = [
        {"setting": s.label, "value": s.value, "status": status or "no answer"}
        for s, status in zip(settings, statuses, strict=True)
    ]
    if note:
        application.results.append({"setting": "", "value": "", "status": note})
    if reboot_asked:
        application.reboot_asked_version = application.version
    application.save(update_fields=["outcome", "results", "reboot_asked_version"])


# -- drift ----------------------------------------------------------------------------------------


def reported_for(
    charger: Charger, settings: list[rules.Setting]
) -> dict[rules.Key, rules.Reported]:
    """What the charger last reported of these settings: a 1.6 charger's answered
    GetConfiguration and ChangeConfiguration commands; a 2.0.1 charger's device model
    (NotifyReport, GetVariables and SetVariables answers)."""
    if not charger.speaks_v2():
        commands = list(
            Command.objects.filter(
                charger=charger,
                action__in=("GetConfiguration", "ChangeConfiguration"),
                status=Command.Status.ANSWERED,
            )
            .order_by("-completed_at", "-pk")
            .values_list("action", "payload", "response")[:COMMANDS_READ]
        )
        return rules.reported_16(reversed(commands))
    rows = DeviceVariable.objects.filter(
        charger=charger, variable__in={s.variable for s in settings}
    ).values_list(
        "component",
        "component_instance",
        "evse_id",
        "connector_id",
        "variable",
        "variable_instance",
        "attribute_type",
        "value",
        "mutability",
    )
    return {
        rules.key_201(*row[:7]): rules.Reported(
            None if row[8] == "WriteOnly" else row[7], write_only=row[8] == "WriteOnly"
        )
        for row in rows
    }


@dataclass(frozen=True)
class ChargerBaseline:
    baseline: Baseline
    rows: list[rules.Drift]
    application: BaselineApplication | None

    @property
    def drifted(self) -> int:
        return sum(1 for r in self.rows if r.state == rules.DRIFTED)


def charger_baseline(charger: Charger) -> ChargerBaseline | None:
    """The charger's baseline, each value against what it reported, and its last application."""
    baseline = baseline_for(charger)
    if baseline is None:
        return None
    settings = settings_of(baseline.pk)
    rows = rules.drift(baseline.protocol, settings, reported_for(charger, settings))
    application = BaselineApplication.objects.filter(baseline=baseline, charger=charger).first()
    return ChargerBaseline(baseline, rows, application)


def baseline_chargers(
    baseline: Baseline, chargers: list[Charger]
) -> list[tuple[Charger, int, BaselineApplication | None]]:
    """These chargers of the baseline (a page), each with its drifted values and last
    application."""
    settings = settings_of(baseline.pk)
    applied = {
        a.charger_id: a
        for a in BaselineApplication.objects.filter(
            baseline=baseline, charger_id__in=[c.pk for c in chargers]
        )
    }
    rows = []
    for charger in chargers:
        drift = rules.drift(baseline.protocol, settings, reported_for(charger, settings))
        drifted = sum(1 for r in drift if r.state == rules.DRIFTED)
        rows.append((charger, drifted, applied.get(charger.pk)))
    return rows
