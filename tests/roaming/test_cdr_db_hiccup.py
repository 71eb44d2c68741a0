"""Our database fails while a CPO's CDR is being taken: the CPO gets a plain OCPI server error
and nothing is half-kept, so its retry does the whole of it: the CDR once, and the session it
ends is ended (the driver is not shown charging, nor kept from starting again)."""

import pytest
from django.db import connection

from roaming import emsp_driving
from roaming.models import PartnerCdr, PartnerSession
from tests.factories import OrganizationFactory, TokenFactory
from tests.roaming.test_emsp_cdrs import example, our_cdr, push_tariff
from tests.roaming.test_emsp_network import send
from tests.roaming.test_emsp_tokens import cpo_partner, with_identity

pytestmark = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the hiccup is a PostgreSQL trigger"
)


def _sessions_fail(on: bool) -> None:
    """While on, every update of a partner session fails in the database itself."""
    table = PartnerSession._meta.db_table
    with connection.cursor() as cursor:
        if on:
            cursor.execute(
                "CREATE OR REPLACE FUNCTION test_hiccup() RETURNS trigger AS $$ BEGIN "
                "RAISE EXCEPTION 'database hiccup'; END $$ LANGUAGE plpgsql"
            )
            cursor.execute(
                f"CREATE TRIGGER test_hiccup BEFORE UPDATE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION test_hiccup()"
            )
        else:
            cursor.execute(f"DROP TRIGGER test_hiccup ON {table}")


@pytest.mark.django_db(transaction=True)
def test_a_cdr_whose_taking_failed_midway_is_taken_whole_on_the_retry(client):
    org = OrganizationFactory()
    with_identity(org)
    cpo_partner(org, cpo_country_code="BE", cpo_party_id="BEC")
    card = TokenFactory(organization=org, uid="123ABC")
    running = example(
        "session_example_2_short_finished.json",
        "2.2.1",
        id="S9",
        status="ACTIVE",
        last_updated="2026-03-02T10:05:00Z",
    )
    assert send(client, "PUT", "/ocpi/2.2.1/emsp/sessions/BE/BEC/S9", running).status_code == 200
    cdr = our_cdr("2.2.1", card, session_id="S9")
    push_tariff(client, "2.2.1", cdr)

    _sessions_fail(True)
    try:
        failed = send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", cdr)
    finally:
        _sessions_fail(False)

    # Our failure on a call that reached the OCPI layer: 3000 over HTTP 200 (status_codes).
    assert (failed.status_code, failed.json()["status_code"]) == (200, 3000)
    assert "hiccup" not in failed.content.decode()
    retried = send(client, "POST", "/ocpi/2.2.1/emsp/cdrs", cdr)
    assert retried.json()["status_code"] == 1000
    assert PartnerCdr.objects.count() == 1
    assert PartnerSession.objects.get(session_id="S9").status == "COMPLETED"
    assert emsp_driving.open_session(card) is None
