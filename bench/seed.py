"""Create the bench organization, chargers, an idTag and an API user in DATABASE_URL.

Run as a subprocess (`python -m bench.seed --chargers N`) so the bench process itself
never holds a Django database connection; prints JSON with the API token.
"""

import argparse
import json
import os
from datetime import date
from decimal import Decimal
from typing import Any


def seed(
    count: int, site_size: int = 0, *, energy_checked: bool = False, security_profile: int = 1
) -> dict:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from rest_framework.authtoken.models import Token as ApiToken

    from authorization.models import Token
    from backoffice.models import Organization, Property
    from chargers.models import Charger, DeviceVariable
    from chargers.security.credentials import make_hash

    org, _ = Organization.objects.get_or_create(name="Bench fleet")
    prop, _ = Property.objects.get_or_create(organization=org, name="Bench depot")
    existing = set(
        Charger.objects.filter(station_id__startswith="BENCH-").values_list("station_id", flat=True)
    )
    wanted = [station_id(n) for n in range(count)] + ["BENCH-CMD"]
    Charger.objects.bulk_create(
        [
            # Production shape: security profile 1, each charger its own password (HTTP Basic
            # at the handshake). The peer authenticates nobody and ignores the header.
            Charger(
                station_id=sid,
                property=prop,
                access_mode="public",
                ownership="network",
                license_valid_until=date(2099, 12, 31),
                security_profile=1,
                ocpp_password_hash=make_hash(password(sid)),
            )
            for sid in wanted
            if sid not in existing
        ],
        batch_size=2000,
    )
    # Chargers that have been here before: their device model is known (one variable will do),
    # so a 2.0.1 boot is not a first boot and the server sends no GetBaseReport in a measured
    # window. The closed loop and the storm measure a running fleet, not its onboarding.
    DeviceVariable.objects.bulk_create(
        [
            DeviceVariable(
                charger_id=pk, component="ChargingStation", variable="Model", value="LoadGen-1"
            )
            for pk in Charger.objects.filter(
                station_id__in=wanted, device_variables__isnull=True
            ).values_list("pk", flat=True)
        ],
        batch_size=2000,
    )
    if energy_checked:
        # A fleet that has run here before (--energy-checked): each 1.6 charger's once-per-charger
        # energy-reporting check is done for the firmware the load generator boots with, so a
        # measured window holds the fleet's own traffic, not 20 checks a second of its first day.
        from django.utils import timezone

        from chargers.state.charger import fingerprint

        Charger.objects.filter(station_id__in=wanted).update(
            energy_reporting_checked_at=timezone.now(),
            energy_reporting_checked_for=fingerprint("Bench", "LoadGen-1", "1.0"),
        )
    # --tls 2 or 3 (bench/tls.py): the chargers connect through the TLS terminator, with their
    # password (2) or a client certificate and no password (3). Set every time: a database
    # seeded for another run keeps its chargers.
    Charger.objects.filter(station_id__in=wanted).update(security_profile=security_profile)
    if site_size:
        budget_sites(org, wanted[:count], site_size)
    if not Token.objects.filter(organization=org, uid="BENCHTAG").exists():
        Token.objects.create(organization=org, uid="BENCHTAG", type="RFID", label="Bench card")
    user, created = get_user_model().objects.get_or_create(
        username="bench",
        defaults={"is_staff": True, "is_superuser": True, "email": "bench@localhost"},
    )
    api_token, _ = ApiToken.objects.get_or_create(user=user)
    return {"api_token": api_token.key}


def budget_sites(org: Any, stations: list[str], size: int) -> None:
    """Put the chargers `size` to a property, each property with a power budget a third of
    what its chargers could draw together (63 A on 10 chargers of 6-32 A, three phases): every
    session start and stop then reallocates its site and sends profiles (docs/power.md)."""
    from backoffice.models import Property
    from chargers.models import Charger
    from power.models import SiteBudget

    for first in range(0, len(stations), size):
        prop, _ = Property.objects.get_or_create(
            organization=org, name=f"Bench site {first // size:05d}"
        )
        SiteBudget.objects.update_or_create(
            property=prop, defaults={"limit_a": Decimal(63 * size) / 10, "phases": 3}
        )
        Charger.objects.filter(station_id__in=stations[first : first + size]).update(property=prop)


def followers(url: str, count: int) -> None:
    """Give the first `count` bench chargers one follower upstream at `url` (0: remove them all)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from chargers.models import Backoffice, Charger

    Backoffice.objects.filter(charger__station_id__startswith="BENCH-").delete()
    Charger.objects.filter(station_id__startswith="BENCH-").update(proxied=False)
    chargers = list(Charger.objects.filter(station_id__in=[station_id(n) for n in range(count)]))
    Backoffice.objects.bulk_create(
        [Backoffice(charger=c, name="Bench follower", url=url, role="follower") for c in chargers],
        batch_size=2000,
    )
    Charger.objects.filter(pk__in=[c.pk for c in chargers]).update(proxied=True)


def station_id(n: int) -> str:
    return f"BENCH-{n:05d}"


def password(station: str) -> str:
    """The bench charger's OCPP password (16-40 characters, as OCPP 1.6 security asks)."""
    return f"bench-password-{station}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--chargers", type=int, required=True)
    parser.add_argument(
        "--followers",
        help="ws:// URL of a follower backoffice for the first --followers-count chargers",
    )
    parser.add_argument("--followers-count", type=int, default=0)
    parser.add_argument(
        "--site-size",
        type=int,
        default=0,
        help="chargers per property with a power budget (0: all at one property without one)",
    )
    parser.add_argument(
        "--energy-checked",
        action="store_true",
        help="the chargers' energy-reporting check done (a fleet that has run before)",
    )
    parser.add_argument("--security-profile", type=int, default=1, choices=(1, 2, 3))
    args = parser.parse_args()
    if args.followers:
        followers(args.followers, args.followers_count)
    else:
        print(
            json.dumps(
                seed(
                    args.chargers,
                    args.site_size,
                    energy_checked=args.energy_checked,
                    security_profile=args.security_profile,
                )
            )
        )
