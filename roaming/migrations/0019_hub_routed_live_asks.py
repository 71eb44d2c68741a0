"""The parties a hub routes are asked live through it (real-time authorization with routing
headers): their providers get the hub's tokens endpoint, token and version, as a hub's
registration now gives them (roaming.services._route_through_hub)."""

import base64

from django.db import migrations


def route_through_hubs(apps, schema_editor):
    HubParty = apps.get_model("roaming", "HubParty")
    MobilityServiceProvider = apps.get_model("authorization", "MobilityServiceProvider")
    for route in HubParty.objects.select_related("partner").filter(partner__state="connected"):
        hub = route.partner
        urls = hub.endpoints.get("tokens") if isinstance(hub.endpoints, dict) else None
        url = str(urls.get("SENDER", "")) if isinstance(urls, dict) else ""
        MobilityServiceProvider.objects.filter(pk=route.msp_id).update(
            live_validation_url=url,
            live_validation_token=base64.b64encode(hub.outgoing_token.encode()).decode(),
            ocpi_version=hub.version,
            via_hub=True,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("roaming", "0018_credit_cdrs"),
        ("authorization", "0007_msp_via_hub"),
    ]

    operations = [migrations.RunPython(route_through_hubs, migrations.RunPython.noop)]
