"""Contract ids of our cards read back from an eMAID (roaming.emsp_rules, pure)."""

from roaming.emsp_rules import card_number_of, contract_id


def test_an_emaid_reads_back_to_the_card_it_was_made_for():
    assert card_number_of(contract_id("NLEVB", 42), "NLEVB") == 42
    assert card_number_of("nl-evb-000000042-7", "NLEVB") == 42  # check character, hyphens
    assert card_number_of("NLEVBX00000042", "NLEVBX") == 42
    assert card_number_of("NLEVB00000004", "NLEVB") is None  # 13 characters
    assert card_number_of("DE8EO000000042", "NLEVB") is None  # another provider
    assert card_number_of("NLEVBC00000042", "NLEVB") is None  # not a card number
