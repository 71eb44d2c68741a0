"""Create demo data: one host organization, one property, chargers, tokens and a host login."""

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction
from django.utils import timezone

from authorization.models import MobilityServiceProvider, Token, TokenGroup, normalize_uid
from backoffice.models import Membership, Organization, Property
from chargers.management.simulator import demo_password
from chargers.models import Charger

DEMO_EMAIL = "host@example.com"
DEMO_PASSWORD = "demo-host-pass"
ADMIN_USER = "admin"
ADMIN_PASSWORD = "demo-admin-pass"


class Command(BaseCommand):
    help = "Load demo data (idempotent) and print the demo logins."

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        User = get_user_model()
        organization, _ = Organization.objects.get_or_create(name="Harbour View Apartments")
        prop, _ = Property.objects.get_or_create(
            organization=organization,
            name="Harbour View Garage",
            defaults={
                "address": "1 Quay Street, Amsterdam",
                "timezone": "Europe/Amsterdam",
                "currency": "EUR",
            },
        )
        host = User.objects.filter(username=DEMO_EMAIL).first()
        if host is None:
            host = User.objects.create_user(
                DEMO_EMAIL, DEMO_EMAIL, DEMO_PASSWORD, first_name="Demo", last_name="Host"
            )
        Membership.objects.get_or_create(
            user=host, organization=organization, defaults={"role": "owner"}
        )
        if not User.objects.filter(username=ADMIN_USER).exists():
            User.objects.create_superuser(ADMIN_USER, "admin@example.com", ADMIN_PASSWORD)
        license_until = timezone.localdate() + timedelta(days=365)
        specs = [
            ("DEMO-001", "public", "network"),
            ("DEMO-002", "public", "network"),
            ("DEMO-003", "guest", "network"),
            ("DEMO-004", "private", "network"),
        ]
        for station_id, access_mode, ownership in specs:
            charger, _ = Charger.objects.get_or_create(
                station_id=station_id,
                defaults={
                    "property": prop,
                    "access_mode": access_mode,
                    "ownership": ownership,
                    "license_valid_until": license_until,
                    "name": f"Bay {station_id[-1]}",
                },
            )
            # Security profile 1 with a password derived from SECRET_KEY, which `serve --simulate`
            # and `simulate_chargers` derive the same way (chargers.management.simulator.demo_password).
            password = demo_password(settings.SECRET_KEY, station_id)
            if (
                charger.security_profile == Charger.SecurityProfile.NONE
                or not charger.check_ocpp_password(password)
            ):
                charger.set_ocpp_password(password)
                charger.security_profile = max(
                    charger.security_profile, Charger.SecurityProfile.BASIC_AUTH
                )
                charger.save(
                    update_fields=["ocpp_password_hash", "ocpp_password_set_at", "security_profile"]
                )
        residents, _ = TokenGroup.objects.get_or_create(organization=organization, name="Residents")
        for uid, label in [("DEMO-CARD-1", "Resident card 1"), ("DEMO-CARD-2", "Resident card 2")]:
            token, _ = Token.objects.get_or_create(
                organization=organization,
                uid_normalized=normalize_uid(uid),
                defaults={"uid": uid, "label": label},
            )
            residents.tokens.add(token)
        Token.objects.get_or_create(
            organization=organization,
            uid_normalized=normalize_uid("DEMO-EXPIRED"),
            defaults={
                "uid": "DEMO-EXPIRED",
                "label": "Expired card",
                "expires_at": timezone.now() - timedelta(days=3),
            },
        )
        MobilityServiceProvider.objects.get_or_create(
            organization=organization,
            country_code="NL",
            party_id="RMS",
            defaults={"name": "RoamNet"},
        )
        Charger.objects.get(station_id="DEMO-004").token_groups.add(residents)
        self.stdout.write(self.style.SUCCESS("Demo data ready."))
        self.stdout.write(f"  Host portal login: {DEMO_EMAIL} / {DEMO_PASSWORD}")
        self.stdout.write(f"  Support agent (Django admin): {ADMIN_USER} / {ADMIN_PASSWORD}")
        self.stdout.write(
            f"  Demo chargers {specs[0][0]}..{specs[-1][0]}: OCPP password = chargers.management.simulator.demo_password(SECRET_KEY, station id)"
        )
