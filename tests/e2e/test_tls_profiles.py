"""End to end: security profiles 2 and 3 through the shipped TLS terminator.

The real server process (`manage.py serve`), HAProxy with deploy/haproxy/ocpp.cfg in front of
it, and a CA, server and client certificates generated here. A profile-3 charger connects with
a client certificate signed by the CSMS CA and is refused without one or with a foreign-CA
certificate; a profile-2 charger connects over TLS with its password and is refused over plain
ws; TLS older than 1.2 is refused.
"""

import asyncio
import base64
import json
import os
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import websockets
from cryptography.hazmat.primitives import serialization

from chargers.management.simulator import SimulatedCharger, tls_context
from chargers.security import pki
from tests.chargers.security_helpers import csr_for, foreign_ca
from tests.conftest import free_port
from tests.factories import ChargerFactory

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "e2e-tls-password-0123456789"
DIRECT_SOURCE = ("127.0.0.2", 0)  # not the proxy's address: proxy headers from here are ignored


def _free_port() -> int:
    return free_port()  # this worker's own (tests/parallel.py)


@pytest.fixture
def tls_setup(settings, tmp_path, monkeypatch):
    if shutil.which("haproxy") is None:
        if os.environ.get("REQUIRE_SERVICES") == "true":
            pytest.fail("haproxy is not installed (make test installs it)")
        pytest.skip("haproxy is not installed (apt-get install haproxy; make test does it)")
    ca_dir = tmp_path / "ca"
    settings.OCPP_CA_DIR = str(ca_dir)
    # For the server process, which `live_server_proc` starts with this environment.
    monkeypatch.setenv("OCPP_CA_DIR", str(ca_dir))
    monkeypatch.setenv("OCPP_TRUSTED_PROXIES", "127.0.0.1")
    ca = pki.get_ca()
    out = tmp_path / "tls"
    out.mkdir()
    for kind in ("ecdsa", "rsa"):
        key, certificate = ca.issue_server_certificate(
            ["localhost", "127.0.0.1"], key=pki.new_key("rsa" if kind == "rsa" else "ec")
        )
        (out / f"server-{kind}.pem").write_bytes(
            pki.cert_pem(certificate) + pki.cert_pem(ca.certificate) + pki.key_pem(key)
        )

    def client_files(
        name: str, authority: pki.CertificateAuthority, station_id: str
    ) -> tuple[str, str]:
        csr, key = csr_for(station_id)
        issued = authority.sign_csr(csr, station_id=station_id)
        (out / f"{name}.pem").write_text(issued.certificate_pem)
        (out / f"{name}.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return str(out / f"{name}.pem"), str(out / f"{name}.key")

    return {
        "ca_file": str(ca_dir / "ca.pem"),
        "certs": out,
        "p3": client_files("p3", ca, "TLS-P3"),
        "foreign": client_files("foreign", foreign_ca(), "TLS-P3"),
    }


@pytest.fixture
def proxy(tls_setup, live_server_proc):
    port = _free_port()
    env = {
        **os.environ,
        "OCPP_TLS_BIND": f"127.0.0.1:{port}",
        "OCPP_TLS_CERT_DIR": str(tls_setup["certs"]),
        "OCPP_CA_DIR": str(Path(tls_setup["ca_file"]).parent),
        "OCPP_APP_ADDR": f"127.0.0.1:{live_server_proc.port}",
    }
    process = subprocess.Popen(
        ["haproxy", "-db", "-f", str(ROOT / "deploy" / "haproxy" / "ocpp.cfg")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"haproxy did not start: {process.stdout.read().decode()[-2000:]}"
                ) from None
            time.sleep(0.1)
    yield {
        "wss": f"wss://localhost:{port}/ocpp",
        "ws": f"{live_server_proc.ws_url}/ocpp",
        **tls_setup,
    }
    process.terminate()
    process.wait(timeout=10)


def _auth(station_id: str, password: str) -> dict:
    return {
        "Authorization": "Basic " + base64.b64encode(f"{station_id}:{password}".encode()).decode()
    }


async def _boot(ws) -> dict:
    await ws.send(
        json.dumps(
            [2, "b1", "BootNotification", {"chargePointVendor": "TLS", "chargePointModel": "T"}]
        )
    )
    return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def _status(url: str, **kwargs) -> int:
    """Return 101 for an accepted handshake, else the HTTP status that refused it."""
    try:
        ws = await websockets.connect(url, subprotocols=["ocpp1.6"], open_timeout=10, **kwargs)
    except websockets.InvalidStatus as exc:
        return exc.response.status_code
    await ws.close()
    return 101


def test_profiles_2_and_3_over_tls(proxy):
    ChargerFactory(station_id="TLS-P3", security_profile=3)
    ChargerFactory(station_id="TLS-P2", security_profile=2, ocpp_password=PASSWORD)
    p3_context = tls_context(proxy["ca_file"], *proxy["p3"])
    foreign_context = tls_context(proxy["ca_file"], *proxy["foreign"])
    plain_tls = tls_context(proxy["ca_file"])

    async def scenario():
        # Profile 3: our certificate connects and boots.
        ws = await websockets.connect(
            f"{proxy['wss']}/TLS-P3", subprotocols=["ocpp1.6"], ssl=p3_context
        )
        assert (await _boot(ws))[2]["status"] == "Accepted"
        await ws.close()
        # ... without a certificate it is refused by the application,
        assert await _status(f"{proxy['wss']}/TLS-P3", ssl=plain_tls) == 403
        # ... and with a foreign CA's certificate already by the TLS handshake.
        with pytest.raises((ssl.SSLError, OSError, websockets.InvalidHandshake)):
            ws = await websockets.connect(
                f"{proxy['wss']}/TLS-P3", subprotocols=["ocpp1.6"], ssl=foreign_context
            )
            await ws.recv()
        # Its certificate's headers sent straight to the application prove nothing.
        certificate = Path(proxy["p3"][0]).read_bytes()
        der = base64.b64encode(
            pki.x509.load_pem_x509_certificate(certificate).public_bytes(serialization.Encoding.DER)
        )
        forged = {"X-SSL-Client-Cert": der.decode(), "X-Ocpp-Tls": "TLSv1.3"}
        assert (
            await _status(
                f"{proxy['ws']}/TLS-P3", additional_headers=forged, local_addr=DIRECT_SOURCE
            )
            == 403
        )

        # Profile 2: TLS and the password.
        ws = await websockets.connect(
            f"{proxy['wss']}/TLS-P2",
            subprotocols=["ocpp1.6"],
            ssl=plain_tls,
            additional_headers=_auth("TLS-P2", PASSWORD),
        )
        assert (await _boot(ws))[2]["status"] == "Accepted"
        await ws.close()
        assert (
            await _status(
                f"{proxy['wss']}/TLS-P2",
                ssl=plain_tls,
                additional_headers=_auth("TLS-P2", "wrong-password-0000"),
            )
            == 401
        )
        # Over plain ws the right password is refused (and not even checked).
        assert (
            await _status(
                f"{proxy['ws']}/TLS-P2",
                additional_headers=_auth("TLS-P2", PASSWORD),
                local_addr=DIRECT_SOURCE,
            )
            == 403
        )

        # The simulator speaks profile 3 too.
        sim = SimulatedCharger(
            url=proxy["wss"], station_id="TLS-P3", ssl=p3_context, auto_sessions=False
        )
        await sim.connect()
        assert (await sim.boot())["status"] == "Accepted"
        await sim.close()

    asyncio.run(scenario())


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_tls_older_than_1_2_is_refused(proxy):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        context.set_ciphers("DEFAULT@SECLEVEL=0")
        context.minimum_version = ssl.TLSVersion.TLSv1_1
        context.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ssl.SSLError, ValueError):
        pytest.skip("this OpenSSL cannot even offer TLS 1.1")
    host, port = "127.0.0.1", int(proxy["wss"].rsplit(":", 1)[1].split("/")[0])
    with socket.create_connection((host, port), timeout=5) as raw:
        with pytest.raises(ssl.SSLError) as refused:
            context.wrap_socket(raw, server_hostname="localhost")
    assert "VERSION" in str(refused.value).upper() or "ALERT" in str(refused.value).upper()
