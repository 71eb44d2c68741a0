"""Issue 51 item 6: drivers' account emails greet with the product's name, not the server's
address ("Hello from 127.0.0.1!" / "testserver")."""

from __future__ import annotations

import pytest
from django.core import mail

pytestmark = pytest.mark.django_db


def test_the_sign_up_email_names_the_product(client, settings):
    settings.SITE_URL = "https://charge.example.com"
    response = client.post(
        "/driver/account/signup/",
        {"email": "ana@example.com", "password1": "long-pass-9182", "password2": "long-pass-9182"},
    )
    assert response.status_code == 302
    (message,) = mail.outbox
    assert message.subject.startswith("[EV charging] ")
    assert message.body.startswith("Hello from EV charging!")
    assert "Thank you for using EV charging!\ncharge.example.com" in message.body
    assert "testserver" not in message.body.split("http", 1)[0]  # not in the greeting


def test_without_a_site_url_the_greeting_still_names_the_product(client):
    client.post(
        "/driver/account/signup/",
        {"email": "bo@example.com", "password1": "long-pass-9182", "password2": "long-pass-9182"},
    )
    (message,) = mail.outbox
    assert message.body.startswith("Hello from EV charging!")
    assert "Hello from testserver" not in message.body
