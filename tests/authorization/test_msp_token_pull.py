"""Pulling an MSP's token list (OCPI GET tokens, paginated, incremental)."""

import pytest

from authorization.models import Token
from authorization.services import msp_tokens_pull
from authorization.tasks import msp_tokens_pull_all_task
from tests.factories import MspFactory
from tests.msp_server import FakeMsp

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _stub_msp_allow_listed(settings):
    """The stub MSP (tests/msp_server.py) listens on 127.0.0.1 over http: staff allow-list it."""
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]


def test_pull_pages_through_the_list_and_then_asks_incrementally():
    server = FakeMsp(
        tokens=[{"uid": f"0A{n:04d}", "type": "RFID", "valid": n % 7 != 0} for n in range(12)]
    )
    try:
        msp = MspFactory(live_validation_url=server.url, live_validation_token="cred")
        assert msp_tokens_pull(msp=msp, page_size=5) == 12
        assert Token.objects.filter(msp=msp).count() == 12
        assert Token.objects.get(msp=msp, uid="0A0007").valid is False
        offsets = [r["query"]["offset"][0] for r in server.requests]
        assert offsets == ["0", "5", "10"]
        assert all(r["auth"] == "Token cred" for r in server.requests)
        msp.refresh_from_db()
        assert msp.tokens_synced_at is not None
        server.requests.clear()
        server.tokens = [{"uid": "0A0001", "valid": False}]
        msp_tokens_pull(msp=msp)
        assert "date_from" in server.requests[0]["query"]
        assert Token.objects.get(msp=msp, uid="0A0001").valid is False
        assert Token.objects.filter(msp=msp).count() == 12
    finally:
        server.close()


def test_periodic_task_pulls_every_msp_with_an_endpoint():
    server = FakeMsp(tokens=[{"uid": "0B0001"}])
    try:
        MspFactory(live_validation_url=server.url)
        MspFactory(live_validation_url="")
        # Celery's 'will the join block' flag is one global for the process: an eager task running in
        # another thread of the test process (a server or consumer a test started) sets it meanwhile.
        assert msp_tokens_pull_all_task.delay().get(disable_sync_subtasks=False) == 1
        assert Token.objects.filter(uid="0B0001").exists()
    finally:
        server.close()
