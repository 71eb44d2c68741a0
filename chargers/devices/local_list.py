"""The charger-side local authorization list (OCPP 1.6 §5.13 SendLocalList / GetLocalListVersion).

A charger restricted to local token groups gets their cards pushed, so it can authorize
them while offline. Pushes are differential when the charger still holds the last list
we sent, full otherwise. Every push is a Command row, so its result is recorded.
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import partial

from celery import shared_task
from django.db import transaction
from django.db.models import Q, QuerySet
from django.dispatch import receiver
from django.utils import timezone

from authorization.models import Token, TokenGroup
from authorization.signals import token_groups_changed
from chargers.devices import commands
from chargers.models import Charger, Command
from chargers.ocpp.protocol import format_datetime
from chargers.ocpp.v201_commands import local_list_as_16

logger = logging.getLogger(__name__)

MAX_ID_TAG = 20  # OCPP 1.6 IdToken is CiString20
AUTO_PUSH_TIMEOUT_S = 10


def applicable_group_ids(charger: Charger) -> set[int]:
    ids = set(charger.token_groups.values_list("pk", flat=True))
    if charger.property_id:
        ids |= set(
            TokenGroup.objects.filter(restricted_properties=charger.property_id).values_list(
                "pk", flat=True
            )
        )
    return ids


def _status(token: Token, now: datetime) -> str:
    if token.blocked:
        return "Blocked"
    if not token.valid:
        return "Invalid"
    if token.expires_at and token.expires_at <= now:
        return "Expired"
    return "Accepted"


def local_list_entries(charger: Charger) -> dict[str, dict]:
    """Return {idTag: idTagInfo} for the cards this charger should know."""
    now = timezone.now()
    group_ids = applicable_group_ids(charger)
    if group_ids:
        tokens = Token.objects.filter(groups__in=group_ids).distinct()
    elif charger.organization_id is not None:
        tokens = Token.objects.filter(organization_id=charger.organization_id)
    else:
        tokens = Token.objects.none()
    entries: dict[str, dict] = {}
    for token in tokens.exclude(type=Token.Type.GUEST).order_by("uid"):
        if len(token.uid) > MAX_ID_TAG:
            continue
        info = {"status": _status(token, now)}
        if token.expires_at:
            info["expiryDate"] = format_datetime(token.expires_at)
        if token.parent_id_tag:
            info["parentIdTag"] = token.parent_id_tag[:MAX_ID_TAG]
        entries[token.uid] = info
    return entries


def _sent_lists(charger: Charger) -> QuerySet[Command]:
    return Command.objects.filter(charger=charger, action="SendLocalList").order_by("pk")


def last_accepted_state(charger: Charger) -> tuple[int | None, dict[str, dict] | None]:
    """Replay accepted pushes (last full list + later differentials): (version, entries)."""
    # Pushes to a 2.0.1 charger were sent in its shape (D01); replayed here in 1.6 words.
    accepted = [
        local_list_as_16(c.payload)
        for c in _sent_lists(charger).filter(status=Command.Status.ANSWERED)
        if c.result_status == "Accepted"
    ]
    last_full = max(
        (i for i, p in enumerate(accepted) if p.get("updateType") == "Full"), default=None
    )
    if last_full is None:
        return None, None
    state: dict[str, dict] = {}
    for payload in accepted[last_full:]:
        entries = payload.get("localAuthorizationList", [])
        if payload["updateType"] == "Full":
            state = {}
        for entry in entries:
            if "idTagInfo" in entry:
                state[entry["idTag"]] = entry["idTagInfo"]
            else:
                state.pop(entry["idTag"], None)
    return accepted[-1]["listVersion"], state


def next_version(charger: Charger) -> int:
    last = _sent_lists(charger).last()
    return (int(local_list_as_16(last.payload).get("listVersion") or 0) + 1) if last else 1


def local_list_push_sync(
    charger: Charger,
    *,
    user_id: int | None = None,
    full: bool = False,
    source: str = "portal",
    timeout: float | None = None,
) -> Command:
    """Push the charger's local list; return the SendLocalList Command (or the failed version query).

    Raises the exceptions of chargers.devices.commands.send_command_sync.
    """
    wanted = local_list_entries(charger)
    version, state = last_accepted_state(charger)
    held = None  # the list the charger holds, when a differential update can build on it
    if not full and state is not None:
        probe = commands.send_command_sync(
            charger, "GetLocalListVersion", {}, source=source, user_id=user_id, timeout=timeout
        )
        if probe.status != Command.Status.ANSWERED:
            return probe
        answer = probe.response if isinstance(probe.response, dict) else {}
        # 1.6 answers listVersion, 2.0.1 versionNumber (D02).
        if answer.get("listVersion", answer.get("versionNumber")) == version:
            held = state
    entries: list[dict] = []
    if held is None:
        update_type = "Full"
        entries = [{"idTag": tag, "idTagInfo": info} for tag, info in wanted.items()]
    else:
        update_type = "Differential"
        entries = [
            {"idTag": tag, "idTagInfo": info}
            for tag, info in wanted.items()
            if held.get(tag) != info
        ]
        entries += [{"idTag": tag} for tag in held if tag not in wanted]
    payload = {
        "listVersion": next_version(charger),
        "updateType": update_type,
        "localAuthorizationList": entries,
    }
    return commands.send_command_sync(
        charger, "SendLocalList", payload, source=source, user_id=user_id, timeout=timeout
    )


def chargers_for_groups(group_ids: list[int]) -> QuerySet[Charger]:
    return Charger.objects.filter(
        Q(token_groups__in=group_ids) | Q(property__restricted_token_groups__in=group_ids)
    ).distinct()


@shared_task(name="chargers.local_list_push")
def local_list_push_task(charger_id: int) -> str:
    charger = Charger.objects.select_related("property").filter(pk=charger_id).first()
    if charger is None or not charger.is_online():
        return "offline"
    try:
        command = local_list_push_sync(charger, source="system", timeout=AUTO_PUSH_TIMEOUT_S)
    except (commands.ChargerOffline, commands.CommandTimeout) as exc:
        logger.info("Local list push to %s did not complete: %s", charger, exc)
        return "failed"
    return command.result_status or command.status


@receiver(token_groups_changed)
def push_after_group_change(sender: object, token_group_ids: list[int], **kwargs: object) -> None:
    """A local token group changed: send the new list to online chargers restricted to it."""
    for charger in chargers_for_groups(token_group_ids).select_related("property"):
        if charger.is_online():
            transaction.on_commit(partial(local_list_push_task.delay, charger.pk))
