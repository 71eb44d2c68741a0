"""What a 1.6 charger accepted in SetChargingProfile / ClearChargingProfile is kept as a 2.0.1
charger's is (chargers.devices.smart_charging.as_201 + record_answer)."""

import pytest

from chargers.devices import smart_charging
from chargers.models import ChargingProfile
from tests.factories import ChargerFactory

pytestmark = pytest.mark.django_db

SET_16 = {
    "connectorId": 0,
    "csChargingProfiles": {
        "chargingProfileId": 3800,
        "stackLevel": 0,
        "chargingProfilePurpose": "ChargePointMaxProfile",
        "chargingProfileKind": "Absolute",
        "validTo": "2026-11-24T12:00:00Z",
        "chargingSchedule": {
            "startSchedule": "2026-11-24T11:00:00Z",
            "chargingRateUnit": "A",
            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 6.3}],
        },
    },
}


def test_a_16_profile_reads_as_201():
    converted = smart_charging.as_201("SetChargingProfile", SET_16)
    profile = converted["chargingProfile"]
    assert converted["evseId"] == 0
    assert profile["id"] == 3800 and "chargingProfileId" not in profile
    assert profile["chargingProfilePurpose"] == "ChargingStationMaxProfile"
    assert profile["chargingSchedule"][0]["chargingSchedulePeriod"][0]["limit"] == 6.3
    assert SET_16["csChargingProfiles"]["chargingProfileId"] == 3800  # the original is untouched
    tx = smart_charging.as_201(
        "SetChargingProfile",
        {"connectorId": 1, "csChargingProfiles": {"chargingProfileId": 1, "transactionId": 42}},
    )
    assert tx["chargingProfile"]["transactionId"] == "42"
    clear = smart_charging.as_201(
        "ClearChargingProfile",
        {"connectorId": 1, "chargingProfilePurpose": "ChargePointMaxProfile"},
    )
    assert clear == {
        "chargingProfileId": None,
        "chargingProfileCriteria": {
            "evseId": 1,
            "chargingProfilePurpose": "ChargingStationMaxProfile",
        },
    }


def test_an_accepted_16_profile_is_kept_and_cleared():
    charger = ChargerFactory()
    smart_charging.record_answer(
        charger_id=charger.pk,
        action="SetChargingProfile",
        payload=smart_charging.as_201("SetChargingProfile", SET_16),
        status="answered",
        response={"status": "Accepted"},
    )
    kept = ChargingProfile.objects.get(charger=charger)
    assert (kept.profile_id, kept.purpose, kept.stack_level, kept.status) == (
        3800,
        "ChargingStationMaxProfile",
        0,
        "installed",
    )
    assert kept.valid_to is not None
    smart_charging.record_answer(
        charger_id=charger.pk,
        action="ClearChargingProfile",
        payload=smart_charging.as_201("ClearChargingProfile", {"id": 3800}),
        status="answered",
        response={"status": "Accepted"},
    )
    assert ChargingProfile.objects.get(charger=charger).status == "cleared"
