"""PMS adapters behind one interface: listings, reservations updated since a cursor, webhooks.

Written from each vendor's public API documentation (docs/pms.md names the pages):
- Guesty Open API: OAuth2 client credentials at /oauth2/token, GET /v1/listings and
  GET /v1/reservations (skip/limit pages, a lastUpdatedAt $gte filter); webhooks are signed the
  Svix way (svix-id, svix-timestamp, svix-signature "v1,<base64 HMAC-SHA256>").
- Hospitable Public API v2: a personal access token (Bearer), GET /v2/properties and
  GET /v2/reservations?properties[]=... (page/per_page, date window, include=guest); webhooks carry
  a "Signature" header, the hex HMAC-SHA256 of the body with the webhook secret.
- Track: HTTP Basic with the API key and secret on the customer's host, HAL pages of
  /api/pms/units and /api/pms/reservations (updatedSince); Track documents no signed webhooks, so
  it is pulled only.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import httpx

from backoffice import outbound

TIMEOUT_S = 20.0


class PmsError(Exception):
    """A call failed; `message` is for hosts ("Guesty returned 401: ..."), `retry_after` in seconds."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, auth: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after
        self.auth = auth


@dataclass(frozen=True)
class PmsListing:
    external_id: str
    name: str


@dataclass(frozen=True)
class PmsReservation:
    external_id: str
    listing_id: str
    check_in: datetime
    check_out: datetime
    confirmed: bool
    cancelled: bool
    guest_name: str = ""
    guest_email: str = ""
    guest_phone: str = ""
    updated_at: str = ""


class Adapter(Protocol):
    vendor: str

    def listings(self) -> Iterator[PmsListing]: ...

    def reservations(self, *, since: str, now: datetime) -> Iterator[PmsReservation]: ...

    def verify_webhook(self, headers: dict[str, str], body: bytes) -> bool: ...

    def webhook_reservation(self, body: bytes) -> PmsReservation | None: ...


def _words(vendor: str, response: httpx.Response) -> PmsError:
    status = response.status_code
    if status == 401:
        return PmsError(
            f"{vendor} returned 401: the API credentials were revoked or are wrong. "
            "Enter new ones for this integration.",
            auth=True,
        )
    if status == 403:
        return PmsError(
            f"{vendor} returned 403: these credentials may not read listings and reservations. "
            "Give the API user read access in your PMS.",
            auth=True,
        )
    if status == 429:
        try:
            retry = float(response.headers.get("Retry-After", "60"))
        except ValueError:
            retry = 60.0
        return PmsError(
            f"{vendor} returned 429: too many requests. We wait {int(retry)} s and try again.",
            retry_after=retry,
        )
    if status >= 500:
        return PmsError(
            f"{vendor} returned {status}: their service has a problem. We try again later.",
            retry_after=300.0,
        )
    return PmsError(f"{vendor} returned {status}: {response.text[:160]}")


def _get(client: httpx.Client, vendor: str, url: str, **kwargs: Any) -> Any:
    try:
        response = client.get(url, **kwargs)
    except httpx.TimeoutException:
        raise PmsError(
            f"{vendor} did not answer within {TIMEOUT_S:.0f} seconds.", retry_after=120.0
        ) from None
    except httpx.HTTPError as exc:
        raise PmsError(outbound.failure_words(exc, vendor), retry_after=120.0) from None
    if response.status_code != 200:
        raise _words(vendor, response)
    try:
        return response.json()
    except ValueError:
        raise PmsError(f"{vendor} answered with something that is not JSON.") from None


def _aware(value: str, zone: ZoneInfo, at: time) -> datetime:
    """Parse an ISO date-time (UTC if no offset) or a date (at `at` in `zone`)."""
    if "T" in value:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return datetime.combine(date.fromisoformat(value[:10]), at, tzinfo=zone)


def _hmac_equal(expected: bytes, given: str) -> bool:
    return hmac.compare_digest(expected, given.encode())


# -- Guesty ------------------------------------------------------------------------------------


