"""The Credit CDR of a CDR we sent (mod_cdrs "Credit CDRs"), in both versions' Price."""

from datetime import UTC, datetime, timedelta

import pytest

from roaming import mapping


def test_a_credit_cdr_negates_only_the_total_cost_in_221_and_230():
    sent = {
        "id": "CDR-7",
        "total_energy": 6,
        "total_energy_cost": {"excl_vat": 1.8},
        "last_updated": "2026-11-20T09:00:00Z",
    }
    at = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
    v221 = mapping.credit_cdr(
        {**sent, "total_cost": {"excl_vat": 3.3, "incl_vat": 3.99}}, credit_id="CDR-7-C", created=at
    )
    assert v221 == {
        "id": "CDR-7-C",
        "credit": True,
        "credit_reference_id": "CDR-7",
        "total_energy": 6,
        "total_energy_cost": {"excl_vat": 1.8},  # only total_cost turns negative
        "total_cost": {"excl_vat": -3.3, "incl_vat": -3.99},
        "last_updated": "2026-11-21T10:00:00Z",
    }
    tax = {"name": "VAT", "percentage": 21, "amount": 0.69}
    v230 = mapping.credit_cdr(
        {**sent, "total_cost": {"before_taxes": 3.3, "taxes": [tax]}},
        credit_id="CDR-7-C",
        created=at,
    )
    assert v230["total_cost"] == {"before_taxes": -3.3, "taxes": [{**tax, "amount": -0.69}]}
    assert sent["id"] == "CDR-7" and tax["amount"] == 0.69  # what was sent is left as it was


@pytest.mark.django_db(transaction=True)
def test_cdrs_made_before_credits_are_marked_when_made_on_an_estimated_stop():
    """Migration 0020: a CDR whose session's stop is still our estimate, or whose end the
    charger's own stop has moved since, is marked `estimated` (the sweep credits and replaces
    those of the last week); any other is not."""
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor

    from chargers.models import ChargingSession
    from roaming.models import Cdr
    from tests.factories import ChargerFactory
    from tests.roaming.conftest import connected_partner

    charger = ChargerFactory()
    partner = connected_partner(charger.property.organization)
    stop = datetime(2026, 11, 20, 9, 40, tzinfo=UTC)

    def session(n: int, reason: str) -> ChargingSession:
        return ChargingSession.objects.create(
            charger=charger,
            connector_id=1,
            transaction_id=n,
            started_at=stop - timedelta(hours=2),
            stopped_at=stop,
            status="completed",
            stop_reason=reason,
        )

    sent = {"NoStopTransaction": "2026-11-20T09:40:00Z", "Local": "2026-11-20T09:00:00Z"}
    cases = [(session(1, "NoStopTransaction"), sent["NoStopTransaction"])]
    cases += [(session(2, "Local"), sent["Local"]), (session(3, "Local"), "2026-11-20T09:40:00Z")]
    before, after = ("roaming", "0019_hub_routed_live_asks"), ("roaming", "0020_cdr_credits")
    executor = MigrationExecutor(connection)
    executor.migrate([before])
    old = executor.loader.project_state([before]).apps.get_model("roaming", "Cdr")
    for s, end in cases:
        old.objects.create(
            session_id=s.pk,
            partner_id=partner.pk,
            cdr_id=f"CDR-{s.pk}",
            data={"end_date_time": end},
        )
    executor = MigrationExecutor(connection)
    executor.migrate([after])
    executor.loader.build_graph()
    try:
        marked = dict(Cdr.objects.values_list("session__transaction_id", "estimated"))
        assert marked == {1: True, 2: True, 3: False}
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
