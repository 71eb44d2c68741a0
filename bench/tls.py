"""The bench over TLS: security profiles 2 and 3 through the shipped terminator (issue 59).

`--tls 2` or `--tls 3` puts Debian's HAProxy with deploy/haproxy/ocpp.cfg (the production
config, unchanged) in front of every target of the closed loop and the fleet: ours, the peer and
the echo server alike, so the ratios compare servers behind the same TLS. The chargers connect
with `wss://`: at profile 2 with their password (HTTP Basic over TLS), at profile 3 with a client
certificate and no password. The certificates come from the product's own CA code
(chargers/security/pki.py: the CA, the server certificates `manage.py ocpp_ca server-cert` makes,
the client certificates a charger gets by SignCertificate), made once per run by
`python -m bench.tls DIR --stations N` in a process with Django's settings.

The load generator (bench/load.py) builds its TLS contexts from the files: one for every
profile-2 charger, one per profile-3 charger (its own certificate and key).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import psutil

from bench.seed import station_id
from bench.servers import PY, ROOT, free_port, server_env

HAPROXY_CONFIG = ROOT / "deploy" / "haproxy" / "ocpp.cfg"


def ca_dir(directory: Path) -> Path:
    """The CSMS CA the server verifies client certificates against (OCPP_CA_DIR)."""
    return directory / "ca"


def client_files(directory: Path, station: str) -> tuple[str, str]:
    """A profile-3 charger's certificate (with the CA after it) and key."""
    return str(directory / "clients" / f"{station}.pem"), str(
        directory / "clients" / f"{station}.key"
    )


def make_certificates(directory: Path, stations: list[str]) -> None:
    """The CA (OCPP_CA_DIR, which `prepare` points at `ca_dir(directory)`), the server's ECDSA and
    RSA certificates for "localhost" and 127.0.0.1 by the operator's own command, and a client
    certificate per station the way a charger gets one (SignCertificate's `sign_csr`)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.x509.oid import NameOID
    from django.core.management import call_command

    from chargers.security import pki

    call_command(
        "ocpp_ca", "server-cert", "--host", "localhost", "--host", "127.0.0.1", "--out", directory
    )
    ca = pki.get_ca()
    (directory / "clients").mkdir(exist_ok=True)
    for station in stations:
        key = pki.new_key("ec")
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, station)]))
            .sign(key, hashes.SHA256())
        )
        issued = ca.sign_csr(
            csr.public_bytes(serialization.Encoding.PEM).decode(), station_id=station
        )
        cert_path, key_path = client_files(directory, station)
        Path(cert_path).write_text(issued.chain_pem)
        Path(key_path).write_bytes(pki.key_pem(key))


def prepare(directory: Path, count: int, database: str) -> None:
    """Make the certificates in `directory` for the first `count` bench stations (a process with
    the bench database's settings and the run's own CA)."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [PY, "-m", "bench.tls", str(directory), "--count", str(count)],
        cwd=ROOT,
        env=server_env(database, OCPP_CA_DIR=ca_dir(directory)),
        check=True,
        stdout=subprocess.DEVNULL,
    )


def server_extra_env(directory: Path) -> dict[str, str]:
    """What our server needs behind the terminator: the CA it re-verifies client certificates
    against, and the proxy's address as the only one whose X-Ocpp-* headers it believes."""
    return {"OCPP_CA_DIR": str(ca_dir(directory)), "OCPP_TRUSTED_PROXIES": "127.0.0.1"}


def client_context(spec: dict, station: str) -> ssl.SSLContext:
    """The TLS context a charger of `spec["tls"]` connects with (bench/load.py)."""
    tls = spec["tls"]
    context = ssl.create_default_context(cafile=str(ca_dir(Path(tls["dir"])) / "ca.pem"))
    if tls["profile"] == 3:
        context.load_cert_chain(*client_files(Path(tls["dir"]), station))
    return context


class TlsFront:
    """HAProxy with deploy/haproxy/ocpp.cfg in front of one server on `app_port`."""

    def __init__(self, directory: Path, app_port: int, log_dir: Path) -> None:
        self.directory, self.app_port, self.port = directory, app_port, free_port()
        self.log_path = log_dir / f"haproxy-{self.port}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"wss://localhost:{self.port}/ocpp"

    def start(self, timeout: float = 15) -> None:
        if shutil.which("haproxy") is None:
            raise RuntimeError("--tls needs HAProxy (apt-get install haproxy; `make haproxy`)")
        env = {
            **os.environ,
            "OCPP_TLS_BIND": f"127.0.0.1:{self.port}",
            "OCPP_TLS_CERT_DIR": str(self.directory),
            "OCPP_CA_DIR": str(ca_dir(self.directory)),
            "OCPP_APP_ADDR": f"127.0.0.1:{self.app_port}",
        }
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                ["haproxy", "-db", "-f", str(HAPROXY_CONFIG)],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"haproxy did not listen; see {self.log_path}") from None
                time.sleep(0.05)

    def cpu_seconds(self) -> float:
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        times = psutil.Process(self.proc.pid).cpu_times()
        return times.user + times.system

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("directory", type=Path)
    parser.add_argument("--count", type=int, default=0, help="client certificates for BENCH-00000…")
    args = parser.parse_args()
    make_certificates(args.directory, [station_id(n) for n in range(args.count)])
