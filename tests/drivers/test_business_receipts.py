"""A business driver's company name and VAT ID on their receipts (issue 51 item 5), set in the
account; receipts issued before keep what they carried."""

from datetime import timedelta

import pytest
from django.utils import timezone

from billing.models import Receipt
from chargers.models import ChargingSession
from drivers.models import DriverProfile
from guest import services as guest_services
from guest.models import GuestSession
from tests.drivers.conftest import save_card, sign_up
from tests.drivers.test_one_tap_start import charger  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db(transaction=True)


def _charge_and_finish(client, station_id: str, tx: int) -> GuestSession:
    client.post(f"/driver/start/{station_id}/", {"connector": "1"})
    gs = GuestSession.objects.latest("pk")
    started = timezone.now() - timedelta(hours=1)
    session = ChargingSession.objects.create(
        charger=gs.charger,
        connector_id=1,
        transaction_id=tx,
        id_tag=gs.id_tag,
        started_at=started,
        meter_start_wh=0,
    )
    guest_services.guest_session_link(session_id=session.pk)
    ChargingSession.objects.filter(pk=session.pk).update(
        status="completed", stopped_at=started + timedelta(minutes=40), meter_stop_wh=9000
    )
    guest_services.guest_session_finish(session_id=session.pk)
    gs.refresh_from_db()
    return gs


@pytest.mark.usefixtures("charger")
def test_a_business_driver_gets_receipts_with_the_companys_name_and_vat_id(client):
    sign_up(client, "fleet@example.com")
    save_card(client)
    home = client.get("/driver/").content.decode()
    assert 'id="business"' in home and 'for="vat-id"' in home
    private = _charge_and_finish(client, "HB-1", 1101)

    refused = client.post("/driver/business/", {"company_name": "Fleet BV", "vat_id": "12"})
    assert refused.status_code == 302
    assert DriverProfile.objects.get().vat_id == ""
    client.post("/driver/business/", {"company_name": " Fleet  BV ", "vat_id": "nl 8888.77776-b01"})
    profile = DriverProfile.objects.get()
    assert (profile.company_name, profile.vat_id) == ("Fleet BV", "NL888877776B01")

    business = _charge_and_finish(client, "HB-1", 1102)
    page = client.get(f"/driver/sessions/{business.pk}/receipt/").content.decode()
    assert '<dd id="buyer">Fleet BV<br><span class="small">VAT ID NL888877776B01</span>' in page
    # Under the account's own header (issue 51 item 6), not the anonymous guest's.
    assert '<nav aria-label="Account" class="d-nav">' in page and "/driver/sessions/" in page
    guest_view = client.get(f"/s/receipt/{business.key}/").content.decode()
    assert '<nav aria-label="Account"' not in guest_view
    receipt = Receipt.objects.get(session_id=business.charging_session_id)
    assert (receipt.buyer_company, receipt.buyer_vat_id) == ("Fleet BV", "NL888877776B01")
    assert receipt.number == 2  # the host's series: the private session's receipt was 1
    pdf = client.get(f"/s/receipt/{business.key}/pdf/").content
    assert b"Customer: Fleet BV, VAT ID NL888877776B01" in pdf
    # The receipt issued before the details were given stays a private one.
    earlier = Receipt.objects.get(session_id=private.charging_session_id)
    assert (earlier.number, earlier.buyer_company, earlier.buyer_vat_id) == (1, "", "")
