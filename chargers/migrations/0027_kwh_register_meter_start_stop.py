"""The kWh-labelled-Wh deviation covers 1.6 meterStart and meterStop too (docs/quirks.md): the
firmware that showed it (OpenEVSE 4.2.2, on MicroOcpp) reads both from the one energy register
it reports, so a session's start and stop were 1,000 times too small beside its readings (found
by the outside check of issue 58). The deviation's text says so where support has not edited
it; an edited text is left as it is."""

from django.db import migrations

OLD = (
    "Energy register readings labelled Wh or unlabelled are read as kWh, exactly (a shift of "
    "the decimal point): sessions, bills and CDRs get the energy delivered. meterStart and "
    "meterStop are left as sent (the evidence shows sampled values only)."
)
NEW = (
    "Energy register readings labelled Wh or unlabelled are read as kWh, exactly (a shift of "
    "the decimal point): sessions, bills and CDRs get the energy delivered. 1.6 meterStart and "
    "meterStop come from the same register (MicroOcpp, which OpenEVSE runs, reads them from the "
    "sampler it reports as Energy.Active.Import.Register) and are scaled alike."
)


def seed(apps, schema_editor):
    Deviation = apps.get_model("chargers", "Deviation")
    Deviation.objects.filter(code="energy_kwh_as_wh", handling=OLD).update(handling=NEW)


def unseed(apps, schema_editor):
    Deviation = apps.get_model("chargers", "Deviation")
    Deviation.objects.filter(code="energy_kwh_as_wh", handling=NEW).update(handling=OLD)


class Migration(migrations.Migration):
    dependencies = [("chargers", "0026_seed_quirk_profiles")]

    operations = [migrations.RunPython(seed, unseed)]
