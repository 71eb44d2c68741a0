"""Writes of the proxy: upstream configuration (one function for the portal, API and admin), the
live link state, transactionId maps, the durable queue, and the Leader's verdict on decisions."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import F, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from authorization.models import AuthorizationDecision
from backoffice import outbound
from backoffice.sealed import seal, unseal
from chargers.models import Charger, ChargingSession
from chargers.proxy import rules
from chargers.proxy.models import (
    Backoffice,
    ProxyQueuedMessage,
    ProxyTransaction,
    upstream_url_validator,
)

logger = logging.getLogger(__name__)

MAX_BACKOFFICES_PER_CHARGER = 5  # each is a socket kept open by us for the charger's lifetime


# -- configuration ---------------------------------------------------------------------------------


def _notify_consumer(charger_id: int) -> None:
    """Tell the process holding the charger's socket to reload its upstreams (no-op if offline)."""
    from chargers.devices.commands import command_group

    def send() -> None:
        try:
            async_to_sync(get_channel_layer().group_send)(
                command_group(charger_id), {"type": "cp.proxy_reload"}
            )
        except Exception as exc:  # the next connection reads the configuration anyway
            logger.warning(
                "Could not tell charger %s's process about its backoffices: %s", charger_id, exc
            )

    transaction.on_commit(send)


def backoffice_clean(
    charger: Charger, *, name: str, url: str, role: str, allowed_actions: list[str]
) -> tuple[str, str]:
    errors: dict[str, str] = {}
    name = (name or "").strip()
    url = (url or "").strip().rstrip("/")
    if not name:
        errors["name"] = "Give the backoffice a name hosts will recognise."
    try:
        upstream_url_validator(url)
        # Server-side request forgery: never a private, loopback or link-local address unless
        # staff allow-listed it (checked again at every connection, backoffice.outbound).
        outbound.check_url(url, schemes=outbound.WS_SCHEMES, unresolvable_ok=True)
    except ValidationError as exc:
        errors["url"] = exc.messages[0]
    except outbound.OutboundBlocked as exc:
        errors["url"] = exc.say("the backoffice")
    if url.endswith("/" + charger.station_id):
        errors["url"] = "Give the base URL: the station id is appended to it, as chargers do."
    if role not in (Backoffice.Role.LEADER, Backoffice.Role.FOLLOWER):
        errors["role"] = 'Use "leader" or "follower".'
    known = set(rules.all_csms_actions())
    if not isinstance(allowed_actions, list) or not all(
        isinstance(a, str) for a in allowed_actions
    ):
        errors["allowed_actions"] = "A list of action names."
    else:
        unknown = sorted(set(allowed_actions) - known)
        if unknown:
            errors["allowed_actions"] = (
                f"Not actions a central system sends to a charger: {', '.join(unknown)}."
            )
    if errors:
        raise ValidationError(errors)
    return name, url


@transaction.atomic
def backoffice_save(
    charger: Charger,
    *,
    name: str,
    url: str,
    role: str = Backoffice.Role.FOLLOWER,
    allowed_actions: list[str] | None = None,
    password: str | None = None,
    backoffice: Backoffice | None = None,
) -> Backoffice:
    """Create or change one upstream backoffice of `charger`. Making it Leader demotes the
    previous Leader. `password` None keeps the stored one; "" removes it. Raises ValidationError."""
    if allowed_actions is None:
        allowed_actions = list(backoffice.allowed_actions) if backoffice is not None else []
    name, url = backoffice_clean(
        charger, name=name, url=url, role=role, allowed_actions=allowed_actions
    )
    charger = Charger.objects.select_for_update().get(pk=charger.pk)  # one writer per charger's set
    others = Backoffice.objects.filter(charger=charger)
    if backoffice is not None:
        others = others.exclude(pk=backoffice.pk)
    if backoffice is None and others.count() >= MAX_BACKOFFICES_PER_CHARGER:
        raise ValidationError(
            f"A charger can be forwarded to at most {MAX_BACKOFFICES_PER_CHARGER} backoffices."
        )
    if role == Backoffice.Role.LEADER:
        others.filter(role=Backoffice.Role.LEADER).update(
            role=Backoffice.Role.FOLLOWER, updated_at=timezone.now()
        )
    if backoffice is None:
        backoffice = Backoffice(charger=charger)
    backoffice.name, backoffice.url, backoffice.role = name, url, role
    backoffice.allowed_actions = sorted(set(allowed_actions))
    if password is not None:
        backoffice.password_sealed = seal(password)
    backoffice.save()
    if not charger.proxied:
        Charger.objects.filter(pk=charger.pk).update(proxied=True)
    _notify_consumer(charger.pk)
    return backoffice


