"""MSP URLs cannot reach the operator's network (server-side request forgery).

No test here needs the internet: refusals use loopback names and addresses (and IP
literals, which are never resolved through DNS); the stub MSP on 127.0.0.1 is reached
only when staff allow-list it.
"""

from __future__ import annotations

import asyncio
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.urls import reverse
from rest_framework.test import APIClient

from authorization import msp_client
from authorization.models import MobilityServiceProvider
from authorization.msp_client import BlockedMspUrl, address_is_public, check_msp_url
from authorization.services import msp_tokens_pull, msp_validate_live
from backoffice import outbound
from tests.factories import MspFactory
from tests.msp_server import FakeMsp


@pytest.fixture
def stub_msp():
    server = FakeMsp(tokens=[{"uid": "0D0001"}])
    yield server
    server.close()


@pytest.fixture(autouse=True)
def _no_allowlist(settings):
    settings.MSP_URL_ALLOWLIST = []


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.9.9.9",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "192.0.2.10",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::1",
        "not-an-ip",
    ],
)
def test_non_public_addresses_are_refused(address):
    assert address_is_public(address) is False


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111"])
def test_public_addresses_are_accepted(address):
    assert address_is_public(address) is True


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8/ocpi/tokens",  # not https
        "ftp://8.8.8.8/tokens",
        "https://127.0.0.1/ocpi/tokens",
        "https://localhost/ocpi/tokens",  # resolves to loopback
        "https://LOCALHOST:8443/ocpi/tokens",
        "https://[::1]/ocpi/tokens",
        "https://169.254.169.254/latest/meta-data/",
        "https://10.1.2.3/",
        "https://user:pw@8.8.8.8/",  # credentials in a URL: refused
        "https:///no-host",
        "https://8.8.8.8:99999/",
    ],
)
def test_urls_into_private_networks_or_without_https_are_refused(url):
    with pytest.raises(BlockedMspUrl):
        check_msp_url(url)


def test_https_to_a_public_address_is_accepted():
    check_msp_url("https://8.8.8.8/ocpi/2.2.1/tokens")  # an IP literal: no DNS lookup, no traffic


def test_staff_can_allow_list_a_host(settings):
    with pytest.raises(BlockedMspUrl):
        check_msp_url("http://127.0.0.1:8080/ocpi/tokens")
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    check_msp_url("http://127.0.0.1:8080/ocpi/tokens")
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1:9090"]
    with pytest.raises(BlockedMspUrl):
        check_msp_url("http://127.0.0.1:8080/ocpi/tokens")  # another port


def test_the_allow_list_comes_from_the_setting_normalised(settings):
    settings.MSP_URL_ALLOWLIST = ["MSP.internal", " 127.0.0.1:8080 ", ""]
    assert msp_client.allowlist() == {"msp.internal", "127.0.0.1:8080"}


# -- at save time ------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/ocpi/tokens",
        "https://localhost/ocpi/tokens",
        "https://169.254.169.254/latest/meta-data/",
    ],
)
def test_the_api_refuses_such_a_url_on_create_and_update(url, mine):
    api = APIClient()
    api.force_authenticate(mine.owner)
    response = api.post(
        "/api/v1/msps/",
        {
            "organization": mine.org.pk,
            "name": "Evil",
            "country_code": "NL",
            "party_id": "EVL",
            "live_validation_url": url,
        },
        format="json",
    )
    assert response.status_code == 400 and "live_validation_url" in response.json()
    assert not MobilityServiceProvider.objects.filter(name="Evil").exists()
    response = api.patch(
        f"/api/v1/msps/{mine.msp.pk}/", {"live_validation_url": url}, format="json"
    )
    assert response.status_code == 400
    mine.msp.refresh_from_db()
    assert mine.msp.live_validation_url == ""


@pytest.mark.django_db
def test_the_api_accepts_a_public_https_url(mine):
    api = APIClient()
    api.force_authenticate(mine.owner)
    response = api.patch(
        f"/api/v1/msps/{mine.msp.pk}/",
        {"live_validation_url": "https://8.8.8.8/ocpi/tokens"},
        format="json",
    )
    assert response.status_code == 200


