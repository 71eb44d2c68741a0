"""The Plug & Charge trust API (pki/api.py): roots and PKI settings per organization, scoped to
the caller's memberships; nothing changes on a refusal."""

from __future__ import annotations

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from pki.models import PkiSettings, RootCertificate
from tests.factories import MembershipFactory, OrganizationFactory

from .pkitools import issue

pytestmark = pytest.mark.django_db


@pytest.fixture
def root_pem():
    return issue("Checker MO Root", None, ca=True).pem


def _client(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def _roots_url(organization_id: int) -> str:
    return reverse("organization-root-certificates", args=[organization_id])


def test_a_manager_installs_an_mo_root_and_sees_it(root_pem):
    membership = MembershipFactory(role="manager")
    api = _client(membership.user)
    url = _roots_url(membership.organization_id)
    answer = api.post(url, {"use": "MORootCertificate", "certificate_pem": root_pem}, format="json")
    assert answer.status_code == 201, answer.content
    assert answer.json()["subject"].startswith("O=Test PKI,CN=Checker MO Root")
    assert [r["use"] for r in api.get(url).json()] == ["MORootCertificate"]
    root = RootCertificate.objects.get()
    detail = reverse("organization-root-certificate", args=[membership.organization_id, root.pk])
    assert api.delete(detail).status_code == 204
    assert not RootCertificate.objects.exists()


def test_another_organizations_roots_are_not_found_and_not_changed(root_pem):
    mine = MembershipFactory(role="owner")
    other = OrganizationFactory()
    theirs = RootCertificate.objects.create(
        organization=other,
        use="MORootCertificate",
        certificate_pem=root_pem,
        fingerprint_sha256="f" * 64,
        subject="x",
        not_after="2030-01-01T00:00:00Z",
    )
    api = _client(mine.user)
    assert api.get(_roots_url(other.pk)).status_code == 404
    posted = api.post(
        _roots_url(other.pk),
        {"use": "MORootCertificate", "certificate_pem": root_pem},
        format="json",
    )
    assert posted.status_code == 404
    detail = reverse("organization-root-certificate", args=[mine.organization_id, theirs.pk])
    assert api.delete(detail).status_code == 404
    assert RootCertificate.objects.count() == 1


def test_a_viewer_may_read_but_not_install(root_pem):
    viewer = MembershipFactory(role="viewer")
    api = _client(viewer.user)
    assert api.get(_roots_url(viewer.organization_id)).status_code == 200
    answer = api.post(
        _roots_url(viewer.organization_id),
        {"use": "MORootCertificate", "certificate_pem": root_pem},
        format="json",
    )
    assert answer.status_code == 403 and not RootCertificate.objects.exists()


def test_a_leaf_or_garbage_is_not_a_root():
    owner = MembershipFactory(role="owner")
    api = _client(owner.user)
    root = issue("Root", None, ca=True)
    leaf = issue("Leaf", root, ca=False)
    for text in (leaf.pem, "not a certificate", root.pem + leaf.pem):
        answer = api.post(
            _roots_url(owner.organization_id),
            {"use": "V2GRootCertificate", "certificate_pem": text},
            format="json",
        )
        assert answer.status_code == 400 and "certificate_pem" in answer.json()
    assert not RootCertificate.objects.exists()


def test_pki_settings_keep_the_token_secret_and_refuse_a_private_provider(settings):
    owner = MembershipFactory(role="owner")
    api = _client(owner.user)
    url = reverse("organization-pki-settings", args=[owner.organization_id])
    refused = api.put(
        url,
        {"provider_url": "https://10.0.0.5/pki", "provider_token": "t", "v2g_signer": ""},
        format="json",
    )
    assert refused.status_code == 400 and "provider_url" in refused.json()
    assert not PkiSettings.objects.exists()
    settings.OUTBOUND_URL_ALLOWLIST = ["pki.example.test"]
    saved = api.put(
        url,
        {
            "provider_url": "https://pki.example.test/v1",
            "provider_token": "secret",
            "v2g_signer": "provider",
        },
        format="json",
    )
    assert saved.status_code == 200, saved.content
    assert saved.json() == {
        "provider_url": "https://pki.example.test/v1",
        "provider_token_set": True,
        "v2g_signer": "provider",
    }
    row = PkiSettings.objects.get()
    assert row.provider_token.startswith("fernet:") and "secret" not in row.provider_token
    other = OrganizationFactory()
    assert api.get(reverse("organization-pki-settings", args=[other.pk])).status_code == 404


def test_staff_add_a_root_in_admin_through_the_same_checks(admin_client, root_pem):
    organization = OrganizationFactory()
    url = reverse("admin:pki_rootcertificate_add")
    form = {"organization": organization.pk, "use": "MORootCertificate"}
    refused = admin_client.post(url, {**form, "certificate_pem": "not a certificate"})
    assert refused.status_code == 200 and not RootCertificate.objects.exists()
    assert admin_client.post(url, {**form, "certificate_pem": root_pem}).status_code == 302
    root = RootCertificate.objects.get()
    assert root.subject.endswith("CN=Checker MO Root") and len(root.fingerprint_sha256) == 64
    # Kept as added: the change page shows it read-only, it is never edited.
    page = admin_client.get(reverse("admin:pki_rootcertificate_change", args=[root.pk]))
    assert page.status_code == 200 and b'name="certificate_pem"' not in page.content
