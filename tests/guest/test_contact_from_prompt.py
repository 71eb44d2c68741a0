"""The guest's "Contact support" form, reached from a prompt, with a required field left empty."""

import pytest

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("missing", ["email", "message", "topic"])
def test_an_empty_required_field_is_a_form_error_not_a_500(client, guest_charger, missing):
    data = {
        "station_id": guest_charger.station_id,
        "prompt": "License inactive",
        "topic": "other",
        "message": "It does not start",
        "email": "guest@example.com",
        "occurred_at": "2026-11-22T10:00",
    }
    data[missing] = ""
    response = client.post("/support/contact/", data)
    assert response.status_code == 400
    body = response.content.decode()
    assert "This field is required." in body
    assert "You saw: <strong>License inactive</strong>" in body  # what the guest saw is kept
