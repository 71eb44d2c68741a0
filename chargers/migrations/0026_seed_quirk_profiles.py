"""The deviations the code knows and the quirk profiles public evidence supports (issue 58
item 1; docs/quirks.md). A profile is seeded only where a public thread or vendor document
shows the model's frames or behaviour, and names that source; deviations without such evidence
are defined (so support can assign them) but no model is given them. What support edited in the
admin stays: rows are created when missing, never overwritten."""

from django.db import migrations

OPENEVSE_703 = "https://github.com/OpenEVSE/openevse_esp32_firmware/issues/703"
AUTEL_2150 = "https://github.com/lbbrhzn/ocpp/pull/2150"
HOMECHARGE_9838 = "https://github.com/evcc-io/evcc/issues/9838"

OPENEVSE_FRAMES = (
    '[2,"…","MeterValues",{"connectorId":1,"meterValue":['
    '{"timestamp":"2023-07-01T21:45:30.000Z","sampledValue":['
    '{"value":"9451","context":"Sample.Periodic","measurand":"Power.Active.Import","unit":"W"},'
    '{"value":"361","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register",'
    '"unit":"Wh"}]}]}]\n'
    "(firmware 4.2.2: the register took 7 minutes to go from 361 to 362 at 9.4 kW, so 1 unit "
    "is 1 kWh, not 1 Wh)"
)
AUTEL_FRAMES = (
    "PropertyConstraintViolation answered by an Autel MaxiCharger to a Relative station maximum "
    "(lbbrhzn/ocpp#1019); lbbrhzn/ocpp#2150 sends Autel its limits as Absolute profiles with a "
    "startSchedule instead of Relative ones."
)
HOMECHARGE_FRAMES = (
    '[2,"1746723526","SetChargingProfile",{"connectorId":1,"csChargingProfiles":{'
    '"chargingProfileId":1,"stackLevel":0,"chargingProfilePurpose":"TxProfile",'
    '"chargingProfileKind":"Relative","chargingSchedule":{"chargingRateUnit":"A",'
    '"chargingSchedulePeriod":[{"startPeriod":0,"limit":6}]}}}] refused; the thread\'s title: '
    'the wallbox needs ChargingScheduleAllowedChargingRateUnit "W" (EFR SECC-01 controller).'
)

# (code, name, description, handling, evidence, source)
DEVIATIONS = [
    (
        "energy_kwh_as_wh",
        "Energy register in kWh labelled Wh",
        "Energy.Active.Import.Register sampled values carry unit Wh (or no unit, which means Wh) "
        "while the number is in kWh (OCPP 1.6 §7.31 and 2.0.1 UnitOfMeasureType: the unit "
        "given, Wh by default).",
        "Energy register readings labelled Wh or unlabelled are read as kWh, exactly (a shift of "
        "the decimal point): sessions, bills and CDRs get the energy delivered. meterStart and "
        "meterStop are left as sent (the evidence shows sampled values only).",
        OPENEVSE_FRAMES,
        OPENEVSE_703,
    ),
    (
        "meter_stop_missing",
        "meterStop missing",
        "StopTransaction without a usable meterStop (required, OCPP 1.6 §6.49).",
        "The session ends at its last energy register reading; for a charger whose profile names "
        "it, the stop is not recorded as an unknown deviation.",
        "",
        "",
    ),
    (
        "watt_only",
        "Accepts only W profiles",
        "Refuses every charging profile in amperes; takes limits only in watts.",
        "Every power limit is sent in W with numberPhases, from the first profile on (no refused "
        "attempt in A first), converted as the charger converts back (docs/power.md, Units).",
        HOMECHARGE_FRAMES,
        HOMECHARGE_9838,
    ),
    (
        "stop_txn_sampled_data_unset",
        "Needs StopTxnSampledData unset",
        "Misbehaves when the 1.6 configuration key StopTxnSampledData lists measurands (the "
        "StopTransaction with its transactionData is refused or never sent).",
        "The energy-reporting check after boot leaves StopTxnSampledData empty (sets it to \"\" "
        "if it has a value) and asks only MeterValuesSampledData to include the energy register.",
        "",
        "",
    ),
    (
        "updated_after_ended",
        "Sends Updated after Ended",
        "A 2.0.1 TransactionEvent numbered (seqNo) after the transaction's Ended (E01-E06: Ended "
        "is a transaction's last event).",
        "The late-event rule: such an event is stored and shown in Logs and counted on the "
        "session, and never changes the closed session's stop, energy, cost, receipt or CDR. "
        "For a charger whose profile names it, it is not recorded as an unknown deviation.",
        "",
        "",
    ),
    (
        "rejects_relative_profiles",
        "Rejects chargingProfileKind Relative",
        "Refuses (or misapplies) charging profiles of kind Relative.",
        "Session limits go as Absolute profiles starting now (startSchedule set), which limit the "
        "running transaction the same way.",
        AUTEL_FRAMES,
        AUTEL_2150,
    ),
    (
        "unknown_energy_unit",
        "Energy register in an unknown unit",
        "An energy register reading whose unit is neither Wh nor kWh.",
        "Read as Wh (the OCPP default) and recorded on the charger for support.",
        "",
        "",
    ),
    (
        "meter_start_missing",
        "meterStart missing",
        "StartTransaction without a usable meterStart (required, OCPP 1.6 §6.45).",
        "The session starts at 0 Wh and the stop is flagged; recorded on the charger.",
        "",
        "",
    ),
]

