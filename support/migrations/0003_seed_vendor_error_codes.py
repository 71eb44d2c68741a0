"""Seed the vendor error code table with codes published in vendors' own public documentation.

Each row is a vendorErrorCode (OCPP 1.6 StatusNotification) or the fault id the vendor's manual
names, rewritten in plain words for guests and hosts. Sources (read 2026-11, public pages):

- ChargePoint Home Flex (CPH50) installation guide, "Fault Codes":
  https://docs.chargepoint.com/cpdocs-sec/content/1-home/cph50/ig/07-fault-codes.htm
- ChargePoint CP6000/CP800 EU operation and maintenance guide, "Troubleshooting" (urn:fault ids):
  https://docs.chargepoint.com/cpdocs-sec/content/1-home/cp800/omg-eu/trbl-shoot-eu.htm
- Alfen ACE service knowledge base: Error 101 (RCD fault 6 mA), KA-01397,
  https://aceservice.alfen.com/en-us/knowledgebase/article/KA-01397 ; Error 102 (power switch
  failure), KA-01398, https://aceservice.alfen.com/en-us/knowledgebase/article/KA-01398
- BTCPower 150 kW DC charger installation and user's manual (rev. D, 2020), error code table
  (copy at https://manualshive.com/ru/manual/btcpower/evdsp-200-4-120-0-2-c-4-0/2824945?page=47)

ABB Terra AC, Wallbox, Schneider EVlink and Kempower were searched for too: their public manuals
found describe LED patterns or troubleshooting steps but publish no code table we could cite, so
no rows are seeded for them (agents add them in admin › Support › Vendor error codes). Rows are
inserted only where missing, and the reverse removes only rows still holding the seeded text, so
an agent's edits survive.
"""

from django.db import migrations

SEED: list[tuple[str, str, str, str]] = [
    # vendor, code, explanation, advice
    ("ChargePoint", "IGF", "an immediate ground fault: the charger cut the power for safety",
     "Unplug the connector, put it back in its holster, then plug in again."),
    ("ChargePoint", "GF", "a ground fault (leaking current) was detected",
     "Unplug the connector, put it back in its holster, then plug in again."),
    ("ChargePoint", "GMF", "the ground (earth) connection of the supply is missing or poor",
     "Restart the charger at its breaker; if it returns, an electrician must check the earth."),
    ("ChargePoint", "RSO", "the power relay stayed open, so no power reaches the car",
     "Restart the charger at its breaker; if it returns, the charger needs service."),
    ("ChargePoint", "OVRC", "the car drew more current than the charger allows",
     "Unplug, wait 15 seconds and plug in again; if it happens again, the car should be checked."),
    ("ChargePoint", "PLCE", "the car drew more current than the pilot signal offered", ""),
    ("ChargePoint", "VRBI", "the charger's built-in breaker tripped on the current sensor",
     "Unplug the connector, put it back in its holster, then plug in again."),
    ("ChargePoint", "PVERR", "the pilot signal between charger and car is out of range",
     "Restart the charger at its breaker; try again with the connector fully seated."),
    ("ChargePoint", "STTO", "the charger's start-up self-test did not finish in time",
     "Restart the charger at its breaker."),
    ("ChargePoint", "FREQ", "the supply frequency is out of range", "Restart the charger at its breaker."),
    ("ChargePoint", "GMERR", "the ground monitor failed its self-test", "Restart the charger at its breaker."),
    ("ChargePoint", "CERR", "an internal processor self-test failed", "Restart the charger at its breaker."),
    ("ChargePoint", "urn:fault:koala:input-overvoltage", "the supply voltage is too high",
     "Support will check the site supply if it persists."),
    ("ChargePoint", "urn:fault:koala:input-undervoltage", "the supply voltage is too low",
     "Support will check the site supply if it persists."),
    ("ChargePoint", "urn:fault:koala:unable-provide-ventilation",
     "the car asked for a ventilated charging room, which this charger does not support", ""),
    ("ChargePoint", "urn:fault:koala:acs-hardware-error",
     "charging stopped because a hardware part is missing or not working", "The charger needs service."),
    ("ChargePoint", "urn:fault:koala:acb-self-test-fail", "charging stopped because a self-test failed",
     "The charger needs service if a restart does not clear it."),
    ("ChargePoint", "urn:fault:koala:acb-over-temp", "a part inside the charger got too hot",
     "It recovers when it cools down; support is told if it persists."),
    ("ChargePoint", "urn:fault:koala:bkplt-over-temp", "the supply terminals at the back of the charger are too hot",
     "An electrician should check the supply connections."),
    ("ChargePoint", "urn:fault:koala:can-bus-error", "the charger cannot read its energy meter", ""),
    ("Alfen", "101", "the 6 mA DC leakage sensor tripped (a ground fault)",
     "Turn the charger off for 10 seconds and on again; if it only happens with one car, that car should be checked."),
    ("Alfen", "102", "the power switch (relays on the power board) failed, so no power reaches the car",
     "Turn the charger off for 10 seconds and on again; if it returns, the power board needs service."),
    ("BTCPower", "CCS_VEHICLE_SHIFT_POSITION", "the car is not in Park, so it refused to charge",
     "Put the car in Park and start again."),
    ("BTCPower", "CCS_VEHICLE_CONNECTOR_LOCK_FAULT", "the car could not lock the connector",
     "Reseat the connector firmly and start again."),
    ("BTCPower", "CCS_VEHICLE_NO_DATA_ERROR", "the car sent no charging parameters", "Unplug, plug in and start again."),
    ("BTCPower", "Payment_Failed", "the payment terminal or the card declined the payment",
     "Try another card; if every card fails, the reader needs service."),
    ("BTCPower", "StartTransaction_INVALID", "the central system refused to start the session", ""),
    ("BTCPower", "BATTERY_FULL", "the car's battery is full, so charging ended normally", ""),
    ("BTCPower", "STOPBUTTON_PRESSED", "someone pressed the stop button on the charger", ""),
]


def seed(apps, schema_editor):
    VendorErrorCode = apps.get_model("support", "VendorErrorCode")
    for vendor, code, explanation, advice in SEED:
        VendorErrorCode.objects.get_or_create(
            vendor=vendor, code=code, defaults={"explanation": explanation, "advice": advice}
        )


def unseed(apps, schema_editor):
    VendorErrorCode = apps.get_model("support", "VendorErrorCode")
    for vendor, code, explanation, _advice in SEED:
        VendorErrorCode.objects.filter(vendor=vendor, code=code, explanation=explanation).delete()


class Migration(migrations.Migration):
    dependencies = [("support", "0002_assistant_conversations_thread_vendor_codes")]

    operations = [migrations.RunPython(seed, unseed)]
