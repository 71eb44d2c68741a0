"""QR codes for charger labels, drawn server-side as SVG with segno (no external service)."""

from __future__ import annotations

from urllib.parse import quote

import segno
from django.conf import settings


def landing_url(base_url: str, station_id: str, connector_id: int | None = None) -> str:
    """Return https://<site>/s/<station_id>[?c=<connector>], the URL a label encodes."""
    base = (getattr(settings, "SITE_URL", "") or base_url).rstrip("/")
    url = f"{base}/s/{quote(station_id, safe='')}"
    if connector_id:
        url += f"?c={connector_id}"
    return url


def qr_svg(data: str, *, scale: int = 6) -> str:
    """Return an inline SVG (no XML declaration) of `data` at error correction level M.

    Level M survives a worn or partly dirty label while staying scannable at sticker size.
    """
    code = segno.make(data, error="m", micro=False)
    return code.svg_inline(scale=scale, border=2, dark="#000", light="#fff")
