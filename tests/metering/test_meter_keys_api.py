"""PUT/GET /api/v1/chargers/{station_id}/meter-keys/ and DELETE .../{meter_serial}/: a host
registers the public key printed on a charger's meter; a bad key is a 400 that changes nothing;
another organization's charger is a 404 for reads and writes; a read-only member gets 403."""

from __future__ import annotations

import pytest

from metering.models import MeterKey
from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory
from tests.metering.signing import Meter

pytestmark = pytest.mark.django_db

URL = "/api/v1/chargers/CP-TEST-1/meter-keys/"


@pytest.fixture
def meter() -> Meter:
    return Meter()


@pytest.mark.parametrize("form", ["hex", "pem", "oca"])
def test_a_host_registers_a_key_and_reads_it_back(api_client, host, charger, meter, form):
    key = {
        "hex": meter.public_key_hex,
        "pem": meter.public_key_pem,
        "oca": f"oca:base16:asn1:{meter.public_key_hex}",
    }[form]
    api_client.force_authenticate(host)
    response = api_client.put(URL, {"meter_serial": meter.serial, "public_key": key}, format="json")
    assert response.status_code == 200, response.content
    assert response.json()["public_key"] == meter.public_key_hex
    assert response.json()["signing_method"] == "ECDSA-secp256r1-SHA256"
    listed = api_client.get(URL).json()
    assert [row["meter_serial"] for row in listed] == [meter.serial]
    stored = MeterKey.objects.get(charger=charger)
    assert stored.registered_by == host and bytes(stored.public_key) == meter.public_key_der


def test_putting_again_replaces_the_key(api_client, host, charger, meter):
    api_client.force_authenticate(host)
    api_client.put(URL, {"meter_serial": meter.serial, "public_key": Meter().public_key_hex})
    api_client.put(URL, {"meter_serial": meter.serial, "public_key": meter.public_key_hex})
    assert MeterKey.objects.get(charger=charger).public_key_hex == meter.public_key_hex


@pytest.mark.parametrize(
    "body",
    [
        {"meter_serial": "M1", "public_key": "not a key"},
        {"meter_serial": "M1", "public_key": "3059"},
        {"meter_serial": "M1", "public_key": ""},
        {"meter_serial": "", "public_key": "x"},
        {"meter_serial": "M1", "public_key": "KEY", "signing_method": "ECDSA-secp384r1-SHA256"},
        {"meter_serial": "M1", "public_key": "KEY", "signing_method": "RSA"},
    ],
)
def test_a_bad_key_is_a_400_and_changes_nothing(api_client, host, charger, meter, body):
    body = {k: (meter.public_key_hex if v == "KEY" else v) for k, v in body.items()}
    api_client.force_authenticate(host)
    response = api_client.put(URL, body, format="json")
    assert response.status_code == 400, response.content
    assert "Traceback" not in response.content.decode()
    assert not MeterKey.objects.exists()


def test_delete_removes_the_key(api_client, host, charger, meter):
    api_client.force_authenticate(host)
    api_client.put(URL, {"meter_serial": meter.serial, "public_key": meter.public_key_hex})
    assert api_client.delete(f"{URL}{meter.serial}/").status_code == 204
    assert not MeterKey.objects.exists()
    assert api_client.delete(f"{URL}{meter.serial}/").status_code == 404


def test_another_organizations_charger_is_not_found(api_client, charger, meter):
    outsider = MembershipFactory(organization=PropertyFactory().organization, role="owner").user
    MeterKey.objects.create(
        charger=charger, meter_serial=meter.serial, public_key=meter.public_key_der
    )
    api_client.force_authenticate(outsider)
    assert api_client.get(URL).status_code == 404
    body = {"meter_serial": meter.serial, "public_key": Meter().public_key_hex}
    assert api_client.put(URL, body, format="json").status_code == 404
    assert api_client.delete(f"{URL}{meter.serial}/").status_code == 404
    assert MeterKey.objects.get().public_key_hex == meter.public_key_hex


def test_the_same_station_id_elsewhere_is_not_touched(api_client, host, charger, meter):
    """Two organizations' chargers never share a key, even with the same meter serial."""
    other = ChargerFactory(property=PropertyFactory(), station_id="CP-OTHER")
    MeterKey.objects.create(charger=other, meter_serial=meter.serial, public_key=b"x")
    api_client.force_authenticate(host)
    api_client.put(URL, {"meter_serial": meter.serial, "public_key": meter.public_key_hex})
    assert bytes(MeterKey.objects.get(charger=other).public_key) == b"x"
    assert api_client.get("/api/v1/chargers/CP-OTHER/meter-keys/").status_code == 404


def test_a_read_only_member_reads_but_cannot_write(api_client, charger, meter):
    viewer = MembershipFactory(organization=charger.property.organization, role="viewer").user
    api_client.force_authenticate(viewer)
    assert api_client.get(URL).status_code == 200
    body = {"meter_serial": meter.serial, "public_key": meter.public_key_hex}
    assert api_client.put(URL, body, format="json").status_code == 403
    assert not MeterKey.objects.exists()


def test_anonymous_is_refused(api_client, charger):
    assert api_client.get(URL).status_code in (401, 403)


@pytest.mark.parametrize("serial", ["EMH/0001", "A/B/C", "trailing/", "with space/ü"])
def test_a_serial_with_a_slash_is_deleted_by_path_or_query(api_client, host, charger, serial):
    # Issue 47 item 6: a serial with "/" was accepted by PUT but its DELETE was a 404.
    from urllib.parse import quote

    meter = Meter()
    api_client.force_authenticate(host)
    body = {"meter_serial": serial, "public_key": meter.public_key_hex}
    assert api_client.put(URL, body, format="json").status_code == 200
    assert api_client.delete(f"{URL}{quote(serial, safe='/')}/").status_code == 204
    assert not MeterKey.objects.filter(charger=charger).exists()
    assert api_client.put(URL, body, format="json").status_code == 200
    encoded = api_client.delete(f"{URL}?meter_serial={quote(serial, safe='')}")
    assert encoded.status_code == 204
    assert not MeterKey.objects.filter(charger=charger).exists()
    assert api_client.delete(f"{URL}?meter_serial={quote(serial, safe='')}").status_code == 404


def test_a_delete_by_query_needs_the_serial_and_write_rights(api_client, host, charger, meter):
    MeterKey.objects.create(charger=charger, meter_serial="M/1", public_key=meter.public_key_der)
    reader = MembershipFactory(organization=charger.property.organization, role="viewer").user
    api_client.force_authenticate(reader)
    assert api_client.delete(f"{URL}?meter_serial=M/1").status_code == 403
    assert api_client.delete(f"{URL}M/1/").status_code == 403
    api_client.force_authenticate(host)
    response = api_client.delete(URL)
    assert response.status_code == 400 and "meter_serial" in response.json()
    assert MeterKey.objects.filter(charger=charger).exists()
