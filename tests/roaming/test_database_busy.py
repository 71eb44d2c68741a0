"""An OCPI call the database cannot finish in time (here a row lock held past PostgreSQL's
lock_timeout; in production also a database out of reach, an exhausted connection pool, a
deadlock) is answered with the OCPI envelope (status_code 3000, a plain status_message) over HTTP
200, as status_codes wants for a call that reached the OCPI layer, and Retry-After, so the partner
sends it again; nothing of it is saved, and the retry is taken."""

from __future__ import annotations

import json

import pytest
from django.test import Client

from authorization.models import MobilityServiceProvider
from roaming.models import PushedToken
from tests.backoffice.dependencies_down import rows_held_too_long
from tests.roaming.conftest import auth, connected_partner

pytestmark = pytest.mark.django_db(transaction=True)


TOKEN = {
    "country_code": "DE",
    "party_id": "EMS",
    "uid": "RFID0001",
    "type": "RFID",
    "contract_id": "DE-EMS-C0001",
    "issuer": "Stub",
    "valid": True,
    "whitelist": "ALWAYS",
    "last_updated": "2024-01-01T00:00:00Z",
}


def test_a_token_push_the_database_gives_up_on_is_a_3000_to_retry(operator, postgresql_only):
    connected_partner(operator["org"], base="http://127.0.0.1:9/2.2.1", outgoing_token="out")
    client = Client(raise_request_exception=False)

    def push():
        return client.put(
            "/ocpi/2.2.1/tokens/DE/EMS/RFID0001",
            json.dumps(TOKEN),
            content_type="application/json",
            HTTP_AUTHORIZATION=auth(),
        )

    assert MobilityServiceProvider.objects.exists()
    with rows_held_too_long(MobilityServiceProvider.objects.all()):
        busy = push()
    # It reached the OCPI layer: no HTTP error status (status_codes), 3000 says ours failed.
    assert busy.status_code == 200
    assert busy["Retry-After"] == "5"
    body = busy.json()
    assert body["status_code"] == 3000 and body["timestamp"]
    assert body["status_message"].startswith("The database is busy or out of reach")
    assert not PushedToken.objects.exists()

    assert push().status_code == 201
