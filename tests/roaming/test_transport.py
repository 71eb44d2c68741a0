"""Transport rules of every OCPI endpoint: 401, request ids, routing headers, invalid JSON, log."""

import base64

import pytest

from roaming import services
from roaming.models import OcpiLog
from tests.factories import OrganizationFactory


def _auth(token: str) -> str:
    return "Token " + base64.b64encode(token.encode()).decode()


@pytest.fixture
def invited(db):
    return services.partner_invite(organization=OrganizationFactory(), name="P")


def test_missing_or_unknown_token_is_401_with_an_ocpi_body(client, invited):
    response = client.get("/ocpi/versions")
    assert response.status_code == 401 and response.json()["status_code"] == 2000
    response = client.get("/ocpi/versions", HTTP_AUTHORIZATION=_auth("not-a-token"))
    assert response.status_code == 401


def test_request_and_correlation_ids_and_routing_headers_are_answered(client, invited):
    _, token_a = invited
    response = client.get(
        "/ocpi/versions",
        HTTP_AUTHORIZATION=_auth(token_a),
        HTTP_X_REQUEST_ID="req-1",
        HTTP_X_CORRELATION_ID="corr-1",
        HTTP_OCPI_FROM_COUNTRY_CODE="DE",
        HTTP_OCPI_FROM_PARTY_ID="EMS",
        HTTP_OCPI_TO_COUNTRY_CODE="NL",
        HTTP_OCPI_TO_PARTY_ID="EVB",
    )
    assert response.status_code == 200
    assert response["X-Request-ID"] == "req-1" and response["X-Correlation-ID"] == "corr-1"
    assert (response["OCPI-to-country-code"], response["OCPI-to-party-id"]) == ("DE", "EMS")
    assert (response["OCPI-from-country-code"], response["OCPI-from-party-id"]) == ("NL", "EVB")
    body = response.json()
    assert body["status_code"] == 1000 and body["timestamp"].endswith("Z")
    assert body["data"][0] == {"version": "2.2.1", "url": "http://testserver/ocpi/2.2.1"}


def test_invalid_json_is_http_400_and_the_exchange_is_logged_without_the_token(client, invited):
    partner, token_a = invited
    response = client.post(
        "/ocpi/2.2.1/credentials",
        data=b"{not json",
        content_type="application/json",
        HTTP_AUTHORIZATION=_auth(token_a),
    )
    assert response.status_code == 400 and response.json()["status_code"] == 2000
    row = OcpiLog.objects.get(partner=partner, method="POST")
    assert (row.direction, row.module, row.http_status, row.ocpi_status) == (
        "in",
        "credentials",
        400,
        2000,
    )


def test_a_credentials_post_without_an_emsp_role_is_refused(client, invited):
    _, token_a = invited
    body = {
        "token": "abc",
        "url": "https://emsp.example/versions",
        "roles": [
            {
                "role": "CPO",
                "party_id": "XXX",
                "country_code": "NL",
                "business_details": {"name": "x"},
            }
        ],
    }
    response = client.post(
        "/ocpi/2.2.1/credentials",
        data=body,
        content_type="application/json",
        HTTP_AUTHORIZATION=_auth(token_a),
    )
    assert response.json()["status_code"] == 3003


def test_the_ocpi_log_and_sent_pushes_are_kept_for_the_log_retention(invited):
    from datetime import timedelta

    from django.utils import timezone

    from roaming.models import Delivery

    partner, _ = invited
    old = OcpiLog.objects.create(
        partner=partner, direction="in", method="GET", url="/ocpi/versions"
    )
    new = OcpiLog.objects.create(
        partner=partner, direction="in", method="GET", url="/ocpi/versions"
    )
    OcpiLog.objects.filter(pk=old.pk).update(created_at=timezone.now() - timedelta(days=91))
    sent = services.delivery_enqueue(
        partner=partner, module="cdrs", object_key="cdr:1", method="POST", path="", body={}
    )
    Delivery.objects.filter(pk=sent.pk).update(
        status="sent", sent_at=timezone.now() - timedelta(days=91)
    )
    waiting = services.delivery_enqueue(
        partner=partner, module="cdrs", object_key="cdr:2", method="POST", path="", body={}
    )
    Delivery.objects.filter(pk=waiting.pk).update(created_at=timezone.now() - timedelta(days=91))

    assert services.log_cleanup(retention_days=90) == 2

    assert list(OcpiLog.objects.values_list("pk", flat=True)) == [new.pk]
    assert list(Delivery.objects.values_list("pk", flat=True)) == [
        waiting.pk
    ]  # never a push still waiting


def test_an_unknown_ocpi_path_is_a_404_in_the_envelope_not_a_page(client, db):
    for path in ("/ocpi/receiver/cdrs/C1", "/ocpi/2.2.1/nothing", "/ocpi/2.9.9/locations"):
        response = client.post(path, data="{}", content_type="application/json")
        assert response.status_code == 404 and response["Content-Type"] == "application/json"
        assert response.json()["status_code"] == 2000
        assert response.json()["status_message"] == "No such OCPI endpoint."
