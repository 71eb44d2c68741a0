"""The tenants that tests of this directory share (conftest.py): each test that shares them finds
them as made, whatever an earlier one wrote to their rows or changed in their objects, and a test
that commits or asks for one tenant gets its own."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import Client

from reliability.models import AlertRule
from stays.models import Unit

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("turn", range(3))
def test_a_shared_tenant_is_found_as_made_whatever_the_test_before_changed(turn, mine, theirs):
    # Made once, in a transaction around this test's own: the world's and the test's.
    assert len(connection.atomic_blocks) == 2
    assert mine.unit.name == "A Apartment 1" and theirs.unit.name == "B Apartment 1"
    assert Unit.objects.get(pk=mine.unit.pk).name == "A Apartment 1"
    assert not AlertRule.objects.filter(after_s=12345).exists()
    assert mine.owner.last_login is None

    # Changes of every kind a test makes: its objects, their rows, new rows, a sign-in.
    mine.unit.name = theirs.unit.name = f"changed by {turn}"
    mine.unit.save()
    AlertRule.objects.create(organization=mine.org, kind="offline", after_s=12345)
    Client().force_login(mine.owner)
    assert mine.owner.last_login is not None


def test_a_test_with_one_tenant_makes_its_own(mine):
    assert len(connection.atomic_blocks) == 1
    assert Unit.objects.filter(name="A Apartment 1").count() == 1
    assert not Unit.objects.filter(name="B Apartment 1").exists()


@pytest.mark.django_db(transaction=True)
def test_a_transactional_test_makes_its_own(mine, theirs):
    assert not connection.in_atomic_block
    assert Unit.objects.filter(name="A Apartment 1").count() == 1
