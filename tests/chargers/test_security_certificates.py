"""The central system's CA: created on first use, signs a charger's CSR (SignCertificate, then
CertificateSigned through the command path), and the certificate then authenticates profile 3.
InstallCertificate / GetInstalledCertificateIds / DeleteCertificate go out through the API."""

import asyncio
import os
import stat

import pytest
from asgiref.sync import sync_to_async
from cryptography import x509
from cryptography.x509.oid import NameOID
from rest_framework.test import APIClient

from chargers.connections import handshake
from chargers.models import ChargerCertificate, Command, SecurityEvent
from chargers.security import pki
from tests.bounds import GENEROUS_S
from tests.chargers.security_helpers import PROXY, csr_for, scope, via_proxy
from tests.factories import ChargerFactory, MembershipFactory
from tests.ocpp_client import OcppTestClient


@pytest.fixture(autouse=True)
def _ca_dir(settings, tmp_path):
    settings.OCPP_CA_DIR = str(tmp_path / "ca")
    settings.OCPP_TRUSTED_PROXIES = [PROXY]
    return tmp_path / "ca"


def test_the_ca_is_created_once_with_a_private_key_file(_ca_dir):
    ca = pki.get_ca()
    assert (_ca_dir / "ca.pem").exists()
    assert stat.S_IMODE(os.stat(_ca_dir / "ca.key").st_mode) == 0o600
    again = pki.load_or_create(_ca_dir)
    assert again.certificate == ca.certificate
    assert ca.certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_a_csr_naming_another_station_gets_a_certificate_for_its_own():
    csr, _ = csr_for("SOMEONE-ELSE")
    issued = pki.get_ca().sign_csr(csr, station_id="CERT-1")
    certificate = x509.load_pem_x509_certificate(issued.certificate_pem.encode())
    assert certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "CERT-1"
    assert (
        certificate.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Test CPO"
    )
    assert pki.get_ca().verify_client(certificate, station_id="CERT-1") == ""
    assert pki.get_ca().verify_client(certificate, station_id="SOMEONE-ELSE") != ""


@pytest.mark.parametrize(
    "csr",
    ["not a csr", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----"],
)
def test_garbage_is_not_signed(csr):
    with pytest.raises(pki.CsrRejected):
        pki.get_ca().sign_csr(csr, station_id="CERT-1")


def test_weak_keys_are_not_signed():
    from cryptography.hazmat.primitives.asymmetric import ec

    csr, _ = csr_for("CERT-1", key=ec.generate_private_key(ec.SECP192R1()))
    with pytest.raises(pki.CsrRejected):
        pki.get_ca().sign_csr(csr, station_id="CERT-1")


@pytest.mark.django_db(transaction=True)
async def test_sign_certificate_then_certificate_signed_then_profile_3():
    charger = await sync_to_async(ChargerFactory)(station_id="CERT-2")
    client = OcppTestClient("CERT-2")
    assert (await client.connect())[0]
    csr, _ = csr_for("CERT-2")
    assert await client.result("SignCertificate", {"csr": csr}) == {"status": "Accepted"}
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "CertificateSigned"
    chain = x509.load_pem_x509_certificates(call[3]["certificateChain"].encode())
    assert chain[1] == (await sync_to_async(pki.get_ca)()).certificate
    await client.send([3, call[1], {"status": "Accepted"}])
    for _ in range(200):  # the delivery is recorded right after the answer
        issued = await ChargerCertificate.objects.aget(charger=charger)
        if issued.delivery:
            break
        await asyncio.sleep(0.05)
    assert issued.delivery == "Accepted" and issued.fingerprint_sha256 == pki.fingerprint(chain[0])
    await client.close()

    charger.security_profile = 3
    await charger.asave()
    admitted = await handshake.admit(
        scope("CERT-2", address=PROXY, headers=via_proxy(chain[0])), "CERT-2"
    )
    assert admitted.pk == charger.pk


@pytest.mark.django_db(transaction=True)
async def test_a_bad_csr_is_rejected_and_kept_as_an_event():
    charger = await sync_to_async(ChargerFactory)(station_id="CERT-3")
    client = OcppTestClient("CERT-3")
    assert (await client.connect())[0]
    assert await client.result("SignCertificate", {"csr": "nonsense"}) == {"status": "Rejected"}
    await client.close()
    assert await SecurityEvent.objects.filter(
        charger=charger, event_type="InvalidCsr", source="csms"
    ).aexists()
    assert not await ChargerCertificate.objects.filter(charger=charger).aexists()


@pytest.mark.django_db(transaction=True)
async def test_certificate_management_commands_go_out_and_are_recorded():
    charger = await sync_to_async(ChargerFactory)(station_id="CERT-4")
    owner = await sync_to_async(
        lambda: MembershipFactory(organization=charger.property.organization).user
    )()
    api = APIClient()
    api.force_authenticate(owner)
    client = OcppTestClient("CERT-4")
    assert (await client.connect())[0]
    ca_pem = (await sync_to_async(pki.get_ca)()).certificate_pem
    hash_data = {
        "hashAlgorithm": "SHA256",
        "issuerNameHash": "aa",
        "issuerKeyHash": "bb",
        "serialNumber": "01",
    }
    calls = [
        (
            "InstallCertificate",
            {"certificateType": "CentralSystemRootCertificate", "certificate": ca_pem},
            {"status": "Accepted"},
        ),
        (
            "GetInstalledCertificateIds",
            {"certificateType": "CentralSystemRootCertificate"},
            {"status": "Accepted", "certificateHashData": [hash_data]},
        ),
        ("DeleteCertificate", {"certificateHashData": hash_data}, {"status": "Accepted"}),
    ]
    for action, payload, answer in calls:
        request = asyncio.create_task(
            sync_to_async(api.post)(
                f"/api/v1/chargers/CERT-4/commands/{action}/", payload, format="json"
            )
        )
        call = await client.receive(timeout=GENEROUS_S)
        assert call[2] == action and call[3] == payload
        await client.send([3, call[1], answer])
        response = await request
        assert response.status_code == 200 and response.json()["response"] == answer
    await client.close()
    recorded = [
        (c.action, c.response) async for c in Command.objects.filter(charger=charger).order_by("pk")
    ]
    assert recorded == [(a, answer) for a, _, answer in calls]
