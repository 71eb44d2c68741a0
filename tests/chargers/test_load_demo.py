"""`make run` loads the demo data every time it starts: loading twice must work and change nothing."""

import pytest
from django.core.management import call_command

from authorization.models import Token
from chargers.models import Charger

pytestmark = pytest.mark.django_db


def test_demo_data_loads_twice():
    call_command("load_demo")
    counts = (Charger.objects.count(), Token.objects.count())
    call_command("load_demo")
    call_command("load_demo_billing")
    call_command("load_demo_billing")
    assert (Charger.objects.count(), Token.objects.count()) == counts
    assert counts[0] == 4
