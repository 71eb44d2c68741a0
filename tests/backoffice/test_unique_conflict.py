"""A unique violation lost in a race is a 409 with a sentence on pages and the API, not a 500
(backoffice.conflicts); any other integrity error stays a server error."""

from __future__ import annotations

import json

import pytest
from django.db import IntegrityError, transaction
from django.test import RequestFactory

from backoffice.conflicts import CONFLICT, UniqueConflictMiddleware
from backoffice.models import Membership
from tests.factories import MembershipFactory

pytestmark = pytest.mark.django_db


def _raised(**fields) -> IntegrityError:
    try:
        with transaction.atomic():
            Membership.objects.create(**fields)
    except IntegrityError as exc:
        return exc
    raise AssertionError("no integrity error")


def _answer(path: str, exc: Exception, user):
    request = RequestFactory().post(path, HTTP_REFERER="http://testserver/tokens/")
    request.user = user
    request.session = {}
    return UniqueConflictMiddleware(lambda r: None).process_exception(request, exc)


def test_the_second_of_two_same_writes_is_a_409_that_says_what_happened():
    first = MembershipFactory()
    twice = _raised(user=first.user, organization=first.organization, role="viewer")
    api = _answer("/api/v1/tokens/", twice, first.user)
    assert api.status_code == 409 and json.loads(api.content) == {"detail": CONFLICT}
    page = _answer("/tokens/", twice, first.user)
    assert page.status_code == 409
    html = page.content.decode()
    assert "Reload to see what is saved now" in html and 'href="http://testserver/tokens/"' in html
    assert "Traceback" not in html and "IntegrityError" not in html


def test_other_integrity_errors_and_ocpi_are_left_to_the_server_error_path():
    first = MembershipFactory()
    missing = _raised(user=first.user, organization=None, role="viewer")  # NOT NULL, not unique
    assert _answer("/api/v1/tokens/", missing, first.user) is None
    twice = _raised(user=first.user, organization=first.organization, role="viewer")
    assert _answer("/ocpi/2.2.1/cpo/tokens/NL/ABC/1", twice, first.user) is None
