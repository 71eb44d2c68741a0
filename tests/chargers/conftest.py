"""Fixtures shared by the charger tests."""

import pytest

from chargers.plumbing.journal import journal


@pytest.fixture
def outage(settings, tmp_path, monkeypatch):
    """The outage journal in a temporary directory, its replay left to the test; a test engages
    it (or the code under test does) and it is released afterwards."""
    settings.OCPP_JOURNAL_DIR = tmp_path

    async def no_recovery():
        return None

    monkeypatch.setattr(journal, "_recover", no_recovery)
    yield journal
    journal._engaged = False
    journal.close()
    journal.key, journal._path, journal._seq, journal._replayed_offset = "", None, 0, 0


def _announced(signal, uid):
    seen: list[int] = []

    def receiver(sender, session_id, **kwargs):
        seen.append(session_id)

    signal.connect(receiver, dispatch_uid=uid, weak=False)  # the receiver outlives this call
    return seen


@pytest.fixture
def announced_started():
    """The ids of the sessions announced as started (chargers.signals.session_started)."""
    from chargers.signals import session_started

    yield _announced(session_started, "test-announced-started")
    session_started.disconnect(dispatch_uid="test-announced-started")


@pytest.fixture
def announced_finished():
    """The ids of the sessions announced as finished (chargers.signals.session_finished)."""
    from chargers.signals import session_finished

    yield _announced(session_finished, "test-announced-finished")
    session_finished.disconnect(dispatch_uid="test-announced-finished")
