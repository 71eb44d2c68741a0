"""AFIR access-point feeds: an operator's publicly accessible chargers delivered to a country's
National Access Point (docs/afir.md).

An OCPI feed is a Partner of role NAP behind the scenes, so its pushes go through the roaming
outbox (roaming.services: Delivery rows, order per object, back-off, the OCPI log) like every
partner push; this module keeps that Partner in step with the feed and reads the feed's state.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from celery import shared_task
from django.conf import settings
from django.db import transaction
from django.db.models import Min
from django.utils import timezone

from backoffice import queueing
from backoffice.models import Organization

from . import client, ocpi, plain
from .models import AccessPointFeed, Delivery, Partner

logger = logging.getLogger(__name__)

_OCPI_VERSIONS = {
    AccessPointFeed.Protocol.OCPI_221: ocpi.V221,
    AccessPointFeed.Protocol.OCPI_230: ocpi.V230,
}


class InvalidFeed(ValueError):
    """A feed that cannot be saved: {field: words}."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__(errors)
        self.errors = errors


def our_party_id() -> str:
    """The party id roaming uses for every operator (one operator identity: an EVSE never has
    two evse_ids)."""
    return str(settings.OCPI_PARTY_ID)


def _checked(feed: AccessPointFeed) -> None:
    errors: dict[str, str] = {}
    if feed.party_id.upper() != our_party_id().upper():
        errors["party_id"] = (
            f"Use the party id roaming already uses ({our_party_id()}): one operator has one "
            "identity, so an EVSE never has two EVSE ids."
        )
    if feed.endpoint_url:
        try:
            client.check_partner_url(feed.endpoint_url)
        except client.BlockedPartnerUrl as exc:
            errors["endpoint_url"] = str(exc)
    if feed.enabled:
        if feed.protocol == AccessPointFeed.Protocol.DATEX_II_3:
            errors["protocol"] = (
                "DATEX II v3 feeds are not built yet (docs/afir.md): choose ocpi-2.2.1 or "
                "ocpi-2.3.0, or leave this feed switched off."
            )
        if not feed.endpoint_url:
            errors["endpoint_url"] = "Give the access point's address to switch the feed on."
        if not feed.token:
            errors["token"] = "Give the token the access point issued to switch the feed on."
    if errors:
        raise InvalidFeed(errors)


def _outbox_partner(feed: AccessPointFeed) -> Partner | None:
    """Create or update the feed's outbox identity (a Partner of role NAP); None for a
    protocol the outbox does not push."""
    version = _OCPI_VERSIONS.get(AccessPointFeed.Protocol(feed.protocol))
    partner = feed.partner
    if version is None:
        if partner is not None and partner.state != Partner.State.UNREGISTERED:
            partner.state = Partner.State.UNREGISTERED
            partner.save(update_fields=["state", "updated_at"])
        return partner
    base = feed.endpoint_url.rstrip("/")
    partner = partner or Partner(organization_id=feed.organization_id, role=Partner.Role.NAP)
    partner.name = f"National access point ({feed.country})"
    partner.role = Partner.Role.NAP
    partner.state = Partner.State.CONNECTED if feed.enabled else Partner.State.UNREGISTERED
    partner.version = version
    partner.versions_offered = [version]
    partner.endpoints = (
        {"locations": {"RECEIVER": f"{base}/locations"}, "tariffs": {"RECEIVER": f"{base}/tariffs"}}
        if base
        else {}
    )
    partner.outgoing_token = feed.token
    if partner.registered_at is None and feed.enabled:
        partner.registered_at = timezone.now()
    partner.save()
    return partner


def pull_token_issue(feed: AccessPointFeed) -> str:
    """Issue the token the access point pulls our Locations and Tariffs with (its daily full
    sync: GET /ocpi/2.2.1/locations and /tariffs); return it (shown once, kept as SHA-256)."""
    if feed.partner is None:
        raise InvalidFeed({"protocol": "Only an OCPI feed is pulled with a token."})
    token = secrets.token_urlsafe(32)
    Partner.objects.filter(pk=feed.partner.pk).update(incoming_token_hash=ocpi.token_hash(token))
    feed.partner.incoming_token_hash = ocpi.token_hash(token)
    return token


