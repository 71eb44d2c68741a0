"""Which card refusals at a charger are still a problem now (issue 34 item 1).

A refusal stops being current once that card has charged at the charger since (a later accepted
decision or a session started with it), or once the rules that answer the charger would accept the
card now (it was whitelisted, unblocked, the license renewed …). The same card refused for the
same reason several times is one refusal, with how often and when last. The assistant, the
dashboard's Needs attention and the host Support page all read refusals through here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from authorization.models import AuthorizationDecision, normalize_uid, not_alarms
from authorization.services import accepted_now
from chargers.models import Charger, ChargingSession
from chargers.sessions.services import charger_facts as rule_facts

ACCEPTED = "Accepted"
MAX_DECISIONS = 50


@dataclass
class Refusal:
    decision: AuthorizationDecision  # the latest refusal of this card for this reason
    count: int
    first_at: datetime
    # Set when it is no longer a problem: the time the card charged since, or `now` when the
    # charger's rules accept it now.
    solved_at: datetime | None = None
    solved_how: str = ""  # "charged" | "accepted now"

    @property
    def current(self) -> bool:
        return self.solved_at is None


def _charged_since(charger: Charger, uid_key: str, after: datetime) -> datetime | None:
    accepted = (
        AuthorizationDecision.objects.filter(
            station_id=charger.station_id,
            uid_normalized=uid_key,
            status=ACCEPTED,
            created_at__gt=after,
        )
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    started = None
    for id_tag, at in ChargingSession.objects.filter(
        charger=charger, started_at__gt=after
    ).values_list("id_tag", "started_at"):
        if normalize_uid(id_tag) == uid_key and (started is None or at < started):
            started = at
    moments = [m for m in (accepted, started) if m is not None]
    return min(moments) if moments else None


def _accepted_now(charger: Charger, decision: AuthorizationDecision, now: datetime) -> bool:
    return accepted_now(
        uid=decision.uid,
        token_id=decision.token_id,
        context=decision.context,
        charger=rule_facts(charger),
        now=now,
    )


def refusals_at(charger: Charger, *, since: datetime, now: datetime) -> list[Refusal]:
    """Return the refusals at `charger` since `since`, one per card and reason, newest first."""
    grouped: dict[tuple[str, str], Refusal] = {}
    decisions = (
        AuthorizationDecision.objects.filter(station_id=charger.station_id, created_at__gte=since)
        .exclude(status=ACCEPTED)
        .exclude(not_alarms())  # e.g. a finished guest session's spent token
        .select_related("reservation", "token")
        .order_by("-created_at")[:MAX_DECISIONS]
    )
    for decision in decisions:
        key = (decision.uid_normalized or normalize_uid(decision.uid), decision.reason)
        if key in grouped:
            grouped[key].count += 1
            grouped[key].first_at = decision.created_at
        else:
            grouped[key] = Refusal(decision, 1, decision.created_at)
    for (uid_key, _reason), refusal in grouped.items():
        charged = _charged_since(charger, uid_key, refusal.decision.created_at)
        if charged is not None:
            refusal.solved_at, refusal.solved_how = charged, "charged"
        elif _accepted_now(charger, refusal.decision, now):
            refusal.solved_at, refusal.solved_how = now, "accepted now"
    return list(grouped.values())


def current_refusal_stations(
    chargers: list[Charger], *, since: datetime, now: datetime
) -> set[str]:
    """Return the station ids among `chargers` with a refusal that is still a problem now."""
    refused = set(
        AuthorizationDecision.objects.filter(
            station_id__in=[c.station_id for c in chargers], created_at__gte=since
        )
        .exclude(status=ACCEPTED)
        .exclude(not_alarms())
        .values_list("station_id", flat=True)
    )
    return {
        c.station_id
        for c in chargers
        if c.station_id in refused and any(r.current for r in refusals_at(c, since=since, now=now))
    }
