"""Firmware hosted by us: an upload is kept only with the release's SHA-256, the release's
location becomes its HTTPS address here, and the chargers download it (no account) with its
checksum; a release marked bad is not served; other organizations cannot upload."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from rest_framework.test import APIClient

from fleet.campaigns import services
from fleet.models import FirmwareRelease
from tests.factories import MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db

IMAGE = b"\x7fELF firmware image " * 1000
SHA = hashlib.sha256(IMAGE).hexdigest()


@pytest.fixture
def site(settings, tmp_path):
    settings.SITE_URL = "https://cs.example.com"
    settings.FIRMWARE_ROOT = str(tmp_path / "firmware")
    prop = PropertyFactory()
    owner = MembershipFactory(organization=prop.organization).user
    release = FirmwareRelease.objects.create(
        organization=prop.organization,
        version="2.0",
        vendor="Acme",
        model="A1",
        location="https://vendor.example/a1.bin",
        sha256=SHA,
    )
    return owner, release


def upload(user, release, content: bytes, name: str = "a1 2.0.bin"):
    api = APIClient()
    api.force_authenticate(user)
    return api.post(
        f"/api/v1/firmware/releases/{release.pk}/file/",
        {"file": SimpleUploadedFile(name, content)},
        format="multipart",
    )


def test_an_uploaded_release_is_served_over_https_with_its_checksum(site, tmp_path):
    owner, release = site
    wrong = upload(owner, release, IMAGE + b"x")
    assert wrong.status_code == 400 and "not hosted" in str(wrong.json())
    release.refresh_from_db()
    assert release.location == "https://vendor.example/a1.bin" and not release.file_key
    assert not any((tmp_path / "firmware").rglob("*.bin"))

    kept = upload(owner, release, IMAGE)
    assert kept.status_code == 200, kept.content
    release.refresh_from_db()
    assert release.location.startswith("https://cs.example.com/fleet/firmware/")
    assert release.location.endswith("/a1-2.0.bin") and release.file_size == len(IMAGE)
    assert kept.json()["location"] == release.location

    path = release.location.removeprefix("https://cs.example.com")
    download = Client().get(path)  # a charger: no account
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == IMAGE
    assert download["X-Checksum-Sha256"] == SHA
    assert Client().get(path.replace(release.file_key, "not-the-key")).status_code == 404

    # A campaign sends the hosted location.
    assert services.FirmwareRelease.objects.get(pk=release.pk).location == release.location

    services.release_mark_bad(release_id=release.pk, reason="bricks A1")
    assert Client().get(path).status_code == 404


def test_uploads_need_https_and_the_releases_organization(site, settings):
    owner, release = site
    assert upload(MembershipFactory().user, release, IMAGE).status_code == 404
    viewer = MembershipFactory(organization=release.organization, role="viewer").user
    assert upload(viewer, release, IMAGE).status_code == 403
    settings.SITE_URL = "http://cs.example.com"
    refused = upload(owner, release, IMAGE)
    assert refused.status_code == 400 and "HTTPS" in str(refused.json())
    release.refresh_from_db()
    assert not release.file_key
