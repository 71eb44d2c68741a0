"""The peer: the central system a Python developer would write with the `ocpp` package
and `websockets` only (library defaults: schema validation on, no persistence).
"""

import argparse
import asyncio
import itertools
import logging
from datetime import UTC, datetime

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import serve

logging.getLogger("ocpp").setLevel(logging.WARNING)
_tx = itertools.count(1)


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class CentralSystemPeer(ChargePoint):
    @on(Action.boot_notification)
    async def on_boot(self, charge_point_vendor, charge_point_model, **kwargs):
        return call_result.BootNotification(
            current_time=_now(), interval=60, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    async def on_heartbeat(self):
        return call_result.Heartbeat(current_time=_now())

    @on(Action.status_notification)
    async def on_status(self, connector_id, error_code, status, **kwargs):
        return call_result.StatusNotification()

    @on(Action.meter_values)
    async def on_meter_values(self, connector_id, meter_value, **kwargs):
        return call_result.MeterValues()

    @on(Action.authorize)
    async def on_authorize(self, id_tag):
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted})

    @on(Action.start_transaction)
    async def on_start(self, connector_id, id_tag, meter_start, timestamp, **kwargs):
        return call_result.StartTransaction(
            transaction_id=next(_tx), id_tag_info={"status": AuthorizationStatus.accepted}
        )

    @on(Action.stop_transaction)
    async def on_stop(self, transaction_id, meter_stop, timestamp, **kwargs):
        return call_result.StopTransaction()


async def _handler(ws) -> None:
    station_id = ws.request.path.rstrip("/").rsplit("/", 1)[-1]
    try:
        await CentralSystemPeer(station_id, ws).start()
    except Exception:
        pass


async def main(port: int) -> None:
    async with serve(
        _handler,
        "127.0.0.1",
        port,
        subprotocols=["ocpp1.6"],
        ping_interval=None,
        compression=None,
        backlog=4096,
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    asyncio.run(main(parser.parse_args().port))