# (name, vendor, model prefix, firmware prefix, firmware min, firmware max, codes, evidence,
#  source, notes)
PROFILES = [
    (
        "OpenEVSE 4.2.2: energy register in kWh",
        "OpenEVSE",
        "",
        "4.2.2",
        "",
        "",
        ["energy_kwh_as_wh"],
        OPENEVSE_FRAMES,
        OPENEVSE_703,
        "Reported on firmware 4.2.2 (OCPP through MicroOcpp). Widen the firmware range only with "
        "frames from another release.",
    ),
    (
        "Autel MaxiCharger: Absolute profiles only",
        "Autel",
        "MaxiCharger",
        "",
        "",
        "",
        ["rejects_relative_profiles"],
        AUTEL_FRAMES,
        AUTEL_2150,
        "lbbrhzn/ocpp#2150 (vendor-quirks proposal) changes Autel's schedules from Relative to "
        "Absolute; lbbrhzn/ocpp#1019 shows the refusal.",
    ),
    (
        "HomeCharge HC11L/HC22L (EFR SECC-01): watts only",
        "HomeCharge",
        "",
        "",
        "",
        "",
        ["watt_only"],
        HOMECHARGE_FRAMES,
        HOMECHARGE_9838,
        "The thread names the product and its controller, not the BootNotification vendor "
        "string: check it against a charger's boot before relying on the match "
        "(evcc-io/evcc#10170 added the model's template).",
    ),
]


def seed(apps, schema_editor):
    Deviation = apps.get_model("chargers", "Deviation")
    QuirkProfile = apps.get_model("chargers", "QuirkProfile")
    by_code = {}
    for code, name, description, handling, evidence, source in DEVIATIONS:
        by_code[code], _ = Deviation.objects.get_or_create(
            code=code,
            defaults={
                "name": name,
                "description": description,
                "handling": handling,
                "evidence": evidence,
                "source_url": source,
            },
        )
    for name, vendor, model, fw_prefix, fw_min, fw_max, codes, evidence, source, notes in PROFILES:
        profile, created = QuirkProfile.objects.get_or_create(
            name=name,
            defaults={
                "vendor": vendor,
                "model_prefix": model,
                "firmware_prefix": fw_prefix,
                "firmware_min": fw_min,
                "firmware_max": fw_max,
                "evidence": evidence,
                "source_url": source,
                "notes": notes,
            },
        )
        if created:
            profile.deviations.set([by_code[code] for code in codes])


class Migration(migrations.Migration):
    dependencies = [("chargers", "0025_quirk_profiles")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
