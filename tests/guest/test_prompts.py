"""The prompt decision, its precedence and Station ID suggestions: pure, no database."""

from datetime import date

import pytest

from guest.prompts import (
    PROMPTS,
    PromptCode,
    StationFacts,
    is_near_miss,
    landing_prompt,
    not_allowed_reason,
    suggestions,
)

TODAY = date(2026, 11, 21)


def facts(**overrides) -> StationFacts:
    base = dict(
        ownership="network",
        access_mode="public",
        license_valid_until=date(2027, 1, 1),
        online=True,
        out_of_order=False,
        connectors=((0, "Available"), (1, "Available")),
    )
    base.update(overrides)
    return StationFacts(**base)


def test_no_charger_is_invalid():
    assert landing_prompt(None, today=TODAY) == PromptCode.INVALID


def test_healthy_public_charger_has_no_prompt():
    assert landing_prompt(facts(), today=TODAY) is None


def test_guest_access_mode_has_no_prompt():
    assert landing_prompt(facts(access_mode="guest"), today=TODAY) is None


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"ownership": "private_owner"}, PromptCode.PRIVATE_OWNER),
        ({"license_valid_until": None}, PromptCode.LICENSE_INACTIVE),
        ({"license_valid_until": date(2026, 11, 20)}, PromptCode.LICENSE_INACTIVE),
        ({"access_mode": "private"}, PromptCode.PRIVATE_NOT_SETUP),
        ({"online": False}, PromptCode.OUT_OF_ORDER),
        ({"out_of_order": True}, PromptCode.OUT_OF_ORDER),
        (
            {"connectors": ((0, "Available"), (1, "Faulted"), (2, "Unavailable"))},
            PromptCode.OUT_OF_ORDER,
        ),
        ({"connectors": ((0, "Unavailable"), (1, "Available"))}, PromptCode.OUT_OF_ORDER),
        ({"connectors": ((0, "Available"),)}, PromptCode.OUT_OF_ORDER),
    ],
)
def test_each_prompt_for_its_state(overrides, expected):
    assert landing_prompt(facts(**overrides), today=TODAY) == expected


def test_license_valid_through_today_is_active():
    assert landing_prompt(facts(license_valid_until=TODAY), today=TODAY) is None


def test_one_working_port_of_a_multi_port_station_is_not_out_of_order():
    state = facts(connectors=((0, "Available"), (1, "Faulted"), (2, "Charging")))
    assert landing_prompt(state, today=TODAY) is None


def test_precedence_private_owner_beats_license_private_and_out_of_order():
    everything_wrong = facts(
        ownership="private_owner",
        license_valid_until=None,
        access_mode="private",
        online=False,
        out_of_order=True,
    )
    assert landing_prompt(everything_wrong, today=TODAY) == PromptCode.PRIVATE_OWNER


def test_precedence_license_beats_private_not_setup_and_out_of_order():
    state = facts(license_valid_until=None, access_mode="private", online=False)
    assert landing_prompt(state, today=TODAY) == PromptCode.LICENSE_INACTIVE


def test_precedence_private_not_setup_beats_out_of_order():
    assert (
        landing_prompt(facts(access_mode="private", online=False), today=TODAY)
        == PromptCode.PRIVATE_NOT_SETUP
    )


def test_titles_are_the_seed_wording():
    assert PROMPTS[PromptCode.INVALID].title == "Station ID is Invalid"
    assert PROMPTS[PromptCode.OUT_OF_ORDER].title == "Charger is Out of Order"
    assert PROMPTS[PromptCode.LICENSE_INACTIVE].title == "License inactive"
    assert PROMPTS[PromptCode.PRIVATE_OWNER].title == "Private Charger"
    assert PROMPTS[PromptCode.PRIVATE_NOT_SETUP].title == (
        "Charger start failed - private charger not setup. Please contact site host"
    )
    assert PROMPTS[PromptCode.NOT_ALLOWED].title == "Not allowed to use this charger"


def test_every_prompt_has_next_steps():
    for prompt in PROMPTS.values():
        assert prompt.meaning and prompt.next_steps and prompt.after


@pytest.mark.parametrize(
    ("typed", "candidate"),
    [
        ("hb-lot-01", "HB-Lot-01"),  # case
        ("HB- Lot-01", "HB-Lot-01"),  # a space
        ("HB-Lot-02", "HB-Lot-01"),  # one character replaced
        ("HB-Lot-1", "HB-Lot-01"),  # one character missing
        ("HB-Lot-011", "HB-Lot-01"),  # one character extra
        (" hb-lot-0 1 ", "HB-Lot-01"),  # case and spaces together
    ],
)
def test_near_misses(typed, candidate):
    assert is_near_miss(typed, candidate)


@pytest.mark.parametrize(
    ("typed", "candidate"),
    [("HB-Lot-22", "HB-Lot-01"), ("XY", "HB-Lot-01"), ("HB-Lot-01", "HB-Lot-01")],
)
def test_not_near_misses(typed, candidate):
    assert not is_near_miss(typed, candidate)


def test_a_case_only_slip_is_the_one_close_match_and_typos_are_capped():
    """Issue 35 item 14: "demo-001" goes to DEMO-001 as "DEMO-0O1" does, not to a list of three."""
    assert suggestions("cp-10", ["CP-11", "CP-10", "CP-12", "CP-13", "cp-1"], limit=3) == ["CP-10"]
    assert suggestions("demo-001", ["DEMO-001", "DEMO-002", "DEMO-003"]) == ["DEMO-001"]
    assert suggestions("DEMO-0O1", ["DEMO-001", "DEMO-002", "DEMO-003"]) == ["DEMO-001"]
    assert suggestions("CP-1O", ["CP-11", "CP-12", "CP-13", "CP-14"], limit=3) == [
        "CP-11",
        "CP-12",
        "CP-13",
    ]


def test_not_allowed_reasons_are_in_guest_words_without_host_instructions():
    text = not_allowed_reason("charger_not_roaming")
    assert "guest" in text.lower()
    assert "Locations" not in text and "Tokens" not in text
    assert not_allowed_reason("something_new")
