"""Firmware files hosted by us for the chargers (docs/firmware.md "Hosting"): an uploaded file is
kept only when its SHA-256 is the release's, and the release's location becomes its HTTPS
address on this site (L01.FR.08: SITE_URL must be https). The address carries an unguessable
key: chargers download without an account. A release marked bad is no longer served."""

from __future__ import annotations

import hashlib
import re
import secrets
import shutil
from pathlib import Path

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.urls import reverse

from fleet.models import FirmwareRelease

CHUNK = 1 << 20
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class HostingRefused(ValueError):
    """A file that is not hosted, in words for the operator."""


def firmware_root() -> Path:
    """FIRMWARE_ROOT, else <project>/media/firmware (settings define no MEDIA_ROOT)."""
    configured = getattr(settings, "FIRMWARE_ROOT", "")
    return Path(configured) if configured else Path(settings.BASE_DIR) / "media" / "firmware"


def safe_name(name: str) -> str:
    """The file's own name, reduced to characters every charger's URL parser takes."""
    cleaned = _UNSAFE.sub("-", Path(name or "").name).strip(".-")[:100]
    return cleaned or "firmware.bin"


def release_file_store(*, release_id: int, upload: UploadedFile) -> FirmwareRelease:
    """Keep `upload` as the release's file and point the release's location at it. Raises
    HostingRefused (nothing kept, nothing changed) when SITE_URL is not https, the file is too
    large, or its SHA-256 is not the release's."""
    site = str(getattr(settings, "SITE_URL", "") or "")
    if not site.lower().startswith("https://"):
        raise HostingRefused(
            "Firmware is downloaded over HTTPS (L01.FR.08): set SITE_URL to this site's https "
            "address the chargers reach."
        )
    limit = int(getattr(settings, "FIRMWARE_MAX_BYTES", 512 * 1024 * 1024))
    if upload.size is not None and upload.size > limit:
        raise HostingRefused(f"The file is larger than {limit} bytes.")
    release = FirmwareRelease.objects.get(pk=release_id)
    key, name = secrets.token_urlsafe(24), safe_name(upload.name or "")
    folder = firmware_root() / key
    folder.mkdir(parents=True)
    digest = hashlib.sha256()
    try:
        with open(folder / name, "wb") as out:
            for chunk in upload.chunks(CHUNK):
                digest.update(chunk)
                out.write(chunk)
        if digest.hexdigest() != release.sha256:
            raise HostingRefused(
                f"The file's SHA-256 is {digest.hexdigest()}, not the release's "
                f"{release.sha256}: not hosted."
            )
        with transaction.atomic():
            release = FirmwareRelease.objects.select_for_update().get(pk=release_id)
            previous = release.file_key
            release.file_key, release.file_name = key, name
            release.file_size = (folder / name).stat().st_size
            release.location = site.rstrip("/") + reverse("fleet:firmware-file", args=[key, name])
            release.save(update_fields=["file_key", "file_name", "file_size", "location"])
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    if previous:
        shutil.rmtree(firmware_root() / previous, ignore_errors=True)
    return release


def hosted_file(key: str, name: str) -> tuple[Path, FirmwareRelease] | None:
    """The file a charger asks for, and its release; None when there is none (or it is bad)."""
    release = FirmwareRelease.objects.filter(file_key=key, file_name=name, bad=False).first()
    if release is None:
        return None
    path = firmware_root() / release.file_key / release.file_name
    return (path, release) if path.is_file() else None
