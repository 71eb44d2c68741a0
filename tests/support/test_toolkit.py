"""The agent's toolkit in the admin: bundle shown as tables, threaded replies, whitelist, override start."""

import pytest
from auditlog.models import LogEntry
from django.core import mail

from authorization.models import AuthorizationDecision, TokenGroup
from chargers.models import Command
from support import toolkit
from support.assistant.service import assistant_answer
from support.models import Ticket, TicketMessage
from tests.factories import ChargerFactory, PropertyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(db):
    return UserFactory(username="agent@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def ticket(db):
    prop = PropertyFactory(name="Harbour Hotel", timezone="UTC")
    ChargerFactory(property=prop, station_id="HB-9")
    AuthorizationDecision.objects.create(
        uid="04A1B2C3",
        uid_normalized="04A1B2C3",
        station_id="HB-9",
        context="local",
        status="Invalid",
        reason="not_in_local_group",
        step=9,
        message="Not in a local group <b>x</b>",
        organization=prop.organization,
    )
    answer = assistant_answer(
        message="my card was rejected, that didn't help", station_id="HB-9", email="g@example.com"
    )
    return Ticket.objects.select_related("charger").get(pk=answer.ticket)


def test_ticket_page_renders_the_bundle_as_escaped_tables_and_links_the_toolkit(
    client, agent, ticket
):
    client.force_login(agent)
    body = client.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    assert '<table class="bundle">' in body and "<td>04A1B2C3</td>" in body
    assert "Not in a local group &lt;b&gt;x&lt;/b&gt;" in body  # data is escaped, never marked safe
    assert f"/admin/support/ticket/{ticket.pk}/toolkit/" in body
    toolkit_page = client.get(f"/admin/support/ticket/{ticket.pk}/toolkit/")
    assert toolkit_page.status_code == 200
    assert (
        'value="04A1B2C3"' in toolkit_page.content.decode()
    )  # the refused UID, ready to whitelist


def test_replies_are_emailed_threaded_and_logged(client, agent, ticket):
    mail.outbox.clear()
    client.force_login(agent)
    url = f"/admin/support/ticket/{ticket.pk}/toolkit/"
    response = client.post(
        url,
        {
            "action": "reply",
            "reply-action": "reply",
            "reply-body": "We checked it.",
            "reply-status": "waiting",
        },
    )
    assert response.status_code == 302
    toolkit.ticket_reply(ticket=ticket, user=agent, body="Second answer.")
    first, second = TicketMessage.objects.filter(ticket=ticket).order_by("id")
    assert [m.to for m in mail.outbox] == [["g@example.com"], ["g@example.com"]]
    assert mail.outbox[0].extra_headers["Message-ID"] == first.message_id
    assert mail.outbox[1].extra_headers["In-Reply-To"] == first.message_id == second.in_reply_to
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.WAITING and ticket.assigned_to == agent
    entry = LogEntry.objects.get_for_object(ticket).filter(actor=agent).first()
    assert entry is not None and "status" in entry.changes_dict


def test_whitelist_from_the_ticket_adds_the_uid_to_the_group(agent, ticket):
    group = TokenGroup.objects.create(organization=ticket.organization, name="Residents")
    toolkit.ticket_whitelist(ticket=ticket, group=group, uid="04A1B2C3", user=agent)
    assert list(group.tokens.values_list("uid", flat=True)) == ["04A1B2C3"]
    assert (
        "Whitelisted 04A1B2C3 into token group Residents"
        in Ticket.objects.get(pk=ticket.pk).agent_notes
    )


def test_whitelist_into_another_organizations_group_is_refused(agent, ticket):
    foreign = TokenGroup.objects.create(organization=PropertyFactory().organization, name="Theirs")
    with pytest.raises(Exception, match="token group of the ticket's organization"):
        toolkit.ticket_whitelist(ticket=ticket, group=foreign, uid="04A1B2C3", user=agent)
    assert foreign.tokens.count() == 0


@pytest.mark.django_db(transaction=True)  # the command path reads from its own database threads
def test_override_start_at_an_offline_charger_sends_nothing_and_says_so(agent, ticket):
    with pytest.raises(toolkit.ActionFailed, match="offline"):
        toolkit.ticket_override_start(
            ticket=ticket, charger=ticket.charger, connector_id=1, uid="", user=agent
        )
    # The engine accepted the operator token made for the ticket; the charger was not reachable.
    assert AuthorizationDecision.objects.filter(
        uid=f"SUPPORT-{ticket.reference}", status="Accepted"
    ).exists()
    assert [c.status for c in Command.objects.filter(action="RemoteStartTransaction")] == [
        "offline"
    ]
    ticket.refresh_from_db()
    assert "override" not in ticket.details
