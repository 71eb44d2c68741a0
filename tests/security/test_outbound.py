"""The one outbound guard (backoffice/outbound.py): no URL a host or partner configures reaches a
loopback, private or link-local address unless staff allow-listed it, on every surface, and what
goes wrong reaches hosts in plain words (issue 33 item 2, issue 35 item 9).

"No connection attempt" is measured, not assumed: the targets are a local listener that counts
the TCP connections it accepts. Nothing here needs the internet.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.urls import reverse

from authorization.services import msp_tokens_pull
from backoffice import outbound
from chargers.proxy import services as proxy_services
from chargers.proxy.links import UpstreamLink
from chargers.proxy.models import Backoffice
from roaming import client as ocpi_client
from stays.models import CalendarFeed, PmsIntegration
from stays.services import calendar_feed_sync
from stays.services.pms import integration_credentials_set, pms_sync
from tests.factories import MspFactory


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts (and closes them)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def listener():
    server = Listener()
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _no_allowlist(settings):
    settings.OUTBOUND_URL_ALLOWLIST = []
    settings.MSP_URL_ALLOWLIST = []


# -- the table of addresses ----------------------------------------------------------------------

REFUSED = [
    "127.0.0.1",
    "127.9.9.9",
    "10.0.0.1",
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared (carrier-grade NAT)
    "0.0.0.0",
    "224.0.0.1",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.2.10",  # documentation
    "::1",
    "::",
    "fe80::1",
    "fc00::1",
    "ff02::1",
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "64:ff9b::a00:1",  # NAT64 prefix: reserved, never public here
]


@pytest.mark.parametrize("address", REFUSED)
def test_non_public_addresses_are_refused_for_every_scheme(address):
    assert outbound.address_is_public(address) is False
    host = f"[{address}]" if ":" in address else address
    for url, schemes in (
        (f"https://{host}/", ("https",)),
        (f"wss://{host}:9000/ocpp", outbound.WS_SCHEMES),
        (f"ws://{host}/ocpp", outbound.WS_SCHEMES),
    ):
        with pytest.raises(outbound.OutboundBlocked) as refused:
            outbound.check_url(url, schemes=schemes)
        assert "private network" in refused.value.say("the backoffice")


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888"])
def test_public_addresses_are_accepted(address):
    assert outbound.address_is_public(address) is True
    host = f"[{address}]" if ":" in address else address
    outbound.check_url(f"https://{host}/x")  # an IP literal: no DNS lookup, no traffic


def test_a_name_is_judged_by_every_address_it_resolves_to(monkeypatch):
    answers = {"mixed.example": ["8.8.8.8", "10.0.0.7"], "public.example": ["8.8.8.8"]}
    monkeypatch.setattr(outbound, "_resolve", lambda host, port: answers.get(host, []))
    outbound.check_url("https://public.example/")
    with pytest.raises(outbound.OutboundBlocked):
        outbound.check_url("https://mixed.example/")
    with pytest.raises(outbound.HostNotFound):
        outbound.check_url("https://nowhere.example/")
    outbound.check_url("wss://nowhere.example/", schemes=outbound.WS_SCHEMES, unresolvable_ok=True)
    with pytest.raises(outbound.OutboundBlocked):  # unresolvable_ok never lets a private one by
        outbound.check_url(
            "wss://mixed.example/", schemes=outbound.WS_SCHEMES, unresolvable_ok=True
        )


def test_credentials_in_the_url_and_other_schemes_are_refused():
    for url in (
        "https://user:pw@8.8.8.8/",
        "ftp://8.8.8.8/",
        "file:///etc/passwd",
        "gopher://8.8.8.8",
    ):
        with pytest.raises(outbound.OutboundBlocked):
            outbound.check_url(url)


def test_the_allowlist_takes_hosts_and_host_ports_under_both_names(settings):
    settings.OUTBOUND_URL_ALLOWLIST = ["csms.internal", "127.0.0.1:8080"]
    settings.MSP_URL_ALLOWLIST = ["msp.internal"]  # the older name still works
    outbound.check_url("http://127.0.0.1:8080/x")  # the plain twin of https, allow-listed
    outbound.check_url("ws://csms.internal/ocpp", schemes=outbound.WS_SCHEMES)
    outbound.check_url("https://msp.internal/")
    with pytest.raises(outbound.OutboundBlocked):
        outbound.check_url("http://127.0.0.1:8081/x")  # another port


def test_failure_words_never_carry_exception_text():
    cases = {
        ConnectionRefusedError(111, "Connection refused"): "Connection refused by the backoffice",
        TimeoutError(): "No answer from the backoffice in time",
        socket.gaierror(-2, "Name or service not known"): "could not be found",
        OSError(113, "No route to host"): "Could not reach the backoffice",
    }
    for exc, words in cases.items():
        said = outbound.failure_words(exc, "the backoffice")
        assert words in said and "Errno" not in said and "Error" not in said


# -- every surface: refused before any connection; allow-listed, it connects ---------------------


def _proxy_row(charger, url):
    # Stored directly: a row saved before the guard existed is refused at connect time too.
    return Backoffice.objects.create(charger=charger, name="Acme CSMS", url=url)


class _Side:
    subprotocol = "ocpp1.6"

    def __init__(self, charger) -> None:
        self.charger_id, self.station_id = charger.pk, charger.station_id

    async def call_charger(self, action, payload, timeout):
        return None


async def _link_error(charger) -> str:
    """Run the proxy's link to the charger's one upstream until it records an error."""
    await sync_to_async(Backoffice.objects.update)(last_error="")
    configs, _ = await sync_to_async(proxy_services.proxy_config)(charger.pk)
    link = UpstreamLink(_Side(charger), configs[0], "1.6")
    link.start()
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            row = await sync_to_async(Backoffice.objects.get)(pk=configs[0].id)
            if row.last_error:
                return row.last_error
            await asyncio.sleep(0.05)
        raise AssertionError("the link recorded no error")
    finally:
        await link.stop(record=False)


@pytest.mark.django_db(transaction=True)
def test_proxy_upstream_in_a_private_network_is_never_connected(charger, listener, settings):
    closed = _closed_port()
    _proxy_row(charger, f"ws://127.0.0.1:{listener.port}")
    open_port_error = asyncio.run(_link_error(charger))
    Backoffice.objects.all().delete()
    _proxy_row(charger, f"ws://127.0.0.1:{closed}")
    closed_port_error = asyncio.run(_link_error(charger))
    assert listener.accepted == 0
    # An open and a closed port read the same: no port scan through last_error.
    assert open_port_error == closed_port_error == outbound.OutboundBlocked().say("the backoffice")

    settings.OUTBOUND_URL_ALLOWLIST = ["127.0.0.1"]
    assert asyncio.run(_link_error(charger)) == (
        "Connection refused by the backoffice: check the URL and port."
    )
    Backoffice.objects.all().delete()
    _proxy_row(charger, f"ws://127.0.0.1:{listener.port}")
    words = asyncio.run(_link_error(charger))
    assert listener.accepted >= 1
    assert "Errno" not in words and "Error" not in words and "Exception" not in words


@pytest.mark.django_db(transaction=True)
def test_proxy_upstream_pins_the_address_it_checked(charger, listener, monkeypatch):
    # DNS answers a public address when checked, then the listener's: the link never gets there.
    answers = iter([["8.8.8.8"], ["127.0.0.1"]])
    monkeypatch.setattr(outbound, "_resolve", lambda host, port: next(answers, ["127.0.0.1"]))
    proxy_services.backoffice_save(
        charger, name="Acme", url=f"ws://csms.example:{listener.port}/ocpp"
    )
    assert "private network" in asyncio.run(_link_error(charger))
    assert listener.accepted == 0


@pytest.mark.django_db
def test_the_proxy_tab_refuses_a_private_url_in_plain_words(client, host, charger):
    client.force_login(host)
    page = client.post(
        reverse("chargers:charger-proxy-add", args=[charger.station_id]),
        {"name": "Meta", "url": "ws://169.254.169.254/ocpp", "role": "follower"},
    )
    html = page.content.decode()
    assert page.status_code == 200 and not Backoffice.objects.exists()
    assert "The address points to a private network" in html
    assert "the backoffice&#x27;s public address" in html


@pytest.mark.django_db
def test_the_proxy_api_refuses_a_private_url(api_client, host, charger):
    api_client.force_authenticate(host)
    answer = api_client.post(
        f"/api/v1/chargers/{charger.station_id}/backoffices/",
        {"name": "Local", "url": "ws://10.0.0.5/ocpp", "role": "follower"},
        format="json",
    )
    assert answer.status_code == 400 and "private network" in str(answer.json())
    assert not Backoffice.objects.exists()


@pytest.mark.django_db
def test_pms_base_url_is_checked_at_connect_time(prop, listener, settings):
    # Saved before (or its DNS changed since): the sync refuses it without connecting.
    integration = PmsIntegration.objects.create(
        organization=prop.organization,
        vendor="track",
        base_url=f"https://127.0.0.1:{listener.port}",
    )
    integration_credentials_set(integration=integration, credentials={"key": "k", "secret": "s"})
    result = pms_sync(integration_id=integration.pk, force=True)
    assert not result.ok and "private network" in result.error and listener.accepted == 0
    settings.OUTBOUND_URL_ALLOWLIST = ["127.0.0.1"]
    result = pms_sync(integration_id=integration.pk, force=True)
    assert listener.accepted >= 1 and "Errno" not in result.error


@pytest.mark.django_db
def test_msp_url_is_checked_at_connect_time(listener, settings):
    msp = MspFactory(live_validation_url=f"https://127.0.0.1:{listener.port}/ocpi/tokens")
    with pytest.raises(outbound.OutboundBlocked):
        msp_tokens_pull(msp=msp)
    assert listener.accepted == 0
    settings.OUTBOUND_URL_ALLOWLIST = ["127.0.0.1"]
    with pytest.raises(httpx.HTTPError) as failed:  # a plain TCP listener is no MSP
        msp_tokens_pull(msp=msp)
    assert not isinstance(failed.value, outbound.OutboundBlocked)
    assert listener.accepted >= 1


@pytest.mark.django_db
def test_ocpi_partner_url_is_checked_at_connect_time(listener, settings):
    url = f"https://127.0.0.1:{listener.port}/ocpi/versions"
    with pytest.raises(ocpi_client.BlockedPartnerUrl):
        ocpi_client.check_partner_url(url)
    with pytest.raises(ocpi_client.PartnerCallError) as refused:
        ocpi_client.call(partner=None, method="GET", url=url, token="t", module="versions")
    assert "private network" in refused.value.message and listener.accepted == 0
    settings.OUTBOUND_URL_ALLOWLIST = ["127.0.0.1"]
    with pytest.raises(ocpi_client.PartnerCallError) as failed:
        ocpi_client.call(partner=None, method="GET", url=url, token="t", module="versions")
    assert listener.accepted >= 1 and "Errno" not in failed.value.message


@pytest.mark.django_db
def test_calendar_url_is_checked_at_connect_time(prop, listener, settings):
    feed = CalendarFeed.objects.create(
        property=prop, name="Airbnb", url=f"https://127.0.0.1:{listener.port}/cal.ics"
    )
    result = calendar_feed_sync(feed_id=feed.pk)
    assert not result.ok and "private" in result.error and listener.accepted == 0
    settings.OUTBOUND_URL_ALLOWLIST = ["127.0.0.1"]
    result = calendar_feed_sync(feed_id=feed.pk)
    assert listener.accepted >= 1 and "Errno" not in result.error


class _Endless(threading.Thread):
    """An allow-listed server that answers 200 and streams without end (chunked)."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.sent = 0

    def run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"x" * 16384
                try:
                    while self.sent < 50_000_000:  # a bound for the test's sake only
                        conn.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.sent += len(chunk)
                except OSError:
                    continue

    def close(self) -> None:
        self.sock.close()


