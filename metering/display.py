"""What every surface shows of a session's signed meter values: the session API (through the
chargers provider `signed_meter_values`), the host's session page, the guest receipt, the
driver's history, the assistant and the OCPI CDR's url, and the transparency file behind them.

The transparency file is reached by a link that carries a signed token of the session id
(django.core.signing, salt below): whoever has the receipt, the driver's history, the host's
page or the CDR holds the link; nobody can make one for another session.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

from chargers.models import ChargingSession

from . import transparency
from .selectors import SignedSummary, session_signature, session_signatures

SALT = "metering.transparency"
# The links of today: one per session, no timestamp (a salt of their own, so a link of either
# kind never passes for the other).
LINK_SALT = "metering.transparency.link"


def transparency_token(session_id: int) -> str:
    # Without a timestamp: one session has one link, the same in the page, the receipt and the
    # email whenever each was made (signing.dumps stamped the second it was made).
    return signing.Signer(salt=LINK_SALT).sign_object(int(session_id))


def session_id_of(token: str) -> int | None:
    """Return the session id a transparency link names, or None for a made-up one. Links made
    before they lost their timestamp (signing.dumps) still open."""
    try:
        value = signing.Signer(salt=LINK_SALT).unsign_object(token)
    except signing.BadSignature:
        try:
            value = signing.loads(token, salt=SALT)
        except signing.BadSignature:
            return None
    return value if isinstance(value, int) else None


def transparency_path(session_id: int) -> str:
    return reverse("metering:transparency", args=[transparency_token(session_id)])


def transparency_url(session_id: int) -> str:
    """Return the link for partners (absolute when SITE_URL is set, else the path)."""
    return f"{settings.SITE_URL}{transparency_path(session_id)}"


def _records(summary: SignedSummary) -> list[tuple[str, str]]:
    context = {"start": "Transaction.Begin", "end": "Transaction.End"}
    return [
        (context.get(value.nature, "Sample.Periodic"), value.ocmf)
        for value in summary.values
        # Only what reads as an OCMF record: a value metering could not read is kept as sent
        # (maybe Base64 or another format), which neither OCPI's OCMF nor the software takes.
        if value.ocmf.startswith("OCMF|")
    ]


def signed_meter_values(session: ChargingSession) -> dict[str, Any] | None:
    """Return the session API's `signed_meter_values`, which every page shows too (registered
    as chargers' provider): metering's summary {status, reason, start, end, public_key,
    signing_method, encoding_method, values, energy_wh}, with `text` (the status in plain
    words), `transparency_url` (the transparency file; null without OCMF records) and
    `how_to_check` (one line for the driver). None: nothing signed, no meter key registered."""
    return _shown(session, session_signature(session))


def signed_meter_values_many(
    sessions: Sequence[ChargingSession],
) -> dict[int, dict[str, Any] | None]:
    """`signed_meter_values` of each session (by pk) in a constant number of queries (the
    session list API; registered as chargers' provider)."""
    summaries = session_signatures(sessions)
    return {s.pk: _shown(s, summaries[s.pk]) for s in sessions}


def _shown(session: ChargingSession, summary: SignedSummary | None) -> dict[str, Any] | None:
    if summary is None:
        return None
    has_records = bool(_records(summary))
    data = summary.as_dict()
    data["text"] = transparency.status_text(summary.status)
    data["transparency_url"] = transparency_path(session.pk) if has_records else None
    data["how_to_check"] = transparency.HOW_TO_CHECK if has_records else ""
    # The signed figures in kWh, as pages show them (energy only when start and end verify).
    data["start_kwh"] = _kwh(summary.start.value_wh if summary.start else None)
    data["end_kwh"] = _kwh(summary.end.value_wh if summary.end else None)
    data["energy_kwh"] = _kwh(summary.energy_wh)
    return data


def _kwh(wh: Decimal | None) -> str | None:
    return None if wh is None else str((wh / 1000).quantize(Decimal("0.001")))


def transparency_document(session: ChargingSession) -> str | None:
    """Return the session's transparency XML, or None when it has no OCMF record."""
    summary = session_signature(session)
    records = _records(summary) if summary is not None else []
    if summary is None or not records:
        return None
    return transparency.transparency_xml(
        transaction_id=session.pk, values=records, public_key_hex=summary.public_key
    )


def cdr_signed_records(session: ChargingSession) -> tuple[list[tuple[str, str]], str] | None:
    """Return the OCMF records [(context, record)] and the meter key (hex DER) for the CDR."""
    summary = session_signature(session)
    if summary is None:
        return None
    records = _records(summary)
    return (records, summary.public_key) if records else None
