"""The organization's Plug & Charge page: roots and the PKI provider, per organization."""

from __future__ import annotations

import pytest
from django.urls import reverse

from pki.models import PkiSettings, RootCertificate
from pki.services import root_add
from tests.factories import MembershipFactory, OrganizationFactory

from .pkitools import issue

pytestmark = pytest.mark.django_db


def _url(organization_id: int) -> str:
    return reverse("pki:organization-pki", args=[organization_id])


def test_a_manager_installs_and_removes_a_root_and_chooses_a_provider(client, settings):
    membership = MembershipFactory(role="manager")
    client.force_login(membership.user)
    url = _url(membership.organization_id)
    pem = issue("Checker MO Root", None, ca=True).pem
    response = client.post(
        url, {"what": "add_root", "use": "MORootCertificate", "certificate_pem": pem}
    )
    assert response.status_code == 302
    root = RootCertificate.objects.get(organization_id=membership.organization_id)
    page = client.get(url).content.decode()
    assert "Checker MO Root" in page and "Mobility operator root" in page

    refused = client.post(
        url, {"what": "add_root", "use": "MORootCertificate", "certificate_pem": "junk"}
    )
    assert (
        refused.status_code == 400
        and "not a PEM encoded X.509 certificate" in refused.content.decode()
    )

    blocked = client.post(
        url, {"what": "settings", "provider_url": "https://127.0.0.1/pki", "v2g_signer": ""}
    )
    assert blocked.status_code == 400 and "private network" in blocked.content.decode()
    assert not PkiSettings.objects.exists()
    settings.OUTBOUND_URL_ALLOWLIST = ["pki.example.test"]
    saved = client.post(
        url,
        {
            "what": "settings",
            "provider_url": "https://pki.example.test/",
            "provider_token": "s3cr3t-provider-token",
            "v2g_signer": "provider",
        },
    )
    assert saved.status_code == 302
    assert PkiSettings.objects.get().v2g_signer == "provider"
    assert "s3cr3t-provider-token" not in client.get(url).content.decode()

    assert client.post(url, {"what": "delete_root", "root_id": root.pk}).status_code == 302
    assert not RootCertificate.objects.exists()


def test_another_organization_and_its_roots_are_out_of_reach(client):
    mine = MembershipFactory(role="owner")
    other = OrganizationFactory()
    theirs = root_add(
        organization_id=other.pk,
        use="V2GRootCertificate",
        certificate_pem=issue("Their root", None, ca=True).pem,
    )
    client.force_login(mine.user)
    assert client.get(_url(other.pk)).status_code == 404
    assert client.post(_url(other.pk), {"what": "local_v2g"}).status_code == 404
    # Their root named in my own page's form: not found, not removed.
    response = client.post(
        _url(mine.organization_id), {"what": "delete_root", "root_id": theirs.pk}
    )
    assert response.status_code == 404
    assert RootCertificate.objects.filter(pk=theirs.pk).exists()
    assert not PkiSettings.objects.exists()


def test_a_viewer_reads_but_does_not_change(client):
    viewer = MembershipFactory(role="viewer")
    client.force_login(viewer.user)
    assert client.get(_url(viewer.organization_id)).status_code == 200
    pem = issue("Root", None, ca=True).pem
    response = client.post(
        _url(viewer.organization_id),
        {"what": "add_root", "use": "MORootCertificate", "certificate_pem": pem},
    )
    assert response.status_code == 403 and not RootCertificate.objects.exists()
