import re
from decimal import Decimal

import pytest
from django.core import mail

from billing.models import SubscriptionPlan


def link_in(message) -> str:
    """Return the path of the first http link in an email (the confirmation link)."""
    url = re.search(r"https?://\S+", message.body).group(0)
    return re.sub(r"^https?://[^/]+", "", url)


def sign_up(client, email: str, password: str = "long-pass-9182") -> None:
    """Sign up through allauth's form and confirm through the link sent by email."""
    mail.outbox.clear()
    response = client.post(
        "/driver/account/signup/", {"email": email, "password1": password, "password2": password}
    )
    assert response.status_code == 302, response.content[:2000]
    assert len(mail.outbox) == 1 and mail.outbox[0].to == [email]
    confirm = link_in(mail.outbox[0])
    response = client.post(confirm)
    assert response.status_code == 302


def save_card(client, card: str = "pm_card_visa", **typed):
    """Start a SetupIntent on the card page and confirm it as the sandbox card element does
    (`typed`: the expiry the element read, exp_month and exp_year)."""
    page = client.get("/driver/cards/add/")
    assert page.status_code == 200
    html = page.content.decode()
    secret = re.search(r'data-client-secret="([^"]+)"', html).group(1)
    confirm_url = re.search(r'data-confirm-url="([^"]+)"', html).group(1)
    answer = client.post(confirm_url, {"client_secret": secret, "payment_method": card, **typed})
    setup_id = answer.json().get("id") or answer.json()["error"]["setup_intent"]["id"]
    return client.get(f"/driver/cards/return/?setup_intent={setup_id}")


@pytest.fixture
def plan(prop):
    return SubscriptionPlan.objects.create(
        property=prop, name="Resident", monthly_fee=Decimal("25.00"), included_kwh=Decimal("100")
    )
