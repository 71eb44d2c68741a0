"""Django admin for support agents: every model's changelist loads, and agent actions work."""

import pytest
from django.contrib import admin
from django.urls import reverse

from authorization.models import Token, TokenGroup
from tests.factories import ChargerFactory, TokenFactory, TokenGroupFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(admin_client):
    return admin_client


def test_every_registered_model_has_a_searchable_filterable_changelist(agent):
    ChargerFactory()
    for model, model_admin in admin.site._registry.items():
        if model._meta.app_label not in (
            "backoffice",
            "chargers",
            "metering",
            "authorization",
            "pki",
        ):
            continue
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        assert agent.get(url, {"q": "x"}).status_code == 200, url
        assert model_admin.search_fields, model
        assert model_admin.list_filter or model_admin.date_hierarchy, model


def test_agent_whitelists_uids_into_a_group(agent):
    group = TokenGroupFactory()
    url = reverse("admin:authorization_tokengroup_change", args=[group.pk])
    response = agent.post(
        url,
        {
            "organization": group.organization_id,
            "name": group.name,
            "version": group.version,
            "whitelist_uids": "04AB0001\n04ab0002\n",
        },
    )
    assert response.status_code == 302
    assert sorted(group.tokens.values_list("uid", flat=True)) == ["04AB0001", "04ab0002"]
    assert TokenGroup.objects.get(pk=group.pk).version > group.version


def test_agent_unticks_valid_and_blocks(agent):
    token = TokenFactory()
    changelist = reverse("admin:authorization_token_changelist")
    agent.post(changelist, {"action": "mark_invalid", "_selected_action": [token.pk]})
    agent.post(changelist, {"action": "block", "_selected_action": [token.pk]})
    token = Token.objects.get(pk=token.pk)
    assert token.valid is False and token.blocked is True


@pytest.mark.django_db(transaction=True)
def test_command_action_on_an_offline_charger_reports_it(agent):
    charger = ChargerFactory()
    response = agent.post(
        reverse("admin:chargers_charger_changelist"),
        {"action": "soft_reset", "_selected_action": [charger.pk]},
        follow=True,
    )
    assert b"offline" in response.content


def test_message_log_is_read_only(agent):
    response = agent.get(reverse("admin:chargers_ocppmessage_add"))
    assert response.status_code == 403