@transaction.atomic
def feed_save(
    *, organization: Organization, country: str, data: dict[str, Any]
) -> tuple[AccessPointFeed, bool]:
    """Create or change the operator's feed to `country`'s access point with the fields given
    (a token left out is kept); return it and whether it needs a full sync (switched on, or
    its protocol changed: the caller queues it after commit)."""
    feed = (
        AccessPointFeed.objects.select_for_update(of=("self",))
        .select_related("partner")
        .filter(organization=organization, country=country.upper())
        .first()
    ) or AccessPointFeed(organization=organization, country=country.upper(), party_id="")
    was_on = feed.pk is not None and feed.enabled
    old_protocol = feed.protocol
    for name in ("enabled", "protocol", "endpoint_url", "token", "party_id"):
        if name in data:
            setattr(feed, name, data[name])
    feed.party_id = (feed.party_id or our_party_id()).upper()
    _checked(feed)
    feed.partner = _outbox_partner(feed)
    feed.save()
    # Switched on, or now speaking another version: everything is sent again (a waiting push of
    # an object is replaced by the object in the new version: the outbox coalesces).
    return feed, feed.enabled and (not was_on or feed.protocol != old_protocol)


@dataclass(frozen=True)
class FeedState:
    """What a host sees of a feed: how stale the access point's view is and what went wrong."""

    waiting: int
    oldest_waiting_at: datetime | None
    freshness_s: int | None  # age of the oldest change the access point has not accepted
    last_delivery_at: datetime | None
    last_error: str
    last_error_words: str
    last_error_at: datetime | None


def feed_state(feed: AccessPointFeed, *, now: datetime | None = None) -> FeedState:
    now = now or timezone.now()
    partner = feed.partner
    if partner is None:
        return FeedState(0, None, None, None, "", "", None)
    pending = Delivery.objects.filter(partner=partner, status=Delivery.Status.PENDING)
    agg = pending.aggregate(oldest=Min("created_at"))
    oldest = agg["oldest"]
    return FeedState(
        waiting=pending.count(),
        oldest_waiting_at=oldest,
        freshness_s=max(0, int((now - oldest).total_seconds())) if oldest else 0,
        last_delivery_at=partner.last_push_at,
        last_error=partner.last_error,
        last_error_words=plain.error_words(partner.last_error),
        last_error_at=partner.last_error_at,
    )


def rate_push_queue(*, rate_id: int, property_id: int) -> list[int]:
    """Queue the Tariff of a changed rate for the operator's access points that take pushes;
    return the ids of their outbox partners with something queued."""
    from backoffice.models import Property

    from . import services

    organization_id = (
        Property.objects.filter(pk=property_id).values_list("organization_id", flat=True).first()
    )
    partners = Partner.objects.filter(
        organization_id=organization_id, role=Partner.Role.NAP, state=Partner.State.CONNECTED
    ).values_list("pk", flat=True)
    return [
        pk
        for pk in partners
        if services.tariffs_push_queue(partner_id=pk, rate_ids={str(rate_id)})
        + services.tariffs_reconcile(partner_id=pk)
    ]


def full_sync(*, feed_id: int) -> int:
    """Queue everything the access point should hold (every publicly accessible location, and
    the tariffs) and send it; return how many pushes were queued."""
    from . import services

    feed = AccessPointFeed.objects.filter(pk=feed_id, enabled=True).first()
    if feed is None or feed.partner_id is None:
        return 0
    queued = services.locations_reconcile(partner_id=feed.partner_id)
    queued += services.locations_resend(partner_id=feed.partner_id)
    queued += services.tariffs_push_queue(partner_id=feed.partner_id)
    queued += services.tariffs_reconcile(partner_id=feed.partner_id)
    services.deliveries_send(partner_id=feed.partner_id)
    return queued


