"""Issue 51 item 2: a charger's Meter keys tab sets what the meter-keys API sets, through the
same service functions: list, add (serial, or connector on 1.6 / EVSE on 2.0.1), confirm a key
read from the charger (a pasted printed key must match), delete, read from the charger. A bad
key is a form error in plain words that changes nothing; viewers read; other organizations 404."""

from __future__ import annotations

import pytest

from chargers.models import Charger
from metering.models import MeterKey
from metering.services import meter_key_prefill
from tests.factories import ChargerFactory, MembershipFactory
from tests.metering.signing import Meter

pytestmark = pytest.mark.django_db

PAGE = "/chargers/CP-TEST-1/meter-keys/"


@pytest.fixture
def meter() -> Meter:
    return Meter()


def _unconfirmed(charger, meter: Meter, port: int = 1) -> MeterKey:
    v201 = charger.ocpp_version == Charger.OcppVersion.V201
    return MeterKey.objects.create(
        charger=charger,
        connector_id=None if v201 else port,
        evse_id=port if v201 else None,
        public_key=meter.public_key_der,
        source=MeterKey.Source.CHARGER,
    )


def test_the_tab_lists_the_keys_with_their_source_and_state(client, host, charger, meter):
    _unconfirmed(charger, meter)
    MeterKey.objects.create(
        charger=charger,
        meter_serial="EMH/0001",
        public_key=Meter().public_key_der,
        registered_by=host,
        confirmed_by=host,
        confirmed_at=charger.created_at if hasattr(charger, "created_at") else None,
    )
    client.force_login(host)
    page = client.get(PAGE)
    assert page.status_code == 200
    html = page.content.decode()
    assert ">Meter keys</a>" in html and 'class="active">Meter keys' in html
    assert "Connector 1" in html and "Read from the charger" in html and "Not confirmed" in html
    assert "EMH/0001" in html and "Added by" in html
    assert "Add a key" in html and "Read keys from the charger" in html
    assert html.count("Confirm key") == 1  # only the key read from the charger


def test_a_host_adds_a_key_by_serial_and_it_is_confirmed(client, host, charger, meter):
    client.force_login(host)
    response = client.post(PAGE, {"meter_serial": meter.serial, "public_key": meter.public_key_pem})
    assert response.status_code == 302
    key = MeterKey.objects.get(charger=charger)
    assert key.meter_serial == meter.serial and key.connector_id is None
    assert bytes(key.public_key) == meter.public_key_der
    assert key.confirmed and key.source == "person" and key.registered_by == host
    assert key.signing_method == "ECDSA-secp256r1-SHA256"
    assert "Meter key saved" in client.get(PAGE).content.decode()


def test_a_meter_without_serial_is_named_by_connector_on_1_6(client, host, charger, meter):
    client.force_login(host)
    assert '<label for="id_port">Connector</label>' in client.get(PAGE).content.decode()
    response = client.post(PAGE, {"port": "2", "public_key": meter.public_key_hex})
    assert response.status_code == 302
    key = MeterKey.objects.get(charger=charger)
    assert (key.meter_serial, key.connector_id, key.evse_id) == ("", 2, None)


def test_a_meter_without_serial_is_named_by_evse_on_2_0_1(client, host, prop, meter):
    ChargerFactory(property=prop, station_id="CP-TEST-2", ocpp_version="2.0.1")
    client.force_login(host)
    url = "/chargers/CP-TEST-2/meter-keys/"
    assert '<label for="id_port">EVSE</label>' in client.get(url).content.decode()
    assert client.post(url, {"port": "1", "public_key": meter.public_key_oca}).status_code == 302
    key = MeterKey.objects.get(charger__station_id="CP-TEST-2")
    assert (key.meter_serial, key.connector_id, key.evse_id) == ("", None, 1)


@pytest.mark.parametrize(
    "data, words",
    [
        ({"meter_serial": "EMH-1", "public_key": "not a key"}, "public key"),
        ({"meter_serial": "EMH-1", "public_key": "3059"}, "public key"),
        ({"public_key": "KEY"}, "Give the meter serial, or the connector"),
        ({"meter_serial": "EMH-1", "port": "1", "public_key": "KEY"}, "not both"),
        (
            {
                "meter_serial": "EMH-1",
                "public_key": "KEY",
                "signing_method": "ECDSA-secp384r1-SHA256",
            },
            "needs another curve",
        ),
    ],
)
def test_a_bad_key_is_a_form_error_that_changes_nothing(client, host, charger, meter, data, words):
    data = {k: (meter.public_key_hex if v == "KEY" else v) for k, v in data.items()}
    client.force_login(host)
    response = client.post(PAGE, data)
    assert response.status_code == 400
    html = response.content.decode()
    assert "flash-error" in html and words.lower() in html.lower(), html
    assert "Traceback" not in html
    assert not MeterKey.objects.exists()


