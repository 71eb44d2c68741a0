"""Deleting a driver account: cards detached at the gateway, no personal data left anywhere,
the ledger kept (and balanced) without it."""

import json
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.apps import apps
from django.contrib.sessions.models import Session
from django.core import mail
from django.db import models
from django.db.models import Q, Sum, TextField
from django.db.models.functions import Cast
from django.test import Client
from django.utils import timezone

from billing import ledger
from billing.models import (
    LedgerEntry,
    LedgerTransaction,
    Payment,
    SandboxCustomer,
    SandboxPaymentMethod,
    Subscription,
)
from drivers.models import DriverProfile, SavedCard
from guest.models import GuestSession
from support.models import Ticket
from tests.drivers.conftest import save_card, sign_up
from tests.factories import ChargerFactory, TokenFactory

pytestmark = pytest.mark.django_db

EMAIL, NAME, LAST4 = "erase.me@example.com", "Quentin Erasmus", "4242"
# The card's last 4 is searched as a number of its own (not inside a random id like pi_sbx_…4242…).


def rows_with_personal_data(
    email: str = EMAIL, names: tuple[str, ...] = ("Quentin", "Erasmus"), last4: str = LAST4
) -> list[str]:
    """Query every text, char, email and JSON column of every table for the driver's data."""
    last4_re = rf"(^|[^0-9a-zA-Z]){last4}([^0-9a-zA-Z]|$)"
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, (models.CharField, models.TextField)):
                column, qs = field.name, model._default_manager.all()
            elif isinstance(field, models.JSONField):
                column = f"_{field.name}_text"
                qs = model._default_manager.annotate(**{column: Cast(field.name, TextField())})
            else:
                continue
            match = Q(**{f"{column}__icontains": email}) | Q(**{f"{column}__regex": last4_re})
            for name in names:
                match |= Q(**{f"{column}__icontains": name})
            hits = qs.filter(match)
            if hits.exists():
                found.append(f"{model._meta.label}.{field.name}")
    # Session data is stored encoded: decode it to search it too.
    for session in Session.objects.all():
        text = json.dumps(session.get_decoded()).lower()
        if (
            email.lower() in text
            or re.search(last4_re, text)
            or any(n.lower() in text for n in names)
        ):
            found.append(f"django_session {session.session_key[:6]}…")
    return found


def test_delete_erases_personal_data_from_every_table_and_keeps_a_balanced_ledger(
    client, prop, plan, django_capture_on_commit_callbacks
):
    sign_up(client, EMAIL)
    # Signed in on a second device too: that session carries the sign-in email.
    other_device = Client()
    other_device.post("/driver/account/login/", {"login": EMAIL, "password": "long-pass-9182"})
    assert "_auth_user_id" in other_device.session
    profile = DriverProfile.objects.get()
    profile.user.first_name, profile.user.last_name = "Quentin", "Erasmus"
    profile.user.save()
    save_card(client)
    with django_capture_on_commit_callbacks(execute=True):
        client.post(f"/driver/plans/{plan.pk}/subscribe/")
    # A past guest session paid by card with the same email, a guest token, a charge and a ticket.
    charger = ChargerFactory(property=prop, station_id="DEL-1")
    token = TokenFactory(uid="AB12CD34EF", organization=prop.organization, type="GUEST")
    now = timezone.now()
    payment = Payment.objects.create(
        organization=prop.organization,
        email=EMAIL,
        currency="EUR",
        amount_held=Decimal("30"),
        amount_captured=Decimal("12.50"),
        reference="pi_test_guest_1",
        status="captured",
        card_last4=LAST4,
        settled_at=now,
    )
    ledger.post(
        key="charge:pi_test_guest_1",
        kind=LedgerTransaction.Kind.GUEST_CHARGE,
        organization_id=prop.organization_id,
        currency="EUR",
        amount=Decimal("12.50"),
        occurred_at=now,
        payment=payment,
    )
    GuestSession.objects.create(
        charger=charger,
        connector_id=1,
        email=EMAIL,
        token=token,
        card_last4=LAST4,
        payment_id=payment.pk,
        state=GuestSession.State.FINISHED,
        finished_at=now - timedelta(days=3),
    )
    client.post("/driver/sessions/claim/")
    Ticket.objects.create(name=NAME, email=EMAIL, message="Please delete my data")
    assert rows_with_personal_data()  # the search finds the data while the account exists
    card_refs = list(SavedCard.objects.values_list("reference", flat=True))
    ledger_before = LedgerTransaction.objects.count()

    mail.outbox.clear()
    assert client.post("/driver/delete/", {"password": "wrong"}).status_code == 400
    assert DriverProfile.objects.exists()
    response = client.post("/driver/delete/", {"password": "long-pass-9182"})
    assert response.status_code == 200 and b"data-deleted" in response.content

    assert rows_with_personal_data() == []
    assert not DriverProfile.objects.exists() and not SavedCard.objects.exists()
    assert not SandboxPaymentMethod.objects.filter(
        pk__in=card_refs
    ).exists()  # detached at the gateway
    assert not SandboxCustomer.objects.exists()
    assert Subscription.objects.get().status == "cancelled"
    token.refresh_from_db()
    assert token.valid is False
    # Ledger and tax records stay, balanced, and the payments keep their amounts.
    assert LedgerTransaction.objects.count() == ledger_before
    assert LedgerEntry.objects.aggregate(t=Sum("amount"))["t"] == 0
    assert Payment.objects.get(pk=payment.pk).amount_captured == Decimal("12.50")
    assert [m.to for m in mail.outbox] == [[EMAIL]] and "deleted" in mail.outbox[0].subject
    # Signed out, and the address cannot sign in any more.
    assert "_auth_user_id" not in client.session
    client.post("/driver/account/login/", {"login": EMAIL, "password": "long-pass-9182"})
    assert "_auth_user_id" not in client.session
