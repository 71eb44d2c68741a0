"""Demo rates, payout settings and a subscription plan for "Harbour View Garage" (idempotent)."""

from datetime import UTC, datetime
from decimal import Decimal

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from backoffice.models import Property
from billing.models import BillingSettings, Rate, SubscriptionPlan
from chargers.models import Charger

DEMO_PROPERTY = "Harbour View Garage"
VALID_FROM = datetime(2024, 1, 1, tzinfo=UTC)


class Command(BaseCommand):
    help = "Load demo billing data for Harbour View Garage (run load_demo first). Idempotent."

    @transaction.atomic
    def handle(self, *args, **options):
        prop = Property.objects.filter(name=DEMO_PROPERTY).first()
        if prop is None:
            raise CommandError(
                f"No property named {DEMO_PROPERTY!r}: run `manage.py load_demo` first."
            )
        Rate.objects.update_or_create(
            property=prop,
            charger=None,
            valid_from=VALID_FROM,
            defaults={
                "connection_fee": Decimal("1.00"),
                "energy_price_per_kwh": Decimal("0.35"),
                "time_price_per_hour": Decimal("0"),
                "idle_fee_per_minute": Decimal("0.10"),
                "idle_grace_minutes": 15,
                "idle_fee_cap": Decimal("10.00"),
                "tax_percent": Decimal("21"),
                "processing_fee_percent": Decimal("1.4"),
                "processing_fee_fixed": Decimal("0.25"),
            },
        )
        fast = Charger.objects.filter(property=prop).order_by("station_id").last()
        if fast is not None:
            Rate.objects.update_or_create(
                property=prop,
                charger=fast,
                valid_from=VALID_FROM,
                defaults={
                    "connection_fee": Decimal("1.00"),
                    "energy_price_per_kwh": Decimal("0.45"),
                    "idle_fee_per_minute": Decimal("0.20"),
                    "idle_grace_minutes": 10,
                    "idle_fee_cap": Decimal("15.00"),
                    "tax_percent": Decimal("21"),
                    "processing_fee_percent": Decimal("1.4"),
                    "processing_fee_fixed": Decimal("0.25"),
                },
            )
        BillingSettings.objects.update_or_create(
            organization=prop.organization,
            defaults={
                "payout_period": "monthly",
                "platform_fee_percent": Decimal("5"),
                "minimum_payout": Decimal("10"),
            },
        )
        SubscriptionPlan.objects.update_or_create(
            property=prop,
            name="Resident monthly",
            defaults={
                "monthly_fee": Decimal("25.00"),
                "included_kwh": Decimal("50"),
                "energy_discount_percent": Decimal("10"),
                "active": True,
            },
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo billing loaded for {prop.name}: 1.00 EUR connection fee, 0.35 EUR/kWh, idle 0.10 EUR/min "
                f"after 15 min (cap 10.00), 21% VAT; rates page /billing/properties/{prop.pk}/rates/"
            )
        )
