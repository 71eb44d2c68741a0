"""Browser websockets of the charger pages: the live message log of a charger's Logs tab."""

from __future__ import annotations

import asyncio
import json
import logging

from channels.generic.websocket import AsyncWebsocketConsumer

from backoffice import db
from chargers.messagelog.log import LOG_WATCH_TTL_S, log_group, log_watch_key
from chargers.plumbing import watching

logger = logging.getLogger("chargers.ocpp")


class ChargerLogConsumer(AsyncWebsocketConsumer):
    """Pushes new OCPP log rows of one charger to a host's open Logs tab."""

    async def connect(self) -> None:
        from chargers.web.selectors import charger_for_user

        user = self.scope.get("user")
        station_id = self.scope["url_route"]["kwargs"]["station_id"]
        charger = None
        if user is not None and user.is_authenticated:
            charger = await db.run(charger_for_user, user, station_id)
        if charger is None:
            await self.close()
            return
        self.charger_id = charger.pk
        await self._join()
        await self.accept()
        self.keepalive = asyncio.create_task(self._keep_watching())

    async def _join(self) -> None:
        try:
            await self.channel_layer.group_add(log_group(self.charger_id), self.channel_name)
        except Exception as exc:  # noqa: BLE001 - Redis away: the next round joins again
            logger.warning("A Logs tab could not join its group: %s", exc)

    async def _keep_watching(self) -> None:
        while True:
            await db.run(watching.watch, log_watch_key(self.charger_id), LOG_WATCH_TTL_S)
            await asyncio.sleep(LOG_WATCH_TTL_S / 3)
            # Joined again each round: channels' layers drop a member a day after it joined,
            # and a Redis restart drops them all; the tab then got no more rows.
            await self._join()

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "charger_id"):
            self.keepalive.cancel()
            try:
                await self.channel_layer.group_discard(
                    log_group(self.charger_id), self.channel_name
                )
            except Exception:  # noqa: BLE001 - Redis away: the membership expires on its own
                pass

    async def log_rows(self, event: dict) -> None:
        await self.send(text_data=json.dumps({"rows": event["rows"]}))
