"""The eMSP role's pure rules: identity checks, contract ids, the AllowedType of a decision."""

import pytest

from authorization.decisions import Status
from roaming import emsp_rules


def test_an_identity_is_upper_cased_and_its_emaid_prefix_defaults_to_country_and_party():
    identity = emsp_rules.check_identity(
        country_code="nl", party_id="evb", emaid_prefix="", business_name=" EV Backoffice "
    )
    assert identity == emsp_rules.Identity("NL", "EVB", "NLEVB", "EV Backoffice")


def test_an_emaid_prefix_may_add_up_to_four_characters_and_drops_separators():
    identity = emsp_rules.check_identity(
        country_code="NL", party_id="EVB", emaid_prefix="NL-EVB-C1", business_name="x"
    )
    assert identity.emaid_prefix == "NLEVBC1"


@pytest.mark.parametrize(
    ("fields", "wrong"),
    [
        ({"country_code": "NLD"}, "country_code"),
        ({"country_code": "1X"}, "country_code"),
        ({"party_id": "EV"}, "party_id"),
        ({"party_id": "EV-"}, "party_id"),
        ({"emaid_prefix": "DEEVB"}, "emaid_prefix"),  # another provider's prefix
        ({"emaid_prefix": "NLEVB12345"}, "emaid_prefix"),  # leaves too few digits
        ({"business_name": "  "}, "business_name"),
    ],
)
def test_an_identity_ocpi_or_the_emaid_format_does_not_allow_is_refused_by_field(fields, wrong):
    values = {"country_code": "NL", "party_id": "EVB", "emaid_prefix": "", "business_name": "x"}
    with pytest.raises(emsp_rules.InvalidIdentity) as refused:
        emsp_rules.check_identity(**{**values, **fields})
    assert list(refused.value.errors) == [wrong]


def test_a_contract_id_is_the_prefix_and_the_card_number_in_fourteen_characters():
    assert emsp_rules.contract_id("NLEVB", 42) == "NLEVB000000042"
    assert emsp_rules.contract_id("NLEVBC1", 42) == "NLEVBC10000042"
    assert len(emsp_rules.contract_id("NLEVB", 987654321)) == emsp_rules.EMAID_LENGTH


def test_a_card_number_that_does_not_fit_the_prefix_is_refused():
    with pytest.raises(ValueError, match="does not fit"):
        emsp_rules.contract_id("NLEVBC123", 123456)


@pytest.mark.parametrize(
    ("status", "allowed"),
    [
        (Status.ACCEPTED, "ALLOWED"),
        (Status.BLOCKED, "BLOCKED"),
        (Status.EXPIRED, "EXPIRED"),
        (Status.INVALID, "NOT_ALLOWED"),
        (Status.CONCURRENT_TX, "NOT_ALLOWED"),
    ],
)
def test_the_decision_at_home_becomes_the_ocpi_allowed_type(status, allowed):
    assert emsp_rules.allowed_of(status.value) == allowed


def test_guest_tokens_are_never_issued_and_ocpi_types_map_back():
    assert emsp_rules.issued_type("GUEST") is None
    assert emsp_rules.issued_type("APP") == "APP_USER"
    assert emsp_rules.card_type_of("APP_USER") == "APP"
    assert emsp_rules.card_type_of("AD_HOC_USER") is None
