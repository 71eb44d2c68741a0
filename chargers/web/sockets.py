"""Browser websockets of the charger pages: the live message log of a charger's Logs tab."""

from __future__ import annotations

import asyncio
import json

from channels.generic.websocket import AsyncWebsocketConsumer

from backoffice import db
from chargers.messagelog.log import LOG_WATCH_TTL_S, log_group, log_watch_key
from chargers.plumbing import watching


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
        await self.channel_layer.group_add(log_group(charger.pk), self.channel_name)
        await self.accept()
        self.keepalive = asyncio.create_task(self._keep_watching())

    async def _keep_watching(self) -> None:
        while True:
            await db.run(watching.watch, log_watch_key(self.charger_id), LOG_WATCH_TTL_S)
            await asyncio.sleep(LOG_WATCH_TTL_S / 3)

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "charger_id"):
            self.keepalive.cancel()
            await self.channel_layer.group_discard(log_group(self.charger_id), self.channel_name)

    async def log_rows(self, event: dict) -> None:
        await self.send(text_data=json.dumps({"rows": event["rows"]}))