class Guesty:
    vendor = "Guesty"
    base = "https://open-api.guesty.com"
    page = 100

    def __init__(
        self, credentials: dict[str, str], client: httpx.Client, *, zone: ZoneInfo
    ) -> None:
        self.credentials, self.client, self.zone = credentials, client, zone
        self._token = ""

    def _headers(self) -> dict[str, str]:
        if not self._token:
            try:
                response = self.client.post(
                    f"{self.base}/oauth2/token",
                    data={
                        "grant_type": "client_credentials",
                        "scope": "open-api",
                        "client_id": self.credentials.get("client_id", ""),
                        "client_secret": self.credentials.get("client_secret", ""),
                    },
                )
            except httpx.HTTPError as exc:
                raise PmsError(outbound.failure_words(exc, "Guesty"), retry_after=120.0) from None
            if response.status_code != 200:
                raise _words(self.vendor, response)
            self._token = str(response.json().get("access_token", ""))
        return {"Authorization": f"Bearer {self._token}", "Accept": "application/json"}

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        skip = 0
        while True:
            data = _get(
                self.client,
                self.vendor,
                f"{self.base}{path}",
                headers=self._headers(),
                params={**params, "limit": self.page, "skip": skip},
            )
            results = data.get("results") or []
            yield from results
            skip += len(results)
            if not results or skip >= int(data.get("count", skip)):
                return

    def listings(self) -> Iterator[PmsListing]:
        for item in self._pages("/v1/listings", {"fields": "_id title nickname"}):
            yield PmsListing(
                str(item["_id"]), str(item.get("nickname") or item.get("title") or item["_id"])
            )

    def _reservation(self, item: dict[str, Any]) -> PmsReservation:
        guest = item.get("guest") or {}
        status = str(item.get("status", "")).lower()
        return PmsReservation(
            external_id=str(item["_id"]),
            listing_id=str(item.get("listingId", "")),
            check_in=_aware(str(item["checkIn"]), self.zone, time(15)),
            check_out=_aware(str(item["checkOut"]), self.zone, time(11)),
            confirmed=status == "confirmed",
            cancelled=status in ("canceled", "cancelled", "declined", "expired"),
            guest_name=str(guest.get("fullName", "")),
            guest_email=str(guest.get("email", "") or ""),
            guest_phone=str(guest.get("phone", "") or ""),
            updated_at=str(item.get("lastUpdatedAt", "")),
        )

    def reservations(self, *, since: str, now: datetime) -> Iterator[PmsReservation]:
        params: dict[str, Any] = {
            "fields": "_id listingId checkIn checkOut status guest lastUpdatedAt confirmationCode",
            "sort": "lastUpdatedAt",
        }
        if since:
            params["filters"] = json.dumps(
                [{"field": "lastUpdatedAt", "operator": "$gte", "value": since}]
            )
        for item in self._pages("/v1/reservations", params):
            yield self._reservation(item)

    def verify_webhook(self, headers: dict[str, str], body: bytes) -> bool:
        secret = self.credentials.get("webhook_secret", "")
        msg_id, stamp, signatures = (
            headers.get("svix-id", ""),
            headers.get("svix-timestamp", ""),
            headers.get("svix-signature", ""),
        )
        if not (secret and msg_id and stamp and signatures):
            return False
        try:
            key = base64.b64decode(secret.removeprefix("whsec_"))
            if abs(datetime.now(UTC).timestamp() - int(stamp)) > 300:  # replayed or clock far off
                return False
        except ValueError:
            return False
        expected = base64.b64encode(
            hmac.new(key, f"{msg_id}.{stamp}.".encode() + body, hashlib.sha256).digest()
        )
        return any(_hmac_equal(expected, part.partition(",")[2]) for part in signatures.split())

    def webhook_reservation(self, body: bytes) -> PmsReservation | None:
        payload = json.loads(body)
        item = payload.get("reservation") if isinstance(payload, dict) else None
        return self._reservation(item) if isinstance(item, dict) and "_id" in item else None


# -- Hospitable --------------------------------------------------------------------------------


