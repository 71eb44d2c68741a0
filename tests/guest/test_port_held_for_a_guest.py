"""A port another guest is paying for is shown Reserved and cannot be chosen: the page never
offers a port whose start it would then refuse ("That port is not free right now"), and the
"all ports in use" page keeps waiting while it is held. Once the payment times out it is free."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from guest import services
from guest.models import GuestSession
from tests.guest.conftest import make_online

pytestmark = pytest.mark.django_db


def _paying_on_port_1(charger):
    # A guest who went on to the card form and has not paid yet: the hold is not confirmed.
    gs = services.guest_start(charger=charger, connector_id=1, email="first@example.com")
    assert gs.state == GuestSession.State.PENDING
    return gs


def _radio(body: str, port: int) -> str:
    start = body.index(f'name="connector" value="{port}"')
    return body[body.rindex("<input", 0, start) : body.index(">", start)]


def test_the_landing_shows_the_port_being_paid_for_as_reserved(client, guest_charger, rate):
    make_online(guest_charger, ("Available", "Available"))
    _paying_on_port_1(guest_charger)
    body = client.get(reverse("guest:landing", args=[guest_charger.station_id])).content.decode()
    assert "disabled" in _radio(body, 1)
    assert "disabled" not in _radio(body, 2)
    assert 'class="status Reserved">Reserved' in body
    ports = client.get(reverse("guest:ports", args=[guest_charger.station_id])).json()
    assert ports == {
        "any_free": True,
        "ports": [{"id": 1, "status": "Reserved"}, {"id": 2, "status": "Available"}],
    }


def test_a_lone_port_being_paid_for_leaves_nothing_free_until_the_payment_times_out(
    client, guest_charger, rate
):
    gs = _paying_on_port_1(guest_charger)
    url = reverse("guest:ports", args=[guest_charger.station_id])
    assert client.get(url).json()["any_free"] is False
    GuestSession.objects.filter(pk=gs.pk).update(created_at=timezone.now() - timedelta(hours=1))
    assert client.get(url).json() == {
        "any_free": True,
        "ports": [{"id": 1, "status": "Available"}],
    }
