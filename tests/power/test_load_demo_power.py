"""The demo power loader gives make run's demo site a budget, idempotently."""

import pytest
from django.core.management import CommandError, call_command

from power.models import Circuit, ConnectorPower, SiteBudget

pytestmark = pytest.mark.django_db


def test_load_demo_power_twice_changes_nothing():
    with pytest.raises(CommandError):
        call_command("load_demo_power")
    call_command("load_demo")
    call_command("load_demo_power")
    counts = (SiteBudget.objects.count(), Circuit.objects.count(), ConnectorPower.objects.count())
    call_command("load_demo_power")
    assert (
        (
            SiteBudget.objects.count(),
            Circuit.objects.count(),
            ConnectorPower.objects.count(),
        )
        == counts
        == (1, 1, 4)
    )
    site = SiteBudget.objects.get()
    assert site.property.name == "Harbour View Garage" and site.limit_a == 32