class Hospitable:
    vendor = "Hospitable"
    base = "https://public.api.hospitable.com/v2"

    def __init__(
        self, credentials: dict[str, str], client: httpx.Client, *, zone: ZoneInfo
    ) -> None:
        self.credentials, self.client, self.zone = credentials, client, zone
        self._properties: list[str] = []

    def _headers(self) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.credentials.get('token', '')}",
            "Accept": "application/json",
        }

    def _pages(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            data = _get(
                self.client,
                self.vendor,
                f"{self.base}{path}",
                headers=self._headers(),
                params={**params, "page": page, "per_page": 100},
            )
            yield from data.get("data") or []
            meta = data.get("meta") or {}
            if page >= int(meta.get("last_page", page)):
                return
            page += 1

    def listings(self) -> Iterator[PmsListing]:
        for item in self._pages("/properties", {}):
            self._properties.append(str(item["id"]))
            yield PmsListing(
                str(item["id"]), str(item.get("name") or item.get("public_name") or item["id"])
            )

    def _reservation(self, item: dict[str, Any], listing_id: str = "") -> PmsReservation:
        guest = item.get("guest") or {}
        status = item.get("reservation_status") or {}
        category = str(
            (status.get("current") or {}).get("category") or item.get("status", "")
        ).lower()
        phones = guest.get("phone_numbers") or []
        props = item.get("properties") or []
        listing = listing_id or (
            str(props[0].get("id")) if props and isinstance(props[0], dict) else ""
        )
        return PmsReservation(
            external_id=str(item["id"]),
            listing_id=listing,
            check_in=_aware(str(item.get("check_in") or item["arrival_date"]), self.zone, time(15)),
            check_out=_aware(
                str(item.get("check_out") or item["departure_date"]), self.zone, time(11)
            ),
            confirmed=category in ("accepted", "confirmed"),
            cancelled=category in ("cancelled", "canceled", "declined", "expired"),
            guest_name=" ".join(p for p in (guest.get("first_name"), guest.get("last_name")) if p),
            guest_email=str(guest.get("email") or ""),
            guest_phone=str(phones[0]) if phones else "",
        )

    def reservations(self, *, since: str, now: datetime) -> Iterator[PmsReservation]:
        # Hospitable filters by stay dates, not by change time: pull the window that can still
        # grant access (yesterday to a year ahead) every time; `since` is not used.
        if not self._properties:
            list(self.listings())
        for property_id in self._properties:
            params = {
                "properties[]": property_id,
                "include": "guest,properties",
                "start_date": (now - timedelta(days=1)).date().isoformat(),
                "end_date": (now + timedelta(days=365)).date().isoformat(),
            }
            for item in self._pages("/reservations", params):
                yield self._reservation(item, property_id)

    def verify_webhook(self, headers: dict[str, str], body: bytes) -> bool:
        secret = self.credentials.get("webhook_secret", "")
        given = headers.get("signature", "")
        if not (secret and given):
            return False
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest().encode()
        return _hmac_equal(expected, given)

    def webhook_reservation(self, body: bytes) -> PmsReservation | None:
        payload = json.loads(body)
        item = payload.get("data") if isinstance(payload, dict) else None
        if (
            not isinstance(item, dict)
            or "id" not in item
            or not str(payload.get("action", "")).startswith("reservation")
        ):
            return None
        return self._reservation(item)


# -- Track -------------------------------------------------------------------------------------


class Track:
    vendor = "Track"

    def __init__(
        self, credentials: dict[str, str], client: httpx.Client, *, zone: ZoneInfo, base_url: str
    ) -> None:
        self.credentials, self.client, self.zone = credentials, client, zone
        self.base = base_url.rstrip("/")
        self.auth = httpx.BasicAuth(credentials.get("key", ""), credentials.get("secret", ""))

    def _pages(self, path: str, key: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        page = 1
        while True:
            data = _get(
                self.client,
                self.vendor,
                f"{self.base}{path}",
                auth=self.auth,
                params={**params, "page": page, "size": 100},
            )
            yield from (data.get("_embedded") or {}).get(key) or []
            if page >= int(data.get("page_count", page)):
                return
            page += 1

    def listings(self) -> Iterator[PmsListing]:
        for item in self._pages("/api/pms/units", "units", {}):
            yield PmsListing(str(item["id"]), str(item.get("name") or item["id"]))

    def reservations(self, *, since: str, now: datetime) -> Iterator[PmsReservation]:
        params = {"updatedSince": since} if since else {}
        for item in self._pages("/api/pms/reservations", "reservations", params):
            contact = ((item.get("_embedded") or {}).get("contact")) or {}
            status = str(item.get("status", "")).lower()
            yield PmsReservation(
                external_id=str(item["id"]),
                listing_id=str(item.get("unitId", "")),
                check_in=_aware(str(item["arrivalDate"]), self.zone, time(15)),
                check_out=_aware(str(item["departureDate"]), self.zone, time(11)),
                confirmed=status in ("confirmed", "checked in"),
                cancelled=status == "cancelled",
                guest_name=" ".join(
                    p for p in (contact.get("firstName"), contact.get("lastName")) if p
                ),
                guest_email=str(contact.get("primaryEmail") or ""),
                guest_phone=str(contact.get("cellPhone") or ""),
                updated_at=str(item.get("updatedAt", "")),
            )

    def verify_webhook(self, headers: dict[str, str], body: bytes) -> bool:
        return False  # no signed webhooks documented: pulled only

    def webhook_reservation(self, body: bytes) -> PmsReservation | None:
        return None


def adapter_for(
    vendor: str,
    credentials: dict[str, str],
    client: httpx.Client,
    *,
    timezone: str,
    base_url: str = "",
) -> Adapter:
    """Return the adapter of `vendor` ("guesty", "hospitable", "track")."""
    zone = ZoneInfo(timezone)
    if vendor == "guesty":
        return Guesty(credentials, client, zone=zone)
    if vendor == "hospitable":
        return Hospitable(credentials, client, zone=zone)
    if vendor == "track":
        return Track(credentials, client, zone=zone, base_url=base_url)
    raise ValueError(f"unknown PMS {vendor!r}")
