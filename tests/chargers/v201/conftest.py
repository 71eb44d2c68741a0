"""Fixtures for the OCPP 2.0.1 tests: a charger written from the OCPP-J 2.0.1 text (raw frames)."""

import pytest

from tests.ocpp_client import OcppTestClient

TS = "2026-11-20T10:00:00Z"


@pytest.fixture(autouse=True)
def _no_base_report(settings):
    # The GetBaseReport sent after a first boot would interleave with the frames a test reads;
    # tests of it turn it back on.
    settings.OCPP_BASE_REPORT_AFTER_BOOT = False


async def connect201(station_id: str = "CP-TEST-1", **kwargs) -> OcppTestClient:
    client = OcppTestClient(
        station_id, subprotocols=kwargs.pop("subprotocols", ["ocpp2.0.1"]), **kwargs
    )
    ok, subprotocol = await client.connect()
    assert ok and subprotocol == "ocpp2.0.1", subprotocol
    return client


BOOT = {
    "reason": "PowerUp",
    "chargingStation": {
        "model": "SingleSocketCharger",
        "vendorName": "VendorX",
        "serialNumber": "SN-201",
        "firmwareVersion": "1.2.3",
    },
}


def tx_event(
    event_type: str,
    seq_no: int,
    transaction_id: str = "TX-1",
    *,
    timestamp: str = TS,
    trigger: str = "Authorized",
    id_token: str | None = None,
    wh: float | None = None,
    context: str = "Sample.Periodic",
    offline: bool | None = None,
    stopped_reason: str | None = None,
    evse: int | None = 1,
    **info,
) -> dict:
    """A TransactionEventRequest as OCPP 2.0.1 part 2 §1.x defines it."""
    payload: dict = {
        "eventType": event_type,
        "timestamp": timestamp,
        "triggerReason": trigger,
        "seqNo": seq_no,
        "transactionInfo": {"transactionId": transaction_id, **info},
    }
    if stopped_reason:
        payload["transactionInfo"]["stoppedReason"] = stopped_reason
    if evse is not None:
        payload["evse"] = {"id": evse, "connectorId": 1}
    if id_token is not None:
        payload["idToken"] = {"idToken": id_token, "type": "ISO14443"}
    if offline is not None:
        payload["offline"] = offline
    if wh is not None:
        payload["meterValue"] = [
            {
                "timestamp": timestamp,
                "sampledValue": [
                    {
                        "value": wh,
                        "context": context,
                        "measurand": "Energy.Active.Import.Register",
                        "unitOfMeasure": {"unit": "Wh"},
                    }
                ],
            }
        ]
    return payload
