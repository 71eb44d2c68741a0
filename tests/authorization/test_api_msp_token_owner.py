"""A token owned by an MSP (no organization of its own) is edited through the API by the MSP's
organization only: its owner is the MSP's organization (typed in issue 50 item 7)."""

import pytest
from rest_framework.test import APIClient

from authorization.models import Token
from tests.factories import MembershipFactory, MspFactory, TokenFactory

pytestmark = pytest.mark.django_db


def _api(membership) -> APIClient:
    client = APIClient()
    client.force_authenticate(membership.user)
    return client


def test_an_msp_token_is_edited_by_the_msps_organization_only():
    owner = MembershipFactory(role="owner")
    viewer = MembershipFactory(role="viewer", organization=owner.organization)
    stranger = MembershipFactory(role="owner")
    token = TokenFactory(organization=None, msp=MspFactory(organization=owner.organization))
    url = f"/api/v1/tokens/{token.pk}/"
    assert _api(stranger).patch(url, {"label": "theirs"}, format="json").status_code == 404
    assert _api(viewer).patch(url, {"label": "viewer"}, format="json").status_code == 403
    answer = _api(owner).patch(url, {"label": "Fleet card"}, format="json")
    assert answer.status_code == 200, answer.content
    assert Token.objects.get(pk=token.pk).label == "Fleet card"