@pytest.mark.django_db
def test_the_admin_refuses_such_a_url(client, mine):
    from django.contrib.auth import get_user_model

    staff = get_user_model().objects.create_superuser(
        "ops@example.com", "ops@example.com", "ops-pass-123456"
    )
    client.force_login(staff)
    response = client.post(
        reverse("admin:authorization_mobilityserviceprovider_change", args=[mine.msp.pk]),
        {
            "organization": mine.org.pk,
            "name": mine.msp.name,
            "country_code": "NL",
            "party_id": mine.msp.party_id,
            "live_validation_url": "https://127.0.0.1/ocpi/tokens",
            "timeout_s": 15,
            "on_timeout": "reject",
        },
    )
    assert response.status_code == 200 and b"MSP_URL_ALLOWLIST" in response.content
    mine.msp.refresh_from_db()
    assert mine.msp.live_validation_url == ""


# -- at call time -------------------------------------------------------------------------------


@pytest.mark.django_db
def test_a_stored_url_into_the_local_network_is_never_called(stub_msp):
    msp = MspFactory(live_validation_url=stub_msp.url)  # stored before the check existed
    with pytest.raises(BlockedMspUrl):
        msp_tokens_pull(msp=msp)
    answer, body, _latency = asyncio.run(
        msp_validate_live(msp, "0D0001", location_id="1", station_id="CP-1")
    )
    assert answer == "TIMEOUT" and body == {  # the on-timeout policy applies, in plain words
        "error": outbound.OutboundBlocked().say("the provider")
    }
    assert stub_msp.requests == []


@pytest.mark.django_db
def test_a_name_that_resolves_into_the_local_network_after_the_save_is_not_called(
    stub_msp, monkeypatch
):
    port = stub_msp.server.server_address[1]
    answers = {"msp.example": ["8.8.8.8"]}
    monkeypatch.setattr(outbound, "_resolve", lambda host, port: answers.get(host, []))
    url = f"https://msp.example:{port}/ocpi/2.2.1/tokens"
    check_msp_url(url)  # accepted when saved
    msp = MspFactory(live_validation_url=url)
    answers["msp.example"] = ["127.0.0.1"]  # DNS changed since
    with pytest.raises(BlockedMspUrl):
        msp_tokens_pull(msp=msp)
    asyncio.run(msp_validate_live(msp, "0D0001", location_id="1", station_id="CP-1"))
    assert stub_msp.requests == []


@pytest.mark.django_db
def test_the_allow_listed_stub_is_called(stub_msp, settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    msp = MspFactory(live_validation_url=stub_msp.url)
    assert msp_tokens_pull(msp=msp) == 1
    assert len(stub_msp.requests) == 1


class _Redirector(BaseHTTPRequestHandler):
    target = ""

    def log_message(self, *args):
        pass

    def _redirect(self):
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_POST = _redirect


@pytest.mark.django_db
def test_redirects_are_not_followed(stub_msp, settings):
    """An allow-listed MSP answering with a redirect into the network is not followed."""
    _Redirector.target = stub_msp.url.replace("127.0.0.1", "localhost")
    redirector = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    threading.Thread(target=redirector.serve_forever, daemon=True).start()
    try:
        settings.MSP_URL_ALLOWLIST = [
            "127.0.0.1",
            "localhost",
        ]  # even an allowed target is not followed
        msp = MspFactory(
            live_validation_url=f"http://127.0.0.1:{redirector.server_address[1]}/ocpi/tokens"
        )
        with pytest.raises(Exception, match="307"):
            msp_tokens_pull(msp=msp)
        answer, _body, _latency = asyncio.run(
            msp_validate_live(msp, "0D0001", location_id="1", station_id="CP-1")
        )
        assert answer == "NOT_ALLOWED"
        assert stub_msp.requests == []
    finally:
        redirector.shutdown()
        redirector.server_close()


@pytest.mark.django_db
def test_a_uid_stays_one_path_segment(stub_msp, settings):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    msp = MspFactory(live_validation_url=stub_msp.url)
    asyncio.run(msp_validate_live(msp, "A/../x?y#z", location_id="1", station_id="CP-1"))
    assert stub_msp.requests[0]["path"] == "/ocpi/2.2.1/tokens/A%2F..%2Fx%3Fy%23z/authorize"
    assert stub_msp.requests[0]["query"] == {"type": ["RFID"]}