@shared_task(name="roaming.access_point_full_sync")
def full_sync_task(feed_id: int) -> int:
    return full_sync(feed_id=feed_id)


def full_sync_after_commit(feed: AccessPointFeed) -> None:
    """After the commit that switched the feed on, push it everything (the outbox keeps what
    the access point has not accepted). No sweep starts it: a job the broker does not take is
    kept and sent once it answers."""
    queueing.on_commit("roaming.access_point_full_sync", feed.pk)


# An access point's bound on freshness (DOT-NL: changes delivered within one minute).
FRESHNESS_BOUND_S = 60


def feed_subject(feed: AccessPointFeed) -> str:
    return f"access point {feed.country}"


def freshness_alerts(*, now: datetime | None = None) -> tuple[int, int]:
    """Open an alert (kind `access_point_behind`, through the organization's alert rules) for
    each feed on whose oldest change has waited for the access point's 2xx longer than its
    bound, and clear it once the feed caught up or was switched off. Return (opened, cleared)."""
    from reliability.models import AlertRule
    from reliability.services import subject_problem_report, subject_problem_resolved

    now = now or timezone.now()
    kind = AlertRule.Kind.ACCESS_POINT_BEHIND
    # Only organizations that asked to hear of it: no query per feed for the others.
    wanted = set(
        AlertRule.objects.filter(kind=kind, enabled=True).values_list("organization_id", flat=True)
    )
    opened = cleared = 0
    for feed in AccessPointFeed.objects.filter(organization_id__in=wanted).select_related(
        "partner"
    ):
        state = feed_state(feed, now=now) if feed.enabled else None
        subject = feed_subject(feed)
        if state is not None and state.oldest_waiting_at and state.freshness_s > FRESHNESS_BOUND_S:
            waiting = f"{state.waiting} change{'s' if state.waiting != 1 else ''}"
            reason = f" Last error: {state.last_error_words}" if state.last_error_words else ""
            details = (
                f"{waiting} not yet accepted by the {feed.country} access point, the oldest for "
                f"{state.freshness_s} s (its bound: {FRESHNESS_BOUND_S} s).{reason}"
            )
            opened += len(
                subject_problem_report(
                    kind=kind,
                    organization_id=feed.organization_id,
                    subject=subject,
                    since=state.oldest_waiting_at,
                    details=details,
                    now=now,
                )
            )
        else:
            cleared += subject_problem_resolved(
                kind=kind, organization_id=feed.organization_id, subject=subject, now=now
            )
    return opened, cleared


def dashboard_figures(*, organization_ids: list[int] | None, now: datetime, **kwargs: Any) -> dict:
    """The dashboard's Needs attention rows of AFIR feeds, for organizations with a feed on:
    locations held back (with what they lack) and feeds whose oldest change waits longer than
    the bound."""
    from . import selectors

    feeds = AccessPointFeed.objects.filter(enabled=True).select_related("partner", "organization")
    if organization_ids is not None:
        feeds = feeds.filter(organization_id__in=organization_ids)
    held_back = []
    stale = []
    organizations_done: set[int] = set()
    for feed in feeds:
        state = feed_state(feed, now=now)
        if state.freshness_s is not None and state.freshness_s > FRESHNESS_BOUND_S:
            stale.append({"feed": feed, "state": state})
        if feed.organization_id in organizations_done:
            continue
        organizations_done.add(feed.organization_id)
        by_property: dict[int, list[Any]] = {}
        for charger in selectors.afir_chargers(feed.organization_id):
            by_property.setdefault(int(charger.property_id or 0), []).append(charger)
        for chargers in by_property.values():
            prop = selectors.property_of(chargers[0])
            missing = selectors.afir_holdback(prop, chargers, now=now)
            if missing:
                held_back.append({"property": prop, "missing": missing})
    return {"afir_held_back": held_back, "afir_stale_feeds": stale}
