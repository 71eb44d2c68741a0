"""Members sign in to the portal and the token endpoint with their email, in any case."""

import pytest
from rest_framework.test import APIClient

from backoffice.models import Organization
from backoffice.services import member_add

pytestmark = pytest.mark.django_db


def test_member_signs_in_with_email_in_any_case(client):
    member_add(
        organization=Organization.objects.create(name="O"),
        email="Ann@Example.com",
        password="ann-pass-123456",
        role="viewer",
    )
    response = client.post(
        "/accounts/login/", {"username": "  ANN@example.COM ", "password": "ann-pass-123456"}
    )
    assert response.status_code == 302
    token = APIClient().post(
        "/api/v1/auth/token/",
        {"username": "ann@EXAMPLE.com", "password": "ann-pass-123456"},
        format="json",
    )
    assert token.status_code == 200 and token.json()["token"]


def test_wrong_password_is_refused(client):
    member_add(
        organization=Organization.objects.create(name="O"),
        email="bob@example.com",
        password="bob-pass-123456",
        role="viewer",
    )
    response = client.post("/accounts/login/", {"username": "bob@example.com", "password": "nope"})
    assert response.status_code == 200 and b"correct" in response.content.lower()
