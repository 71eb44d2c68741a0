"""Fixtures shared by the charger tests."""

import pytest

from chargers.journal import journal


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