def test_an_answer_that_never_ends_is_cut_at_the_cap_sync_and_async(settings, monkeypatch):
    """Every configured URL's answer is read up to outbound.MAX_RESPONSE_BYTES: a partner, MSP or
    PMS streaming without end used to fill this process's memory. The caller gets a read error
    (retried like an unreachable server) and words without exception text."""
    monkeypatch.setattr(outbound, "MAX_RESPONSE_BYTES", 2 * 1024 * 1024)
    server = _Endless()
    server.start()
    settings.OUTBOUND_URL_ALLOWLIST = [f"127.0.0.1:{server.port}"]
    url = f"http://127.0.0.1:{server.port}/tokens"
    try:
        with outbound.http_client(timeout=10, schemes=("http",)) as client:
            with pytest.raises(outbound.ResponseTooLarge) as cut:
                client.get(url)
        assert isinstance(cut.value, httpx.HTTPError)
        assert outbound.failure_words(cut.value, "the provider") == (
            "The answer of the provider was larger than 2 MB: it was not read further."
        )

        async def fetch() -> None:
            async with outbound.async_http_client(timeout=10, schemes=("http",)) as client:
                await client.get(url)

        with pytest.raises(outbound.ResponseTooLarge):
            asyncio.run(fetch())
    finally:
        server.close()
