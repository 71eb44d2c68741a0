"""Plug & Charge over OCPP 2.0.1 (issue 52): a charger written from the protocol text, chains made
here, a real OCSP responder and a PKI provider started by the test.

C07 Authorize with a contract (chain to the installed MO root, revocation by OCSP, then the
eMAID decided like a card), M06 GetCertificateStatus, M01 Get15118EVCertificate, A02/A03
SignCertificate for the V2G certificate."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from asgiref.sync import sync_to_async
from cryptography import x509

from authorization.models import AuthorizationDecision
from chargers.models import ChargerCertificate
from pki import chains, local_ca, services
from pki.models import CertificateUse
from tests.bounds import GENEROUS_S
from tests.chargers.v201.conftest import connect201
from tests.factories import TokenFactory

from .pkitools import EMAID, Provider, World, csr, install_root, issue, ocpp_hash_data

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def world(settings, charger):
    built = World()
    settings.OUTBOUND_URL_ALLOWLIST = [f"127.0.0.1:{built.responder.port}"]
    yield built
    built.responder.stop()


@pytest.fixture
def installed(world, charger):
    organization_id = charger.property.organization_id
    install_root(organization_id, CertificateUse.MO, world.mo_root)
    install_root(organization_id, CertificateUse.V2G, world.v2g_root)
    TokenFactory(uid=EMAID, organization=charger.property.organization)
    return world


def contract_authorize(certificate: str = "", hash_data: list | None = None) -> dict:
    payload: dict = {"idToken": {"idToken": EMAID, "type": "eMAID"}}
    if certificate:
        payload["certificate"] = certificate
    if hash_data:
        payload["iso15118CertificateHashData"] = hash_data
    return payload


async def authorize_over_socket(payload: dict) -> dict:
    client = await connect201()
    try:
        return await client.result("Authorize", payload)
    finally:
        await client.close()


# -- C07: Authorize with a contract certificate ------------------------------------------------------


async def test_a_valid_contract_is_accepted_after_its_chain_and_revocation_are_checked(installed):
    answer = await authorize_over_socket(contract_authorize(installed.contract_chain))
    assert answer == {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}
    # Both certificates below the root were asked about, with real OCSP requests.
    assert len(installed.responder.requests) == 2
    decision = await AuthorizationDecision.objects.aget(uid=EMAID)
    assert decision.status == "Accepted"


async def test_a_revoked_contract_is_refused_as_revoked_and_invalid(installed):
    installed.responder.revoked.add(installed.contract.certificate.serial_number)
    answer = await authorize_over_socket(contract_authorize(installed.contract_chain))
    assert answer == {
        "idTokenInfo": {"status": "Invalid"},
        "certificateStatus": "CertificateRevoked",
    }
    decision = await AuthorizationDecision.objects.aget(uid=EMAID)
    assert (decision.status, decision.reason) == ("Invalid", "contract_revoked")


async def test_a_responder_that_is_down_never_gives_accepted(installed):
    installed.responder.stop()
    answer = await authorize_over_socket(contract_authorize(installed.contract_chain))
    assert answer["certificateStatus"] == "CertChainError"
    assert answer["idTokenInfo"] == {"status": "Invalid"}
    decision = await AuthorizationDecision.objects.aget(uid=EMAID)
    assert decision.reason == "contract_unverified"


async def test_a_contract_under_an_mo_root_not_installed_is_refused_without_calling_its_responder(
    world, charger
):
    await sync_to_async(TokenFactory)(uid=EMAID, organization=charger.property.organization)
    answer = await authorize_over_socket(contract_authorize(world.contract_chain))
    assert answer["certificateStatus"] == "CertChainError"
    assert answer["idTokenInfo"]["status"] == "Invalid"
    assert world.responder.requests == []


async def test_a_contract_for_another_emaid_is_a_chain_error(installed):
    payload = contract_authorize(installed.contract_chain)
    payload["idToken"]["idToken"] = "DE-8EO-C99999999-9"
    answer = await authorize_over_socket(payload)
    assert answer["certificateStatus"] == "CertChainError"


async def test_a_valid_contract_of_an_unknown_emaid_is_contract_cancelled(world, charger):
    organization_id = charger.property.organization_id
    await sync_to_async(install_root)(organization_id, CertificateUse.MO, world.mo_root)
    answer = await authorize_over_socket(contract_authorize(world.contract_chain))
    # C07.FR.13: the certificate is fine, the eMAID is not accepted.
    assert answer == {
        "idTokenInfo": {"status": "Unknown"},
        "certificateStatus": "ContractCancelled",
    }


async def test_a_blocked_emaid_is_blocked_like_a_card(installed):
    from authorization.models import Token

    await Token.objects.filter(uid=EMAID).aupdate(blocked=True)
    answer = await authorize_over_socket(contract_authorize(installed.contract_chain))
    assert answer == {
        "idTokenInfo": {"status": "Blocked"},
        "certificateStatus": "ContractCancelled",
    }


async def test_hash_data_of_a_known_sub_ca_is_checked_with_the_responder_given(installed, charger):
    await sync_to_async(services.sub_cas_add)(
        organization_id=charger.property.organization_id,
        use=CertificateUse.MO,
        certificates=[installed.mo_sub.certificate],
    )
    data = [
        ocpp_hash_data(
            installed.contract.certificate, installed.mo_sub.certificate, installed.responder.url
        )
    ]
    answer = await authorize_over_socket(contract_authorize(hash_data=data))
    assert answer == {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}
    installed.responder.revoked.add(installed.contract.certificate.serial_number)
    answer = await authorize_over_socket(contract_authorize(hash_data=data))
    assert answer["certificateStatus"] == "CertificateRevoked"
    assert len(installed.responder.requests) == 2


async def test_hash_data_naming_an_unknown_issuer_never_calls_the_url_given(installed):
    # The sub-CA was never kept: its OCSP data names an issuer we cannot tie to a root.
    data = [
        ocpp_hash_data(
            installed.contract.certificate, installed.mo_sub.certificate, installed.responder.url
        )
    ]
    answer = await authorize_over_socket(contract_authorize(hash_data=data))
    assert answer["certificateStatus"] == "CertChainError"
    assert installed.responder.requests == []


# -- M06: GetCertificateStatus ------------------------------------------------------------------------


async def _certificate_status(data: dict) -> dict:
    client = await connect201()
    try:
        return await client.result("GetCertificateStatus", {"ocspRequestData": data})
    finally:
        await client.close()


async def test_certificate_status_is_the_responders_signed_answer(installed, charger):
    await sync_to_async(services.sub_cas_add)(
        organization_id=charger.property.organization_id,
        use=CertificateUse.V2G,
        certificates=[installed.v2g_sub2.certificate, installed.v2g_sub1.certificate],
    )
    for subject, issuer in (
        (installed.v2g_sub2, installed.v2g_sub1),
        (installed.v2g_sub1, installed.v2g_root),
    ):
        data = ocpp_hash_data(subject.certificate, issuer.certificate, installed.responder.url)
        answer = await _certificate_status(data)
        assert answer["status"] == "Accepted"
        der = base64.b64decode(answer["ocspResult"])
        checked = chains.check_ocsp_response(
            der,
            chains.cert_id_of(subject.certificate, issuer.certificate),
            issuer.certificate,
            datetime.now(UTC),
        )
        assert checked.status == "good"
    # Every charger asks weekly about the same sub-CAs: a current answer serves them all.
    asked = len(installed.responder.requests)
    data = ocpp_hash_data(
        installed.v2g_sub2.certificate, installed.v2g_sub1.certificate, installed.responder.url
    )
    again = await _certificate_status(data)
    assert again["status"] == "Accepted" and len(installed.responder.requests) == asked == 2


async def test_a_responder_of_a_ca_under_no_installed_root_is_never_called(world, charger):
    # Nothing installed: the responder (allow-listed, on 127.0.0.1) must not hear a thing.
    data = ocpp_hash_data(
        world.v2g_sub2.certificate, world.v2g_sub1.certificate, world.responder.url
    )
    answer = await _certificate_status(data)
    assert answer["status"] == "Failed" and "ocspResult" not in answer
    data = ocpp_hash_data(
        world.v2g_sub1.certificate, world.v2g_root.certificate, world.responder.url
    )
    assert (await _certificate_status(data))["status"] == "Failed"
    assert world.responder.requests == []


async def test_certificate_status_fails_when_the_responder_is_down(installed):
    installed.responder.stop()
    data = ocpp_hash_data(
        installed.v2g_sub1.certificate, installed.v2g_root.certificate, installed.responder.url
    )
    assert (await _certificate_status(data))["status"] == "Failed"


async def test_certificate_status_of_a_private_responder_not_allow_listed_is_refused(
    installed, settings
):
    settings.OUTBOUND_URL_ALLOWLIST = []
    data = ocpp_hash_data(
        installed.v2g_sub1.certificate, installed.v2g_root.certificate, installed.responder.url
    )
    assert (await _certificate_status(data))["status"] == "Failed"
    assert installed.responder.requests == []


# -- M01: Get15118EVCertificate -------------------------------------------------------------------------


EXI_REQUEST = base64.b64encode(b"\x80\x01exi-certificate-installation-req").decode()
EXI_RESPONSE = base64.b64encode(b"\x80\x02exi-certificate-installation-res").decode()


async def test_the_cars_exi_request_is_forwarded_unchanged_and_its_answer_returned(
    charger, settings
):
    provider = Provider({"status": "Accepted", "exiResponse": EXI_RESPONSE})
    settings.OUTBOUND_URL_ALLOWLIST = [f"127.0.0.1:{provider.port}"]
    await sync_to_async(services.settings_save)(
        organization_id=charger.property.organization_id,
        provider_url=f"http://127.0.0.1:{provider.port}/pki",
        provider_token="secret-token",
        v2g_signer="",
    )
    request = {
        "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
        "action": "Install",
        "exiRequest": EXI_REQUEST,
    }
    client = await connect201()
    answer = await client.result("Get15118EVCertificate", request)
    await client.close()
    provider.stop()
    assert answer == {"status": "Accepted", "exiResponse": EXI_RESPONSE}
    assert provider.bodies == [
        {"path": "/pki/ev-certificates", "stationId": "CP-TEST-1", **request}
    ]
    assert provider.headers[0]["Authorization"] == "Bearer secret-token"


async def test_without_a_provider_the_car_is_told_failed(charger):
    client = await connect201()
    answer = await client.result(
        "Get15118EVCertificate",
        {
            "iso15118SchemaVersion": "urn:iso:15118:2:2013:MsgDef",
            "action": "Update",
            "exiRequest": EXI_REQUEST,
        },
    )
    await client.close()
    assert answer["status"] == "Failed" and answer["exiResponse"] == ""


# -- A02/A03: SignCertificate for the V2G certificate ----------------------------------------------------


async def test_a_v2g_csr_is_signed_by_the_v2g_sub_ca_with_a_chain_to_the_installed_root(charger):
    organization_id = charger.property.organization_id
    await sync_to_async(services.local_v2g_root_install)(organization_id=organization_id)
    client = await connect201()
    answer = await client.result(
        "SignCertificate", {"csr": csr("SECC-CP-TEST-1"), "certificateType": "V2GCertificate"}
    )
    assert answer == {"status": "Accepted"}
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "CertificateSigned" and call[3]["certificateType"] == "V2GCertificate"
    await client.send([3, call[1], {"status": "Accepted"}])
    await client.close()
    chain = x509.load_pem_x509_certificates(call[3]["certificateChain"].encode())
    authority = await sync_to_async(local_ca.get_authority)()
    assert chain[0].issuer == authority.sub_cas[0].subject and len(chain) == 3
    roots = await sync_to_async(services.roots)(
        organization_id=organization_id, uses=(CertificateUse.V2G,)
    )
    path = chains.verify_chain(chain[0], chain[1:], roots, datetime.now(UTC))
    assert path[-1] == authority.root
    kept = await ChargerCertificate.objects.aget(charger=charger)
    assert kept.certificate_type == "V2GCertificate"
    assert kept.fingerprint_sha256 == chains.fingerprint(chain[0])


async def test_a_v2g_csr_is_rejected_when_the_organization_signs_none(charger):
    client = await connect201()
    answer = await client.result(
        "SignCertificate", {"csr": csr("SECC-CP-TEST-1"), "certificateType": "V2GCertificate"}
    )
    await client.close()
    assert answer == {"status": "Rejected"}


async def test_our_local_sub_cas_answer_ocsp_for_the_chain_they_signed(charger):
    organization_id = charger.property.organization_id
    await sync_to_async(services.local_v2g_root_install)(organization_id=organization_id)
    authority = await sync_to_async(local_ca.get_authority)()
    sub2, sub1 = authority.sub_cas
    data = ocpp_hash_data(sub2, sub1, "http://ocsp.invalid/")
    answer = await _certificate_status(data)
    assert answer["status"] == "Accepted"
    checked = chains.check_ocsp_response(
        base64.b64decode(answer["ocspResult"]),
        chains.cert_id_of(sub2, sub1),
        sub1,
        datetime.now(UTC),
    )
    assert checked.status == "good"
    # A serial these CAs never issued gets no answer at all.
    data["serialNumber"] = "abcdef"
    assert (await _certificate_status(data))["status"] == "Failed"


# -- the charger's Security tab ------------------------------------------------------------------------


async def _answer(client, action: str, answer: dict) -> dict:
    call = await client.receive(timeout=GENEROUS_S)
    assert call[0] == 2 and call[2] == action, call
    await client.send([3, call[1], answer])
    return call[3]


async def test_the_host_installs_the_organizations_roots_and_sees_the_v2g_certificate(
    installed, charger, host
):
    import asyncio

    from django.test import AsyncClient
    from django.urls import reverse

    client = await connect201()
    web = AsyncClient()
    await web.aforce_login(host)
    url = reverse("chargers:charger-security-action", args=["CP-TEST-1"])
    request = asyncio.create_task(web.post(url, {"what": "install_roots"}))
    sent = [await _answer(client, "InstallCertificate", {"status": "Accepted"}) for _ in range(2)]
    assert (await request).status_code == 302
    assert {(s["certificateType"], s["certificate"]) for s in sent} == {
        ("MORootCertificate", installed.mo_root.pem),
        ("V2GRootCertificate", installed.v2g_root.pem),
    }
    await sync_to_async(services.local_v2g_root_install)(
        organization_id=charger.property.organization_id
    )
    request = asyncio.create_task(web.post(url, {"what": "renew_v2g_certificate"}))
    trigger = await _answer(client, "TriggerMessage", {"status": "Accepted"})
    assert trigger == {"requestedMessage": "SignV2GCertificate"}
    await request
    answer = await client.result(
        "SignCertificate", {"csr": csr("SECC-CP-TEST-1"), "certificateType": "V2GCertificate"}
    )
    assert answer == {"status": "Accepted"}
    await _answer(client, "CertificateSigned", {"status": "Accepted"})
    await client.close()
    page = (await web.get(reverse("chargers:charger-security", args=["CP-TEST-1"]))).content
    assert b"V2G (ISO 15118)" in page and b"SECC-CP-TEST-1" in page


async def test_plug_and_charge_is_turned_on_only_once_the_charger_is_ready(
    installed, charger, host, settings
):
    import asyncio

    from django.test import AsyncClient
    from django.urls import reverse
    from django.utils import timezone

    client = await connect201()
    web = AsyncClient()
    await web.aforce_login(host)
    url = reverse("chargers:charger-security-action", args=["CP-TEST-1"])
    page = reverse("chargers:charger-security", args=["CP-TEST-1"])
    # No V2G certificate, no provider: nothing is sent, the host is told what is missing.
    response = await web.post(url, {"what": "pnc_on"}, follow=True)
    text = response.content.decode()
    assert "Plug &amp; Charge was not turned on" in text and "no valid V2G certificate" in text
    await sync_to_async(ChargerCertificate.objects.create)(
        charger=charger,
        certificate_type="V2GCertificate",
        serial_number="1",
        fingerprint_sha256="1" * 64,
        subject="CN=SECC",
        not_before=timezone.now(),
        not_after=timezone.now() + timezone.timedelta(days=300),
        certificate_pem="",
        delivery="Accepted",
    )
    settings.OUTBOUND_URL_ALLOWLIST = ["pki.example.test"]
    await sync_to_async(services.settings_save)(
        organization_id=charger.property.organization_id,
        provider_url="https://pki.example.test/",
        provider_token=None,
        v2g_signer="",
    )
    assert b"Ready: roots installed" in (await web.get(page)).content
    request = asyncio.create_task(web.post(url, {"what": "pnc_on"}))
    # The device model does not say how many items (or bytes) a SetVariables may carry: the
    # request goes whole (B06.FR.05: only a reported limit bounds it), and no limit is asked
    # first (conformance case TC_B_07 takes such a GetVariables for the operator's own).
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "SetVariables", call
    sent = call[3]
    results = [
        {"attributeStatus": "Accepted", "component": d["component"], "variable": d["variable"]}
        for d in sent["setVariableData"]
    ]
    await client.send([3, call[1], {"setVariableResult": results}])
    await request
    await client.close()
    values = {d["variable"]["name"]: d["attributeValue"] for d in sent["setVariableData"]}
    assert {d["component"]["name"] for d in sent["setVariableData"]} == {"ISO15118Ctrlr"}
    assert values["PnCEnabled"] == "true" and values["CentralContractValidationAllowed"] == "true"
    assert values["ContractValidationOffline"] == "false"


async def test_a_v2g_csr_is_forwarded_to_the_provider_and_its_chain_checked(
    installed, charger, settings
):
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    # The provider signs with the V2G sub-CA 2 of the hierarchy whose root the organization has.
    request_pem = csr("SECC-CP-TEST-1")
    request = x509.load_pem_x509_csr(request_pem.encode())
    now = datetime.now(UTC)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(request.subject)
        .issuer_name(installed.v2g_sub2.certificate.subject)
        .public_key(request.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=60))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(installed.v2g_sub2.key, hashes.SHA256())
    )
    chain = chains.pem(leaf) + installed.v2g_sub2.pem + installed.v2g_sub1.pem
    provider = Provider({"certificateChain": chain})
    settings.OUTBOUND_URL_ALLOWLIST = [
        f"127.0.0.1:{provider.port}",
        f"127.0.0.1:{installed.responder.port}",
    ]
    await sync_to_async(services.settings_save)(
        organization_id=charger.property.organization_id,
        provider_url=f"http://127.0.0.1:{provider.port}",
        provider_token=None,
        v2g_signer="provider",
    )
    client = await connect201()
    answer = await client.result(
        "SignCertificate", {"csr": request_pem, "certificateType": "V2GCertificate"}
    )
    assert answer == {"status": "Accepted"}
    call = await client.receive(timeout=GENEROUS_S)
    assert call[2] == "CertificateSigned" and call[3]["certificateChain"] == chain
    await client.send([3, call[1], {"status": "Accepted"}])
    assert provider.bodies == [
        {"path": "/v2g-certificates", "stationId": "CP-TEST-1", "csr": request_pem}
    ]
    # Its sub-CAs are kept: the charger's GetCertificateStatus for them can now be answered.
    data = ocpp_hash_data(
        installed.v2g_sub2.certificate, installed.v2g_sub1.certificate, installed.responder.url
    )
    assert (await client.result("GetCertificateStatus", {"ocspRequestData": data}))[
        "status"
    ] == "Accepted"

    # A chain to a root the organization does not have is never sent.
    stranger = issue("Other V2G Root", None, ca=True)
    provider.answer = {"certificateChain": issue("SECC", stranger, ca=False).pem}
    answer = await client.result(
        "SignCertificate", {"csr": request_pem, "certificateType": "V2GCertificate"}
    )
    assert answer == {"status": "Rejected"}
    await client.close()
    provider.stop()
    assert leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "SECC-CP-TEST-1"


async def test_a_verified_contract_chain_teaches_its_sub_cas_for_later_hash_data(installed):
    assert (await authorize_over_socket(contract_authorize(installed.contract_chain)))[
        "certificateStatus"
    ] == "Accepted"
    data = [
        ocpp_hash_data(
            installed.contract.certificate, installed.mo_sub.certificate, installed.responder.url
        )
    ]
    answer = await authorize_over_socket(contract_authorize(hash_data=data))
    assert answer == {"idTokenInfo": {"status": "Accepted"}, "certificateStatus": "Accepted"}


@pytest.mark.django_db
def test_staff_add_a_sub_ca_only_under_an_installed_root(admin_client, charger):
    from django.urls import reverse

    from pki.models import SubCaCertificate

    organization_id = charger.property.organization_id
    root = issue("MO Root", None, ca=True)
    sub = issue("MO Sub-CA", root, ca=True)
    url = reverse("admin:pki_subcacertificate_add")
    form = {"organization": organization_id, "use": "MORootCertificate", "certificate_pem": sub.pem}
    refused = admin_client.post(url, form)
    assert refused.status_code == 200 and not SubCaCertificate.objects.exists()
    install_root(organization_id, CertificateUse.MO, root)
    assert admin_client.post(url, form).status_code == 302
    assert SubCaCertificate.objects.get().subject.endswith("CN=MO Sub-CA")
