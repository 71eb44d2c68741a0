"""A demo power budget for "Harbour View Garage": four 11 kW chargers share a 32 A connection
(run load_demo first). Idempotent."""

from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError

from backoffice.models import Property
from chargers.models import Charger
from power import services

DEMO_PROPERTY = "Harbour View Garage"


class Command(BaseCommand):
    help = "Load a demo power budget for Harbour View Garage (run load_demo first). Idempotent."

    def handle(self, *args: object, **options: object) -> None:
        prop = Property.objects.filter(name=DEMO_PROPERTY).first()
        if prop is None:
            raise CommandError(
                f"No property named {DEMO_PROPERTY!r}: run `manage.py load_demo` first."
            )
        chargers = list(Charger.objects.filter(property=prop).order_by("station_id"))
        services.budget_save(
            property_id=prop.pk,
            limit_a=Decimal(32),
            phases=3,
            voltage=230,
            policy="equal",
            # The building's own evening peak leaves the chargers less.
            schedule_entries=[{"start": "17:00", "end": "21:00", "limit_a": "20"}],
            circuits=[services.CircuitSpec("Garage row B", Decimal(16))],
            connectors=[
                services.ConnectorSpec(
                    charger_id=c.pk,
                    connector_id=1,
                    phases=3,
                    phase_rotation="RST",
                    min_a=Decimal(6),
                    max_a=Decimal(16),  # 11 kW
                    circuit="Garage row B" if i >= 2 else None,
                )
                for i, c in enumerate(chargers)
            ],
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo power budget ready: {len(chargers)} chargers share 32 A (20 A 17:00–21:00)."
            )
        )
