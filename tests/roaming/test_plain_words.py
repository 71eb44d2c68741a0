"""A partner's last error in words a host can act on (roaming.plain; pure)."""

import pytest

from roaming.plain import error_words


@pytest.mark.parametrize(
    "raw, words",
    [
        (
            "POST cdrs: HTTP 503",
            "Sending a charge detail record (CDR) failed: its server failed (HTTP 503). "
            "It waits and is sent again automatically.",
        ),
        (
            "PATCH locations: HTTP 401",
            "Sending a charger's status failed: it refused our credentials (HTTP 401): it may "
            "have unregistered us; connect to it again. It waits and is sent again automatically.",
        ),
        (
            "PUT sessions: OCPI 2001: total_cost missing",
            "Sending a session failed: it refused the data as invalid (OCPI 2001): “total_cost "
            "missing”. It waits and is sent again automatically.",
        ),
        (
            "PUT sessions: https://emsp.example/ocpi/2.2.1/sessions/NL/EVB/1: it did not answer "
            "in time",
            "Sending a session failed: it did not answer in time. It waits and is sent again "
            "automatically.",
        ),
        (
            "POST cdrs: The partner has no cdrs receiver endpoint.",
            "Sending a charge detail record (CDR) failed: it gave us no address for this module: "
            "ask it to offer it, or connect again. It waits and is sent again automatically.",
        ),
        (
            "Registration failed: OCPI 3002: no common version",
            "Connecting failed: we share no OCPI version with it (OCPI 3002): “no common version”.",
        ),
        ("", ""),
    ],
)
def test_a_partners_error_reads_as_what_failed_and_why(raw, words):
    assert error_words(raw) == words
