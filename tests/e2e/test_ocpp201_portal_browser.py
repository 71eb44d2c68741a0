"""A host reserves a connector and changes a device-model value of a 2.0.1 charger in real
Chromium, against the real server, with a charger written from the OCPP-J 2.0.1 text on a socket."""

from __future__ import annotations

import base64
import itertools
import json
import threading

import pytest
from websockets.sync.client import connect

from tests.factories import (
    ChargerFactory,
    MembershipFactory,
    PropertyFactory,
    TokenFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
PASSWORD = "secret-pass-123"
CP_PASSWORD = "browser-test-password-201"


class Charger201:
    """Boots, reports one variable, and answers the central system's CALLs as a real station."""

    def __init__(self, url: str, station_id: str):
        auth = base64.b64encode(f"{station_id}:{CP_PASSWORD}".encode()).decode()
        self.ws = connect(
            f"{url}/ocpp/{station_id}",
            subprotocols=["ocpp2.0.1"],
            open_timeout=10,
            additional_headers={"Authorization": f"Basic {auth}"},
        )
        self.ids = itertools.count(1)
        self.calls: list[tuple[str, dict]] = []
        self.lock = threading.Lock()
        self.reader: threading.Thread | None = None

    def call(self, action: str, payload: dict) -> dict:
        unique_id = f"c{next(self.ids)}"
        self.ws.send(json.dumps([2, unique_id, action, payload]))
        while True:
            frame = json.loads(self.ws.recv(timeout=10))
            if frame[0] == 3 and frame[1] == unique_id:
                return frame[2]
            if frame[0] == 2:
                self._answer(frame)

    def _answer(self, frame: list) -> None:
        action, payload = frame[2], frame[3]
        self.calls.append((action, payload))
        answer: dict = {"status": "Accepted"}
        if action == "SetVariables":
            answer = {
                "setVariableResult": [
                    {
                        "attributeType": "Actual",
                        "attributeStatus": "RebootRequired",
                        "component": d["component"],
                        "variable": d["variable"],
                    }
                    for d in payload["setVariableData"]
                ]
            }
        self.ws.send(json.dumps([3, frame[1], answer]))

    def serve(self) -> None:
        def run() -> None:
            try:
                for text in self.ws:
                    frame = json.loads(text)
                    if frame[0] == 2:
                        self._answer(frame)
            except Exception:  # closed at the end of the test
                pass

        self.reader = threading.Thread(target=run, daemon=True)
        self.reader.start()


@pytest.fixture
def site(transactional_db):
    prop = PropertyFactory(name="Depot")
    user = UserFactory(username="host201@example.com", password=PASSWORD)
    MembershipFactory(organization=prop.organization, user=user, role="owner")
    charger = ChargerFactory(
        property=prop, station_id="WEB-201", name="Depot bay", security_profile=1
    )
    charger.set_ocpp_password(CP_PASSWORD)
    charger.save()
    TokenFactory(uid="04A1B2C3", organization=prop.organization, label="Fleet van")
    return charger


def test_host_reserves_and_sets_a_variable_of_a_201_charger(live_server_proc, site):
    from playwright.sync_api import sync_playwright

    from chargers.models import ConnectorReservation, DeviceVariable
    from tests.axe import Axe

    cp = Charger201(live_server_proc.ws_url, "WEB-201")
    assert (
        cp.call(
            "BootNotification",
            {"reason": "PowerUp", "chargingStation": {"model": "M1", "vendorName": "V"}},
        )["status"]
        == "Accepted"
    )
    cp.call(
        "StatusNotification",
        {
            "timestamp": "2026-11-20T10:00:00Z",
            "connectorStatus": "Available",
            "evseId": 1,
            "connectorId": 1,
        },
    )
    cp.call(
        "NotifyReport",
        {
            "requestId": 1,
            "generatedAt": "2026-11-20T10:00:00Z",
            "seqNo": 0,
            "reportData": [
                {
                    "component": {"name": "OCPPCommCtrlr"},
                    "variable": {"name": "HeartbeatInterval"},
                    "variableAttribute": [
                        {"type": "Actual", "value": "60", "mutability": "ReadWrite"}
                    ],
                    "variableCharacteristics": {
                        "dataType": "integer",
                        "supportsMonitoring": False,
                        "unit": "s",
                    },
                }
            ],
        },
    )
    cp.serve()
    base = live_server_proc.url
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
            )
            page = browser.new_page()
            page.goto(f"{base}/accounts/login/")
            page.fill("#id_username", "host201@example.com")
            page.fill("#id_password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")

            page.goto(f"{base}/chargers/WEB-201/reservations/")
            page.select_option("#id_connector_id", "1")
            page.fill("#id_id_tag", "04A1B2C3")
            page.fill("#id_minutes", "20")
            page.click("button[type=submit]:text-is('Reserve')")
            page.wait_for_selector("text=Reservation: the charger answered Accepted.")
            assert page.locator("td[data-label=Status]").first.inner_text().strip() == "Active"
            results = Axe().run(page)
            assert results.violations_count == 0, results.generate_report()

            page.goto(f"{base}/chargers/WEB-201/device-model/")
            page.fill("input[aria-label='New value of OCPPCommCtrlr.HeartbeatInterval']", "120")
            page.click("form.inline button[type=submit]")
            page.wait_for_selector("text=Set OCPPCommCtrlr.HeartbeatInterval: RebootRequired.")
            results = Axe().run(page)
            assert results.violations_count == 0, results.generate_report()
            browser.close()
    finally:
        cp.ws.close()
    assert [a for a, _ in cp.calls if a in ("ReserveNow", "SetVariables")] == [
        "ReserveNow",
        "SetVariables",
    ]
    assert ConnectorReservation.objects.get(charger=site).status == "active"
    assert DeviceVariable.objects.get(charger=site, variable="HeartbeatInterval").value == "120"
