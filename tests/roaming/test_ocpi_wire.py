"""The pure OCPI wire rules: Authorization header, paging, envelope (no database)."""

import base64
from datetime import UTC, date, datetime

import pytest

from roaming import ocpi


def test_authorization_header_is_base64_and_plain_tokens_of_older_peers_are_read_too():
    assert (
        ocpi.encode_authorization("example-token")
        == "Token " + base64.b64encode(b"example-token").decode()
    )
    assert (
        ocpi.decode_authorization(ocpi.encode_authorization("example-token"))[0] == "example-token"
    )
    # transport_and_format: 2.1.1 / 2.2 peers send the token as is.
    assert "ebf3b399-779f-4497-9b9d-ac6ad3cc44d2" in ocpi.decode_authorization(
        "Token ebf3b399-779f-4497-9b9d-ac6ad3cc44d2"
    )
    assert ocpi.decode_authorization("Bearer abc") == []
    assert ocpi.decode_authorization("Token ") == []


def test_next_link_keeps_the_filters_and_stops_on_the_last_page():
    page = ocpi.parse_page({"offset": "0", "limit": "2", "date_from": "2016-01-01T00:00:00Z"})
    link = ocpi.next_link(
        "https://cpo/ocpi/2.2.1/cdrs", {"limit": "2", "date_from": "2016-01-01T00:00:00Z"}, page, 5
    )
    assert (
        link
        == '<https://cpo/ocpi/2.2.1/cdrs?offset=2&limit=2&date_from=2016-01-01T00%3A00%3A00Z>; rel="next"'
    )
    last = ocpi.parse_page({"offset": "4", "limit": "2"})
    assert ocpi.next_link("https://cpo/x", {}, last, 5) is None


def test_the_server_caps_the_limit_and_refuses_bad_parameters():
    assert ocpi.parse_page({"limit": "2000"}).limit == ocpi.MAX_LIMIT
    for bad in ({"offset": "-1"}, {"limit": "0"}, {"limit": "ten"}, {"date_to": "yesterday"}):
        with pytest.raises(ocpi.BadParameter):
            ocpi.parse_page(bad)


def test_datetimes_are_utc_with_z_and_zone_less_input_is_utc():
    assert (
        ocpi.format_datetime(datetime(2024, 1, 2, 3, 4, 5, 678, tzinfo=UTC))
        == "2024-01-02T03:04:05Z"
    )
    assert ocpi.parse_datetime("2015-06-29T20:39:09") == datetime(
        2015, 6, 29, 20, 39, 9, tzinfo=UTC
    )
    assert ocpi.parse_datetime("2015-06-29T22:39:09+02:00") == datetime(
        2015, 6, 29, 20, 39, 9, tzinfo=UTC
    )


def test_envelope_carries_status_code_data_message_and_timestamp():
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert ocpi.envelope([1], now=now) == {
        "status_code": 1000,
        "data": [1],
        "timestamp": "2024-01-01T00:00:00Z",
    }
    assert ocpi.envelope(code=2001, message="bad", now=now)["status_message"] == "bad"


def test_a_remote_start_its_provider_requested_is_not_validated_live_again():
    from authorization.decisions import ChargerFacts, Context, TokenFacts, decide

    card = TokenFacts(uid="X", msp_id=3, msp_live_validation=True)
    charger = ChargerFacts(
        station_id="CP",
        organization_id=1,
        license_valid_until=date(2100, 1, 1),
        access_mode="public",
        roaming_enabled=True,
        guest_charging_enabled=True,
    )
    now = datetime(2024, 1, 1, tzinfo=UTC)
    assert decide(card, charger, Context.REMOTE_MSP, now=now).reason == "accepted_roaming"
    assert decide(card, charger, Context.LOCAL, now=now).reason == "needs_msp_validation"
