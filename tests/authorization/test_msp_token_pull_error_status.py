"""A provider that answers its token list with an OCPI error status at HTTP 200 (OCPI puts the
outcome in status_code: 3000 its server failed, 2xxx it refused us) sent no list: the pull fails
and the sync point stays, so the next incremental pull still asks for the cards changed since
the last good one (none is skipped for good)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from authorization.models import Token
from authorization.services import MspListUnreadable, msp_tokens_pull
from tests.factories import MspFactory
from tests.msp_server import FakeMsp

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _stub_msp_allow_listed(settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]


@pytest.mark.parametrize("status", [3000, 2001])
def test_an_ocpi_error_status_keeps_the_sync_point_and_the_next_pull_gets_the_cards(status):
    server = FakeMsp(tokens=[{"uid": "0F0001", "valid": False}])
    try:
        synced = timezone.now() - timedelta(hours=1)
        msp = MspFactory(live_validation_url=server.url, tokens_synced_at=synced)
        server.raw_get = b'{"status_code": %d, "status_message": "x"}' % status

        with pytest.raises(MspListUnreadable):
            msp_tokens_pull(msp=msp)

        msp.refresh_from_db()
        assert msp.tokens_synced_at == synced
        # The provider is back: the next pull asks from the same point and gets the card.
        server.raw_get = None
        server.requests.clear()
        assert msp_tokens_pull(msp=msp) == 1
        assert server.requests[0]["query"]["date_from"] == [synced.strftime("%Y-%m-%dT%H:%M:%SZ")]
        assert Token.objects.get(msp=msp, uid="0F0001").valid is False
    finally:
        server.close()
