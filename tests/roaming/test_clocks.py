"""OCPI's clock rules (types "DateTime", transport_and_format "Pagination"): a push older than
what we hold changes nothing; the list endpoints' `date_from` (inclusive) and `date_to`
(exclusive) honour an offset, also one whose "+" the partner left unescaped in the URL, and a
value that is no DateTime is 2001 on every list, over HTTP 200: the request reached the OCPI
layer, to which "an HTTP error status code MUST NOT be returned" (status_codes)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from authorization.models import Token
from chargers.models import ChargingSession
from roaming.models import Cdr
from tests.roaming import spec
from tests.roaming.conftest import auth, connected_partner

URL = "/ocpi/2.2.1/tokens/NL/TNM/012345678"


def _send(client, method, url, body):
    return client.generic(
        method, url, json.dumps(body), content_type="application/json", HTTP_AUTHORIZATION=auth()
    )


def test_a_token_put_or_patch_older_than_the_one_held_changes_nothing(client, operator):
    connected_partner(operator["org"], country_code="NL", party_id="TNM")
    example = spec.example("token_put_example.json")  # last_updated 2015-06-29T22:39:09Z
    blocked = {**example, "valid": False, "last_updated": "2015-06-30T08:00:00Z"}
    assert _send(client, "PUT", URL, blocked).status_code == 201
    # The first PUT, retried or delivered after the block: answered 1000, the card stays blocked.
    late = _send(client, "PUT", URL, example)
    assert late.status_code == 200 and late.json()["status_code"] == 1000
    late_patch = _send(client, "PATCH", URL, {"valid": True, "last_updated": "2015-06-29T23:00Z"})
    assert late_patch.status_code == 200 and late_patch.json()["status_code"] == 1000
    assert Token.objects.get(uid="012345678").valid is False
    held = client.get(URL, HTTP_AUTHORIZATION=auth()).json()["data"]
    assert (held["valid"], held["last_updated"]) == (False, "2015-06-30T08:00:00Z")
    # Newer is taken (here with an offset: 10:00:01+02:00 is 08:00:01 UTC).
    newer = {"valid": True, "last_updated": "2015-06-30T10:00:01+02:00"}
    assert _send(client, "PATCH", URL, newer).status_code == 200
    assert Token.objects.get(uid="012345678").valid is True


def _cdr_at(operator, partner, when: datetime) -> Cdr:
    session = ChargingSession.objects.create(
        charger=operator["cp_public"],
        connector_id=1,
        transaction_id=4711,
        started_at=when,
        stopped_at=when,
        status="completed",
    )
    cdr = Cdr.objects.create(session=session, partner=partner, cdr_id="CDR-4711", data={"id": "x"})
    Cdr.objects.filter(pk=cdr.pk).update(created_at=when)
    return cdr


def test_date_from_and_date_to_read_an_offset_also_with_its_plus_unescaped(
    client, operator, partner
):
    _cdr_at(operator, partner, datetime(2026, 3, 29, 8, 0, tzinfo=UTC))  # 10:00 at +02:00

    def ids(query: str) -> list[str]:
        answer = client.get(f"/ocpi/2.2.1/cdrs?{query}", HTTP_AUTHORIZATION=auth())
        assert answer.status_code == 200, answer.json()
        return [c["id"] for c in answer.json()["data"]]

    for at in ("2026-03-29T10:00:00%2B02:00", "2026-03-29T10:00:00+02:00"):
        assert ids(f"date_from={at}") == ["x"]  # inclusive
        assert ids(f"date_to={at}") == []  # exclusive
    # Fractional seconds of 7 digits (.NET's), and no zone: UTC.
    assert ids("date_from=2026-03-29T08:00:00.1234567Z") == []
    assert ids("date_to=2026-03-29T08:00:00.1234567") == ["x"]


@pytest.mark.parametrize("module", ["locations", "tariffs", "sessions", "cdrs"])
@pytest.mark.parametrize("bad", ["yesterday", "2026-02-30T00:00:00Z", "2026-03-29T24:00:00Z"])
def test_a_date_filter_that_is_no_datetime_is_2001_never_a_500(client, partner, module, bad):
    answer = client.get(f"/ocpi/2.2.1/{module}?date_from={bad}", HTTP_AUTHORIZATION=auth())
    assert (answer.status_code, answer.json()["status_code"]) == (200, 2001)
    assert answer.json()["status_message"] == "date_from is not a DateTime"