@transaction.atomic
def backoffice_make_leader(backoffice: Backoffice | None, *, charger: Charger) -> None:
    """Make `backoffice` the Leader, or (None) make this system the Leader again."""
    Charger.objects.select_for_update().get(pk=charger.pk)
    leaders = Backoffice.objects.filter(charger=charger, role=Backoffice.Role.LEADER)
    if backoffice is not None:
        leaders = leaders.exclude(pk=backoffice.pk)
    leaders.update(role=Backoffice.Role.FOLLOWER, updated_at=timezone.now())
    if backoffice is not None and backoffice.role != Backoffice.Role.LEADER:
        backoffice.role = Backoffice.Role.LEADER
        backoffice.save(update_fields=["role", "updated_at"])
    _notify_consumer(charger.pk)


@transaction.atomic
def backoffice_delete(backoffice: Backoffice) -> None:
    charger_id = backoffice.charger_id
    Charger.objects.select_for_update().get(pk=charger_id)
    backoffice.delete()
    if not Backoffice.objects.filter(charger_id=charger_id).exists():
        Charger.objects.filter(pk=charger_id).update(proxied=False)
    _notify_consumer(charger_id)


def charger_set_leader_timeout(charger: Charger, seconds: int) -> None:
    if not 1 <= int(seconds) <= 60:
        raise ValidationError(
            {
                "proxy_leader_timeout_s": "Between 1 and 60 seconds (chargers give up on a CSMS at about 30 s)."
            }
        )
    Charger.objects.filter(pk=charger.pk).update(proxy_leader_timeout_s=int(seconds))
    _notify_consumer(charger.pk)


# -- what the process holding the socket reads -----------------------------------------------------


@dataclass(frozen=True)
class UpstreamConfig:
    id: int
    name: str
    url: str
    password: str
    role: str
    allowed_actions: tuple[str, ...]

    @property
    def is_leader(self) -> bool:
        return self.role == rules.LEADER


def proxy_config(charger_id: int) -> tuple[list[UpstreamConfig], int]:
    """The charger's upstreams (passwords unsealed, for its socket only) and the Leader timeout."""
    timeout = (
        Charger.objects.filter(pk=charger_id)
        .values_list("proxy_leader_timeout_s", flat=True)
        .first()
        or 10
    )
    configs = [
        UpstreamConfig(
            b.pk, b.name, b.url, unseal(b.password_sealed), b.role, tuple(b.allowed_actions or ())
        )
        for b in Backoffice.objects.filter(charger_id=charger_id).order_by("id")
    ]
    return configs, timeout


def link_state_record(
    *,
    backoffice_id: int,
    status: str,
    error: str | None = None,
    connected_at: datetime | None = None,
    disconnected_at: datetime | None = None,
    last_message_at: datetime | None = None,
) -> None:
    fields: dict[str, object] = {"status": status}
    if error is not None:
        fields["last_error"] = error[:300]
    if connected_at is not None:
        fields["connected_at"] = connected_at
    if disconnected_at is not None:
        fields["disconnected_at"] = disconnected_at
    if last_message_at is not None:
        fields["last_message_at"] = last_message_at
    Backoffice.objects.filter(pk=backoffice_id).update(**fields)


def link_drops_record(
    *, backoffice_id: int, count: int, first_at: datetime, last_at: datetime
) -> None:
    """Add `count` live messages not passed on to this backoffice (one write per batch)."""
    Backoffice.objects.filter(pk=backoffice_id).update(
        dropped_count=F("dropped_count") + count,
        dropped_first_at=Coalesce(F("dropped_first_at"), Value(first_at)),
        dropped_last_at=last_at,
    )


# -- transactionId maps ------------------------------------------------------------------------------


