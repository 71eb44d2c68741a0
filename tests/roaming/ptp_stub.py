"""An independent payment terminal provider (PTP) written from the OCPI 2.3.0 text (mod_payments,
mod_commands, credentials), for tests over real HTTP.

Like emsp_stub it imports nothing from the project. It registers as role PTP, serves its
terminals (the Payments module's Sender interface: GET, and the CPO's PATCH assigning locations
and EVSEs), receives locations, tariffs, sessions and CDRs, and as a client pushes a terminal,
starts a session with an authorization reference (mod_payments "Transaction") and posts its
financial advice confirmation after capturing at its payment service provider.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from tests.roaming.emsp_stub import EmspStub, _now


class PtpStub(EmspStub):
    COUNTRY_CODE = "AT"
    PARTY_ID = "PTP"
    ROLE = "PTP"
    NAME = "Stub Payments"
    # terminology "Roles and modules": a PTP receives locations, tariffs, sessions and CDRs,
    # sends commands, and owns the Payments module's terminals (its Sender interface).
    ENDPOINTS = (
        ("credentials", "RECEIVER"),
        ("locations", "RECEIVER"),
        ("tariffs", "RECEIVER"),
        ("sessions", "RECEIVER"),
        ("cdrs", "RECEIVER"),
        ("commands", "SENDER"),
        ("payments", "SENDER"),
    )

    def __init__(self) -> None:
        super().__init__(versions=("2.3.0",))
        self.terminals: dict[str, dict] = {}

    def terminal(self, terminal_id: str | None = None, **fields) -> dict:
        """A Terminal object (mod_payments "Terminal Object") as the PTP ships it."""
        terminal_id = terminal_id or "term-" + secrets.token_hex(6)
        data = {
            "terminal_id": terminal_id,
            "customer_reference": "Stub CPO",
            "address": "Street 1",
            "city": "Vienna",
            "country": "AUT",
            "coordinates": {"latitude": "48.208174", "longitude": "16.373819"},
            "invoice_creator": "CPO",
            "location_ids": [],
            "last_updated": _now(),
            **fields,
        }
        self.terminals[terminal_id] = data
        return data

    def route_module(self, handler, method: str, version: str, rel: str, body) -> None:
        if rel.startswith("/payments/terminals/") and method in ("PATCH", "PUT"):
            # The CPO assigns locations / EVSEs (PATCH) or updates the terminal (PUT).
            terminal_id = rel.rsplit("/", 1)[-1]
            if terminal_id not in self.terminals:
                handler._send(
                    404, {"status_code": 2000, "status_message": "unknown", "timestamp": _now()}
                )
                return
            self.terminals[terminal_id] = {**self.terminals[terminal_id], **body}
            handler._ok()
        elif rel.startswith("/payments/terminals/") and method == "GET":
            handler._ok(self.terminals[rel.rsplit("/", 1)[-1]])
        elif rel.rstrip("/") == "/payments/terminals" and method == "GET":
            handler._ok(list(self.terminals.values()))
        else:
            super().route_module(handler, method, version, rel, body)

    # -- the PTP as a client -------------------------------------------------------------------

    def payments_url(self, path: str) -> str:
        return self.cpo_endpoints[("payments", "RECEIVER")].rstrip("/") + path

    def push_terminal(self, terminal: dict) -> tuple[int, dict]:
        """POST a new terminal to the CPO (mod_payments "POST Terminal Method")."""
        status, body, _ = self.request("POST", self.payments_url("/terminals"), terminal)
        return status, body

    def start_session(
        self,
        *,
        location_id: str,
        evse_uid: str,
        authorization_reference: str,
        response_path: str = "s1",
        uid: str = "PTP-CARD-0001",
    ) -> tuple[int, dict]:
        """The driver accepted the tariff and the PSP holds the pre-authorization: START_SESSION
        with the authorization reference (mod_payments "Transaction")."""
        token = {
            "country_code": self.COUNTRY_CODE,
            "party_id": self.PARTY_ID,
            "uid": uid,
            "type": "AD_HOC_USER",
            "contract_id": f"{self.COUNTRY_CODE}-{self.PARTY_ID}-{uid}",
            "issuer": self.NAME,
            "valid": True,
            "whitelist": "NEVER",
            "last_updated": _now(),
        }
        url = self.cpo_endpoints[("commands", "RECEIVER")].rstrip("/") + "/START_SESSION"
        status, body, _ = self.request(
            "POST",
            url,
            {
                "response_url": f"{self.base}/2.3.0/commands/START_SESSION/{response_path}",
                "token": token,
                "location_id": location_id,
                "evse_uid": evse_uid,
                "authorization_reference": authorization_reference,
            },
        )
        return status, body

    def financial_advice(
        self, *, authorization_reference: str, captured: dict, status: str = "SUCCESS"
    ) -> dict:
        """A Financial Advice Confirmation after the capture at the PSP (mod_payments)."""
        amount = captured.get("incl_vat", captured.get("before_taxes"))
        data = {
            "id": "fac-" + secrets.token_hex(6),
            "authorization_reference": authorization_reference,
            "total_costs": captured,
            "currency": "EUR",
            "eft_data": [
                "Mastercard",
                "AID: 1234",
                "Nr: **** **** **** 1234",
                f"Amount: EUR {amount}",
            ],
            "capture_status_code": status,
            "capture_status_message": "Capture successful at PSP",
            "last_updated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return data

    def post_financial_advice(self, advice: dict) -> tuple[int, dict]:
        url = self.payments_url("/financial-advice-confirmations")
        status, body, _ = self.request("POST", url, advice)
        return status, body
