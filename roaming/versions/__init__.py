"""The OCPI versions we speak, each one module with one pure function per module (location,
tariff, session, CDR, credentials, ...) over the same domain facts (roaming.mapping).

`of(version)` returns the module for a partner's version; everything that writes an OCPI
object asks it, so a partner on 2.2.1 and one on 2.3.0 get the same data in their version's
shapes. Pure: no Django (import-linter).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol

from .. import mapping, ocpi
from . import v221, v230


class Dialect(Protocol):
    VERSION: str
    # (module identifier, our interface role) of every endpoint we implement in this version.
    ENDPOINTS: tuple[tuple[str, str], ...]

    def price(
        self, before_tax: Decimal, tax: Decimal | None, percent: Decimal | None
    ) -> dict[str, Any]: ...

    def credentials(self, facts: mapping.CredentialsFacts) -> dict[str, Any]: ...

    def location(self, facts: mapping.LocationFacts, *, party: mapping.Party) -> dict[str, Any]: ...

    def token(self, facts: mapping.IssuedTokenFacts) -> dict[str, Any]: ...

    def evse_status(self, evse: mapping.EvseFacts) -> dict[str, Any]: ...

    def tariff(self, rate: mapping.RateFacts, *, party: mapping.Party) -> dict[str, Any]: ...

    def session(self, facts: mapping.SessionFacts, *, party: mapping.Party) -> dict[str, Any]: ...

    def cdr(
        self,
        facts: mapping.SessionFacts,
        *,
        cdr_id: str,
        location: dict[str, Any],
        rate: mapping.RateFacts | None,
        signed: mapping.SignedDataFacts | None,
        party: mapping.Party,
        created: datetime,
        invoice_reference_id: str = "",
    ) -> dict[str, Any]: ...


_DIALECTS: dict[str, Dialect] = {ocpi.V221: v221, ocpi.V230: v230}


def of(version: str) -> Dialect:
    """Return the mapping of OCPI `version`; a partner registered before versions were stored
    (empty) speaks 2.2.1, the only version we spoke then."""
    return _DIALECTS.get(version or ocpi.V221, v221)


def supported(version: str) -> bool:
    return version in _DIALECTS


def convert(module: str, body: Any, *, written_in: str, to: str) -> Any:
    """Return an object we wrote in version `written_in` for a partner now on version `to`:
    2.2.1 Sessions and CDRs become their 2.3.0 selves (v230.from_221) and 2.3.0 ones their
    2.2.1 selves (v221.from_230); the other objects are the same in both versions."""
    written_in = written_in or ocpi.V221
    if written_in == ocpi.V221 and to == ocpi.V230:
        return v230.from_221(module, body)
    if written_in == ocpi.V230 and to == ocpi.V221:
        return v221.from_230(module, body)
    return body