def transaction_map_record(
    *, charger_id: int, backoffice_id: int | None, charger_transaction_id: int, transaction_id: int
) -> None:
    """Remember that `backoffice_id` (None: this system) knows the charger's transaction
    `charger_transaction_id` as `transaction_id`. Repeats are ignored."""
    session_id = None
    if backoffice_id is None:
        session_id = (
            ChargingSession.objects.filter(charger_id=charger_id, transaction_id=transaction_id)
            .values_list("pk", flat=True)
            .first()
        )
    try:
        with transaction.atomic():
            ProxyTransaction.objects.create(
                charger_id=charger_id,
                backoffice_id=backoffice_id,
                charger_transaction_id=charger_transaction_id,
                transaction_id=transaction_id,
                session_id=session_id,
            )
    except IntegrityError:
        pass  # recorded already (a resent StartTransaction)
    if backoffice_id is None and session_id is not None:
        # Upstreams that answered before our own session existed are linked to it now: the
        # order of the answers is the network's, not ours.
        ProxyTransaction.objects.filter(
            charger_id=charger_id,
            charger_transaction_id=charger_transaction_id,
            session__isnull=True,
        ).update(session_id=session_id)
    if backoffice_id is not None:
        # Link the upstream's id to our session too ("our session is linked to all of them").
        ours = (
            ProxyTransaction.objects.filter(
                charger_id=charger_id,
                backoffice__isnull=True,
                charger_transaction_id=charger_transaction_id,
            )
            .values_list("session_id", flat=True)
            .first()
        )
        if ours is None:
            ours = (
                ChargingSession.objects.filter(
                    charger_id=charger_id, transaction_id=charger_transaction_id
                )
                .values_list("pk", flat=True)
                .first()
            )
        if ours is not None:
            ProxyTransaction.objects.filter(
                backoffice_id=backoffice_id,
                charger_transaction_id=charger_transaction_id,
                session__isnull=True,
            ).update(session_id=ours)


def party_transaction_id(
    *, charger_id: int, backoffice_id: int | None, charger_transaction_id: int
) -> int | None:
    rows = ProxyTransaction.objects.filter(
        charger_id=charger_id, charger_transaction_id=charger_transaction_id
    )
    rows = (
        rows.filter(backoffice__isnull=True)
        if backoffice_id is None
        else rows.filter(backoffice_id=backoffice_id)
    )
    return rows.values_list("transaction_id", flat=True).first()


def charger_transaction_id(
    *, charger_id: int, backoffice_id: int | None, transaction_id: int
) -> int | None:
    rows = ProxyTransaction.objects.filter(charger_id=charger_id, transaction_id=transaction_id)
    rows = (
        rows.filter(backoffice__isnull=True)
        if backoffice_id is None
        else rows.filter(backoffice_id=backoffice_id)
    )
    return rows.values_list("charger_transaction_id", flat=True).first()


# -- the durable queue -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Queued:
    action: str
    unique_id: str
    payload: dict
    charger_transaction_id: int | None = None
    id: int | None = None


def queue_append(backoffice_id: int, items: list[Queued]) -> list[int]:
    """Append in order; returns the new rows' ids."""
    created = ProxyQueuedMessage.objects.bulk_create(
        [
            ProxyQueuedMessage(
                backoffice_id=backoffice_id,
                action=item.action,
                unique_id=item.unique_id,
                payload=item.payload,
                charger_transaction_id=item.charger_transaction_id,
            )
            for item in items
        ]
    )
    return [m.pk for m in created]


def queue_head(backoffice_id: int, limit: int = 100) -> list[Queued]:
    return [
        Queued(m.action, m.unique_id, m.payload, m.charger_transaction_id, m.pk)
        for m in ProxyQueuedMessage.objects.filter(backoffice_id=backoffice_id).order_by("id")[
            :limit
        ]
    ]


def queue_remove(message_id: int) -> None:
    ProxyQueuedMessage.objects.filter(pk=message_id).delete()


# -- decisions -------------------------------------------------------------------------------------


@transaction.atomic
def decision_note_leader(
    *,
    station_id: str,
    unique_id: str,
    leader_name: str,
    leader_status: str,
    leader_answered: bool,
    charger_id: int | None = None,
    charger_transaction_id: int | None = None,
) -> int:
    """Record on our decision(s) for this CALL what the Leader answered (the charger obeyed it),
    or that it did not answer and we did. A StartTransaction's session takes the status the
    charger was given. Returns the number of decisions updated."""
    updated = AuthorizationDecision.objects.filter(
        station_id=station_id, ocpp_unique_id=unique_id
    ).update(
        leader_name=leader_name[:100],
        leader_status=leader_status[:20],
        leader_answered=leader_answered,
    )
    if (
        leader_answered
        and leader_status
        and charger_id is not None
        and charger_transaction_id is not None
    ):
        ours = party_transaction_id(
            charger_id=charger_id, backoffice_id=None, charger_transaction_id=charger_transaction_id
        )
        ChargingSession.objects.filter(
            charger_id=charger_id,
            transaction_id=ours if ours is not None else charger_transaction_id,
        ).update(id_tag_status=leader_status[:12])
    return updated


def queue_set_charger_tx(message_id: int, charger_transaction_id: int | None) -> None:
    if charger_transaction_id is not None:
        ProxyQueuedMessage.objects.filter(pk=message_id).update(
            charger_transaction_id=charger_transaction_id
        )
