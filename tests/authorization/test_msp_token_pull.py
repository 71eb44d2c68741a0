"""Pulling an MSP's token list (OCPI GET tokens, paginated, incremental)."""

import pytest

from authorization.models import Token
from authorization.services import MspListUnreadable, msp_tokens_pull
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


def test_items_that_are_no_card_are_skipped_and_only_valid_true_grants():
    """A provider's list is read item by item: what is no card (not an object, no text uid, a
    NUL PostgreSQL cannot store, longer than OCPI's 36) is skipped, the cards are stored, and a
    `valid` that is not a boolean never makes a card valid."""
    server = FakeMsp(
        tokens=[
            {"uid": "0C0001", "valid": True},
            "junk",
            5,
            None,
            {"uid": None},
            {"uid": 123},
            {"uid": "0C\u0000X"},
            {"uid": "X" * 37},
            {"uid": "0C0002", "valid": "false"},
            {"uid": "0C0003", "valid": 1},
        ]
    )
    try:
        msp = MspFactory(live_validation_url=server.url)
        assert msp_tokens_pull(msp=msp) == 3
        valid = dict(Token.objects.filter(msp=msp).values_list("uid", "valid"))
        assert valid == {"0C0001": True, "0C0002": False, "0C0003": False}
    finally:
        server.close()


@pytest.mark.parametrize(
    "body",
    [
        b"<html>maintenance</html>",
        b'[{"uid": "0D0001"}]',
        b'{"status_code": 1000, "data": {"uid": "0D0001"}}',
    ],
)
def test_an_answer_that_is_no_token_list_is_refused_and_keeps_the_sync_point(body):
    server = FakeMsp()
    server.raw_get = body
    try:
        msp = MspFactory(live_validation_url=server.url)
        with pytest.raises(MspListUnreadable):
            msp_tokens_pull(msp=msp)
        msp.refresh_from_db()
        assert msp.tokens_synced_at is None and not Token.objects.filter(msp=msp).exists()
    finally:
        server.close()


def test_a_provider_that_ignores_offset_is_stopped_at_its_second_page():
    """Every full page answered again from the start would page forever: the same page twice
    stops the pull (the task retries later with back-off)."""
    server = FakeMsp()
    server.raw_get = b'{"status_code": 1000, "data": [{"uid": "0E0001"}, {"uid": "0E0002"}]}'
    try:
        msp = MspFactory(live_validation_url=server.url)
        with pytest.raises(MspListUnreadable, match="same page again"):
            msp_tokens_pull(msp=msp, page_size=2)
        assert len(server.requests) == 2
        msp.refresh_from_db()
        assert msp.tokens_synced_at is None
    finally:
        server.close()


def test_the_incremental_pull_sends_date_from_as_an_ocpi_datetime():
    """types "DateTime": UTC with Z, string(25), "other formats/patterns are not allowed" (not
    isoformat's "+00:00" with microseconds, which a strict provider refuses)."""
    from datetime import UTC, datetime

    server = FakeMsp(tokens=[])
    try:
        synced = datetime(2026, 3, 29, 1, 30, 5, 123456, tzinfo=UTC)
        msp = MspFactory(live_validation_url=server.url, tokens_synced_at=synced)
        msp_tokens_pull(msp=msp)
        assert server.requests[0]["query"]["date_from"] == ["2026-03-29T01:30:05Z"]
    finally:
        server.close()
