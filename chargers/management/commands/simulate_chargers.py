"""Run simulated OCPP 1.6J or 2.0.1 chargers against a central system."""

import asyncio

from django.conf import settings
from django.core.management.base import BaseCommand

from chargers.management.ocmf_meter import generate_key, public_key_hex
from chargers.management.simulator import DEMO_CARDS, demo_password, make_simulator


class Command(BaseCommand):
    help = "Connect N simulated chargers (boot, heartbeat, status, authorize, sessions with meter values)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=3)
        parser.add_argument("--url", default="ws://127.0.0.1:8000/ocpp")
        parser.add_argument(
            "--prefix", default="DEMO-", help="Station IDs are PREFIX001, PREFIX002, ..."
        )
        parser.add_argument("--start", type=int, default=1)
        parser.add_argument(
            "--password",
            default=None,
            help="OCPP password of every charger; default: the demo password load_demo gave each station id.",
        )
        parser.add_argument("--connectors", type=int, default=2)
        parser.add_argument(
            "--id-tag",
            action="append",
            dest="id_tags",
            default=None,
            help="A card the chargers present (repeatable; default: the demo's resident cards).",
        )
        parser.add_argument("--meter-interval", type=float, default=10.0)
        parser.add_argument(
            "--protocol",
            choices=["1.6", "2.0.1"],
            default="1.6",
            help="OCPP version the chargers speak (subprotocol ocpp1.6 or ocpp2.0.1).",
        )
        parser.add_argument(
            "--sign-readings",
            action="store_true",
            help="Meters sign start and end readings (OCMF, ECDSA P-256; docs/metering.md); "
            "prints each meter's serial and public key to register.",
        )

    def handle(self, *args, **options):
        chargers = [
            make_simulator(
                options["protocol"],
                url=options["url"],
                station_id=f"{options['prefix']}{n:03d}",
                password=options["password"]
                or demo_password(settings.SECRET_KEY, f"{options['prefix']}{n:03d}"),
                connectors=options["connectors"],
                id_tags=options["id_tags"] or list(DEMO_CARDS),
                meter_interval=options["meter_interval"],
                signing_key=generate_key() if options["sign_readings"] else None,
            )
            for n in range(options["start"], options["start"] + options["count"])
        ]
        for charger in chargers:
            for meter in charger.meters.values():
                self.stdout.write(
                    f"PUT /api/v1/chargers/{charger.station_id}/meter-keys/ "
                    f'{{"meter_serial": "{meter.serial}", "public_key": '
                    f'"{public_key_hex(meter.key)}"}}'
                )
        self.stdout.write(
            f"Simulating {len(chargers)} OCPP {options['protocol']} charger(s) against {options['url']} (Ctrl+C stops)"
        )
        try:
            asyncio.run(_run_all(chargers))
        except KeyboardInterrupt:
            pass


async def _run_all(chargers):
    await asyncio.gather(*(c.run() for c in chargers))
