"""Partners that take pushes learn when a charger stops being published (REMOVED) or starts."""

from roaming import services
from roaming.models import Delivery
from tests.factories import ChargerFactory
from tests.roaming.conftest import online


def _queued(partner):
    return [
        (d.method, d.path.rsplit("/", 2)[-2:], d.body.get("status"))
        for d in Delivery.objects.filter(partner=partner).order_by("id")
    ]


def test_a_partner_gets_our_locations_once_then_removed_evses_and_new_locations(operator, partner):
    location = str(operator["public"].pk)

    assert services.locations_reconcile(partner_id=partner.pk) == 1
    put = Delivery.objects.get(partner=partner)
    assert (put.method, put.object_key) == ("PUT", f"location:{location}")
    assert [e["uid"] for e in put.body["evses"]] == ["PUB-1*1", "PUB-1*2"]
    assert services.locations_reconcile(partner_id=partner.pk) == 0  # nothing new

    # Roaming switched off on the charger: both its EVSEs are REMOVED at the partner, once.
    type(operator["cp_public"]).objects.filter(pk=operator["cp_public"].pk).update(
        roaming_enabled=False
    )
    assert services.locations_reconcile(partner_id=partner.pk) == 2
    removed = Delivery.objects.filter(partner=partner, method="PATCH").order_by("object_key")
    assert [(d.path, d.body["status"]) for d in removed] == [
        (f"/NL/EVB/{location}/PUB-1*1", "REMOVED"),
        (f"/NL/EVB/{location}/PUB-1*2", "REMOVED"),
    ]
    assert services.locations_reconcile(partner_id=partner.pk) == 0

    # A new public charger there: the location is PUT again with it.
    online(ChargerFactory(property=operator["public"], station_id="PUB-2"), {1: "Available"})
    assert services.locations_reconcile(partner_id=partner.pk) == 1
    latest = Delivery.objects.filter(partner=partner, method="PUT").latest("id")
    assert [e["uid"] for e in latest.body["evses"]] == ["PUB-2*1"]
