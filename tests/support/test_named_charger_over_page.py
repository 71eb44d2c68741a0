"""A host on one charger's page who names another of their chargers in the question is answered
about the one named (seen from outside: on DEMO-004's page, "my card … was refused at DEMO-001"
was answered about DEMO-004); a question naming none stays on the page's charger."""

import pytest

from tests.factories import ChargerFactory, MembershipFactory, PropertyFactory

pytestmark = pytest.mark.django_db

URL = "/api/v1/support/assistant/"


def _ask(client, message, **context):
    response = client.post(URL, {"message": message, "context": context}, format="json")
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def two_chargers(db):
    prop = PropertyFactory(name="Harbour Hotel", timezone="UTC")
    return (
        ChargerFactory(property=prop, station_id="HB-PAGE"),
        ChargerFactory(property=prop, station_id="HB-NAMED"),
    )


def test_the_charger_named_in_the_question_wins_over_the_page(api_client, two_chargers):
    page, named = two_chargers
    api_client.force_authenticate(MembershipFactory(organization=page.property.organization).user)

    answer = _ask(
        api_client, "my card 04A1B2C3 was refused at HB-NAMED", station_id=page.station_id
    )
    text = answer["reply"] + " ".join(answer["facts"])
    assert "at HB-NAMED" in text and "at HB-PAGE" not in text

    # Naming none: the page's charger.
    answer = _ask(api_client, "my card 04A1B2C3 was refused", station_id=page.station_id)
    text = answer["reply"] + " ".join(answer["facts"])
    assert "at HB-PAGE" in text and "HB-NAMED" not in text


def test_another_organizations_charger_named_on_a_page_gets_only_its_guest_facts(
    api_client, two_chargers
):
    page, _ = two_chargers
    ChargerFactory(station_id="ELSEWHERE-1")
    api_client.force_authenticate(MembershipFactory(organization=page.property.organization).user)
    answer = _ask(api_client, "ELSEWHERE-1 is offline, why?", station_id=page.station_id)
    text = answer["reply"] + " ".join(answer["facts"])
    assert "HB-PAGE" not in text
    assert "last heartbeat" not in text  # a host's fact, not said of another organization's
