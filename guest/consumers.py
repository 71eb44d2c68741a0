"""The guest session page's websocket: pushes charger status, kW and kWh as they happen."""

from __future__ import annotations

import asyncio
import json
import logging

from channels.generic.websocket import AsyncWebsocketConsumer

from backoffice import db
from chargers.plumbing.live import connector_group, connector_watch

from .live import STATUS_WORDS, cost_so_far, energy_kwh, parse_reading, power_kw
from .models import GuestSession
from .selectors import guest_session_by_key
from .services import guest_session_finish, guest_start_expire
from .starts import guest_group

logger = logging.getLogger(__name__)

WATCH_REFRESH_S = 30  # chargers.plumbing.live asks for a refresh at least every 60 s
SETTLE_FALLBACK_AFTER_S = 3
# The cost so far is re-priced with a meter reading at most this often per page (issue 51 item 5).
COST_REFRESH_S = 15.0
MEMO_S = 2.0  # chargers.plumbing.live re-reads the watch marker at most this often per process


class GuestSessionConsumer(AsyncWebsocketConsumer):
    """One guest page; joins its connector's live group and its own guest group."""

    async def connect(self) -> None:
        key = self.scope["url_route"]["kwargs"]["key"]
        gs = await db.run(guest_session_by_key, key)
        if gs is None:
            await self.close()
            return
        self.gs_id, self.key = gs.pk, key
        self.charger_id, self.connector_id = gs.charger_id, gs.connector_id
        self.groups_joined = [connector_group(gs.charger_id, gs.connector_id), guest_group(gs.pk)]
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        self.tasks = [
            asyncio.create_task(self._keep_watching()),
            asyncio.create_task(self._resync_after(MEMO_S + 0.5)),
        ]
        await self._send_snapshot()

    async def disconnect(self, code: int) -> None:
        for task in getattr(self, "tasks", []):
            task.cancel()
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # The page sends nothing but pings; commands go through CSRF-protected POSTs.
        if text_data == "ping":
            await self.send(text_data=json.dumps({"type": "pong"}))

    async def _keep_watching(self) -> None:
        while True:
            await db.run(connector_watch, self.charger_id)
            await asyncio.sleep(WATCH_REFRESH_S)

    async def _load(self) -> tuple[GuestSession | None, dict | None]:
        def load() -> tuple[GuestSession | None, dict | None]:
            from .live import snapshot

            gs = guest_session_by_key(self.key)
            return gs, (snapshot(gs) if gs else None)

        return await db.run(load)

    async def _send_snapshot(self) -> dict | None:
        gs, snap = await self._load()
        if snap is None:
            return None
        self.snap = snap
        await self.send(text_data=json.dumps({"type": "state", **snap}))
        if snap["state"] == GuestSession.State.STARTING and snap["seconds_left"] is not None:
            self.tasks.append(asyncio.create_task(self._expire_at(snap["seconds_left"] + 1)))
        if snap.get("awaiting_settlement"):
            self._watch_settlement()
        return snap

    def _watch_settlement(self) -> None:
        # One watcher per page: it re-reads until settled, and settles itself if no worker did.
        if not getattr(self, "settle_watching", False):
            self.settle_watching = True
            self.tasks.append(asyncio.create_task(self._settle_watch_once()))

    async def _settle_watch_once(self) -> None:
        try:
            await self._settle_watch()
        finally:
            self.settle_watching = False

    async def _resync_after(self, delay: float) -> None:
        # The OCPP process reads the watch marker with a short memo (chargers.plumbing.live): events
        # in the first moments after the marker was set can be dropped. One re-read once that
        # memo has expired catches up; everything after arrives as events.
        await asyncio.sleep(delay)
        await self._send_snapshot()

    async def _expire_at(self, delay: float) -> None:
        # Server side: the same idempotent check the scheduled task runs, so an open page learns
        # the outcome at the deadline even when the task ran in another process.
        await asyncio.sleep(delay)
        await db.run(guest_start_expire, guest_session_id=self.gs_id)
        await self._send_snapshot()

    async def _settle_watch(self) -> None:
        # After StopTransaction the settlement normally runs in a worker: re-read until it is
        # done, and settle here (idempotent) if no worker did within a few seconds.
        for attempt in range(30):
            snap = await self._send_snapshot()
            if snap is None or snap["state"] != GuestSession.State.CHARGING:
                return
            if attempt == SETTLE_FALLBACK_AFTER_S and snap.get("session_id"):
                try:
                    await db.run(guest_session_finish, session_id=snap["session_id"])
                except Exception:
                    logger.warning(
                        "Settling guest session %s from its page failed", self.gs_id, exc_info=True
                    )
                continue
            await asyncio.sleep(1)

    def _cost(self) -> str | None:
        gs = GuestSession.objects.select_related("charging_session").get(pk=self.gs_id)
        return cost_so_far(gs)

    async def guest_update(self, event: dict) -> None:
        await self._send_snapshot()

    async def connector_event(self, event: dict) -> None:
        kind = event.get("kind")
        snap = getattr(self, "snap", {}) or {}
        if kind in ("status", "meter") and snap.get("state") in (
            GuestSession.State.PENDING,
            GuestSession.State.STARTING,
        ):
            # The car may have started while no "started" event reached us (the charger's
            # watch marker is read with a short memo): the stored state is the truth.
            snap = await self._send_snapshot() or snap
        tx = snap.get("transaction_id")
        if kind == "status":
            status = event.get("status", "")
            await self.send(
                text_data=json.dumps(
                    {
                        "type": "status",
                        "status": status,
                        "status_label": STATUS_WORDS.get(status, status),
                    }
                )
            )
        elif kind == "meter":
            if tx is None or event.get("transaction_id") != tx:
                return
            values = event.get("values") or {}
            energy, e_unit = parse_reading(values.get("Energy.Active.Import.Register"))
            power, p_unit = parse_reading(values.get("Power.Active.Import"))
            kwh = energy_kwh(energy, e_unit or "Wh", snap.get("meter_start_wh"))
            kw = power_kw(power, p_unit or "W")
            message = {
                "type": "meter",
                "kw": str(kw) if kw is not None else None,
                "kwh": str(kwh) if kwh is not None else None,
            }
            now = asyncio.get_running_loop().time()
            if now - getattr(self, "cost_at", 0.0) >= COST_REFRESH_S:
                # The cost so far, priced as the receipt is: a few reads, so not every frame.
                self.cost_at = now
                message["cost"] = await db.run(self._cost)
            await self.send(text_data=json.dumps(message))
        elif kind == "started":
            await self._send_snapshot()
        elif kind == "stopped":
            if tx is None or event.get("transaction_id") == tx:
                self._watch_settlement()
