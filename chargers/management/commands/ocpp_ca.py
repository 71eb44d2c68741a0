"""The central system's certificate authority: show it, or issue the TLS terminator's certificates."""

from __future__ import annotations

import os
from pathlib import Path

from django.core.management.base import BaseCommand, CommandParser

from chargers.security import config as security_config
from chargers.security import pki


class Command(BaseCommand):
    help = (
        "Show the CSMS CA (created on first use in OCPP_CA_DIR), or issue server certificates for the "
        "TLS terminator (deploy/haproxy/ocpp.cfg): `ocpp_ca server-cert --host ocpp.example.com --out DIR`."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="what")
        sub.add_parser("show", help="Print where the CA is and its certificate.")
        server = sub.add_parser(
            "server-cert", help="Write server-ecdsa.pem and server-rsa.pem (certificate + key)."
        )
        server.add_argument(
            "--host",
            action="append",
            required=True,
            help="FQDN (or IP) chargers connect to; the first is the CN (A00.FR.510). Repeatable.",
        )
        server.add_argument("--out", required=True, help="Directory to write the files to.")
        server.add_argument("--days", type=int, default=90)

    def handle(self, *args, **options) -> None:
        ca = pki.get_ca()
        if options.get("what") == "server-cert":
            out = Path(options["out"])
            out.mkdir(parents=True, exist_ok=True)
            for kind in ("ecdsa", "rsa"):
                key, certificate = ca.issue_server_certificate(
                    options["host"],
                    key=pki.new_key("rsa" if kind == "rsa" else "ec"),
                    days=options["days"],
                )
                path = out / f"server-{kind}.pem"
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as file:
                    file.write(
                        pki.cert_pem(certificate) + pki.cert_pem(ca.certificate) + pki.key_pem(key)
                    )
                self.stdout.write(
                    f"Wrote {path} (valid until {certificate.not_valid_after_utc:%Y-%m-%d})"
                )
            return
        self.stdout.write(f"CA directory: {security_config.ca_dir()}")
        self.stdout.write(f"Subject: {ca.certificate.subject.rfc4514_string()}")
        self.stdout.write(f"SHA-256: {pki.fingerprint(ca.certificate)}")
        self.stdout.write(ca.certificate_pem)