def test_confirming_a_key_read_from_the_charger(client, host, charger, meter):
    key = _unconfirmed(charger, meter)
    client.force_login(host)
    url = f"{PAGE}{key.pk}/confirm/"
    wrong = client.post(url, {f"key{key.pk}-printed_key": Meter().public_key_hex})
    assert wrong.status_code == 400
    assert "not the one the charger reported" in wrong.content.decode()
    key.refresh_from_db()
    assert not key.confirmed
    unreadable = client.post(url, {f"key{key.pk}-printed_key": "zz"})
    assert unreadable.status_code == 400
    key.refresh_from_db()
    assert not key.confirmed
    right = client.post(url, {f"key{key.pk}-printed_key": meter.public_key_pem})
    assert right.status_code == 302
    key.refresh_from_db()
    assert key.confirmed and key.confirmed_by == host


def test_confirming_without_pasting_the_printed_key(client, host, charger, meter):
    key = _unconfirmed(charger, meter)
    client.force_login(host)
    assert client.post(f"{PAGE}{key.pk}/confirm/").status_code == 302
    key.refresh_from_db()
    assert key.confirmed


def test_a_key_the_charger_reported_after_the_page_loaded_is_not_confirmed(
    client, host, charger, meter
):
    _unconfirmed(charger, meter)
    client.force_login(host)
    page = client.get(PAGE).content.decode()
    key = MeterKey.objects.get()
    hidden = f'type="hidden" name="key{key.pk}-shown_key" value="{meter.public_key_der.hex()}"'
    assert hidden in page  # the page posts the key it shows
    # Meanwhile the charger reports another key for the same meter (it replaces an unconfirmed one).
    other = Meter()
    meter_key_prefill(charger=charger, port=1, public_key=other.public_key_hex)
    response = client.post(
        f"{PAGE}{key.pk}/confirm/",
        {f"key{key.pk}-shown_key": meter.public_key_der.hex(), f"key{key.pk}-printed_key": ""},
        follow=True,
    )
    key.refresh_from_db()
    assert not key.confirmed and bytes(key.public_key) == other.public_key_der
    html = response.content.decode()
    assert "reported another key for this meter" in html
    assert other.public_key_der.hex() in html  # the new key, to compare with the meter's
    again = client.post(
        f"{PAGE}{key.pk}/confirm/", {f"key{key.pk}-shown_key": other.public_key_der.hex()}
    )
    assert again.status_code == 302
    key.refresh_from_db()
    assert key.confirmed


def test_deleting_a_key(client, host, charger, meter):
    key = _unconfirmed(charger, meter)
    client.force_login(host)
    assert client.post(f"{PAGE}{key.pk}/delete/").status_code == 302
    assert not MeterKey.objects.exists()


@pytest.mark.django_db(transaction=True)  # the command is sent from a database thread of its own
def test_reading_keys_from_an_offline_charger_says_so(client, host, charger):
    client.force_login(host)
    response = client.post(f"{PAGE}read/", follow=True)
    assert response.status_code == 200
    assert "The charger is offline" in response.content.decode()
    assert not MeterKey.objects.exists()


def test_a_viewer_reads_but_cannot_write(client, charger, meter):
    key = _unconfirmed(charger, meter)
    viewer = MembershipFactory(organization=charger.property.organization, role="viewer").user
    client.force_login(viewer)
    html = client.get(PAGE).content.decode()
    assert "Connector 1" in html
    assert "Add a key" not in html and "Confirm key" not in html and "Delete" not in html
    for url, data in [
        (PAGE, {"meter_serial": "EMH-2", "public_key": meter.public_key_hex}),
        (f"{PAGE}{key.pk}/confirm/", {}),
        (f"{PAGE}{key.pk}/delete/", {}),
        (f"{PAGE}read/", {}),
    ]:
        assert client.post(url, data).status_code == 403, url
    key.refresh_from_db()
    assert not key.confirmed and MeterKey.objects.count() == 1


def test_another_organization_gets_404_everywhere(client, charger, meter):
    key = _unconfirmed(charger, meter)
    stranger = MembershipFactory(role="owner").user
    client.force_login(stranger)
    assert client.get(PAGE).status_code == 404
    for url in [PAGE, f"{PAGE}{key.pk}/confirm/", f"{PAGE}{key.pk}/delete/", f"{PAGE}read/"]:
        assert (
            client.post(url, {"meter_serial": "X", "public_key": meter.public_key_hex}).status_code
            == 404
        )
    key.refresh_from_db()
    assert not key.confirmed and MeterKey.objects.count() == 1


def test_a_key_of_another_charger_is_404_in_the_url(client, host, charger, prop, meter):
    other = ChargerFactory(property=prop, station_id="CP-TEST-3")
    key = _unconfirmed(other, meter)
    client.force_login(host)
    assert client.post(f"{PAGE}{key.pk}/delete/").status_code == 404
    assert client.post(f"{PAGE}{key.pk}/confirm/").status_code == 404
    assert MeterKey.objects.get().confirmed is False
