"""Issue 17: every portal and guest page, from the URL conf, in real Chromium (desktop and a 390 px
phone) against the real server: axe-core finds no serious or critical violation, every page has a
skip link to its content; on a phone the host menu folds (< 15 % of 844 px) and the charger tabs
scroll sideways; guest pages stay readable at 200 % zoom (no sideways scroll at 195 CSS px).

A new page in the URL conf fails test_every_page_is_classified until it is listed in HOST_PAGES,
GUEST_PAGES or NOT_PAGES (with the reason it is not a page of its own).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from tests.security.csp_browser import watch_csp

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "secret-pass-123"
NAMESPACES = {
    "backoffice",
    "chargers",
    "authorization",
    "billing",
    "support",
    "stays",
    "partners",
    "guest",
    "power",
    "meterkeys",
    "reliability",
    "pki",
    "fleet",
}
AUTH_PAGES = {
    "login",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
}


@pytest.fixture(autouse=True)
def _fast_passwords():
    """The server process checks passwords with the default hashers: keep them here too."""


@dataclass
class World:
    site: object
    charger201: object
    backoffice: object
    rate: object
    stay: object  # a reservation with its access code (the stay link)
    paying: object  # a guest session waiting for its card
    failed: object  # a guest session that never started (its receipt says nothing was charged)
    payout: object  # two paid guest sessions (one partly refunded) paid out
    partner: object  # a connected OCPI partner with a logged pull, a failed one and a waiting push
    integration: object  # a Guesty integration, synced from Guesty's recorded answers
    ticket: object  # the assistant's hand-over (its findings) with a reply from support
    campaign: object  # a draft firmware campaign of the organization
    baseline: object  # a configuration baseline of the site charger's vendor and model


Args = Callable[[World], list]


# Pages a host sees (signed in as the organization's owner).
HOST_PAGES: dict[str, Args] = {
    "backoffice:dashboard": lambda w: [],
    "backoffice:members": lambda w: [],
    "chargers:charger-list": lambda w: [],
    "chargers:charger-detail": lambda w: [w.site.charger.station_id],
    "chargers:charger-logs": lambda w: [w.site.charger.station_id],
    "chargers:charger-proxy": lambda w: [w.site.charger.station_id],
    "chargers:charger-proxy-add": lambda w: [w.site.charger.station_id],
    "chargers:charger-proxy-edit": lambda w: [w.site.charger.station_id, w.backoffice.pk],
    "chargers:charger-sessions": lambda w: [w.site.charger.station_id],
    "chargers:charger-authorizations": lambda w: [w.site.charger.station_id],
    "chargers:charger-security": lambda w: [w.site.charger.station_id],
    "meterkeys:charger-meter-keys": lambda w: [w.site.charger.station_id],
    "pki:organization-pki": lambda w: [w.site.org.pk],
    "fleet:campaign-list": lambda w: [],
    "fleet:campaign-detail": lambda w: [w.campaign.pk],
    "fleet:baseline-list": lambda w: [],
    "fleet:baseline-detail": lambda w: [w.baseline.pk],
    "fleet:campaign-new": lambda w: [],
    "billing:plan-list": lambda w: [w.site.prop.pk],
    "fleet:release-list": lambda w: [],
    "fleet:window-list": lambda w: [],
    "fleet:baseline-new": lambda w: [],
    "fleet:baseline-edit": lambda w: [w.baseline.pk],
    "fleet:charger-configuration": lambda w: [w.site.charger.station_id],
    "chargers:charger-reservations": lambda w: [w.charger201.station_id],
    "chargers:charger-device-model": lambda w: [w.charger201.station_id],
    "chargers:charger-smart-charging": lambda w: [w.charger201.station_id],
    "chargers:charger-setup-card": lambda w: [w.site.charger.station_id],
    "chargers:charger-add": lambda w: [w.site.prop.pk],
    "chargers:decision-detail": lambda w: [w.site.decision.pk],
    "chargers:location-list": lambda w: [],
    "chargers:location-detail": lambda w: [w.site.prop.pk],
    "chargers:network-list": lambda w: [],
    "chargers:session-list": lambda w: [],
    "chargers:session-detail": lambda w: [w.site.session.pk],
    "authorization:token-list": lambda w: [],
    "authorization:token-edit": lambda w: [w.site.token.pk],
    "authorization:token-group-list": lambda w: [],
    "authorization:token-group-detail": lambda w: [w.site.group.pk],
    "authorization:roaming": lambda w: [],
    "authorization:msp-list": lambda w: [],
    "authorization:msp-validation": lambda w: [w.site.msp.pk],
    "billing:price-overview": lambda w: [],
    "billing:rate-list": lambda w: [w.site.prop.pk],
    "billing:rate-edit": lambda w: [w.rate.pk],
    "billing:payout-list": lambda w: [],
    "billing:payout-detail": lambda w: [w.payout.pk],
    "billing:report-schedule": lambda w: [w.site.org.pk],
    "billing:session-cost": lambda w: [w.site.session.pk],
    "partners:msp-ocpi-partner-list": lambda w: [],
    "partners:access-points": lambda w: [],
    "partners:msp-ocpi-partner": lambda w: [w.partner.pk],
    "partners:location-ocpi": lambda w: [w.site.prop.pk],
    "partners:location-parking": lambda w: [w.site.prop.pk],
    "stays:stay-settings": lambda w: [],
    "power:location-power": lambda w: [w.site.prop.pk],
    "power:power-overview": lambda w: [],
    "reliability:fleet-uptime": lambda w: [],
    "reliability:alert-rules": lambda w: [],
    "reliability:charger-uptime": lambda w: [w.site.charger.station_id],
    "stays:integration-list": lambda w: [],
    "stays:integration-detail": lambda w: [w.integration.pk],
    "support:ticket-list": lambda w: [],
    "support:ticket-detail": lambda w: [w.ticket.reference],
    "support:charger-license": lambda w: [w.site.charger.station_id],
    "guest:label-charger": lambda w: [w.site.charger.station_id],
    "guest:label-sheet": lambda w: [w.site.prop.pk],
}

# Pages anyone reaches without an account: the guest flow, support contact, sign-in.
GUEST_PAGES: dict[str, Args] = {
    "guest:entry": lambda w: [],
    "guest:landing": lambda w: [w.site.charger.station_id],
    "guest:location-access": lambda w: [],
    "guest:pay": lambda w: [w.paying.key],
    "guest:session": lambda w: [w.paying.key],
    "guest:receipt": lambda w: [w.failed.key],
    "guest:stay-link": lambda w: [w.stay.access_code],
    "support:contact": lambda w: [],
    "support:contact-sent": lambda w: [],
    "login": lambda w: [],
    "password_reset": lambda w: [],
    "password_reset_done": lambda w: [],
    "password_reset_confirm": lambda w: ["MQ", "not-a-token"],  # the "link is invalid" page
    "password_reset_complete": lambda w: [],
}

# Routes that are not pages of their own, and why.
NOT_PAGES: dict[str, str] = {
    "fleet:campaign-action": "POST only (the campaign page's Start, Pause, Resume, Halt)",
    "fleet:firmware-file": "a firmware file for chargers (key-addressed; tests/fleet/test_hosting.py)",
    "fleet:baseline-apply": "POST only (the baseline page's Apply to every charger)",
    "fleet:release-action": "POST only (a release row's Upload and Mark bad)",
    "billing:plan-stop": "POST only (a plan's Stop offering)",
    "fleet:window-set": "POST only (a location's row on Maintenance windows)",
    "fleet:charger-configuration-action": "POST only (the Configuration tab's Re-apply, Read)",
    "billing:seller-details": "POST only (Payouts page form: the seller on receipts)",
    "guest:receipt-pdf": "a PDF download of the receipt page (tests/guest/test_browser.py opens it)",
    "backoffice:member-change": "POST only (Members page form)",
    "backoffice:organization-energy-reporting": "POST only (Chargers page form)",
    "chargers:charger-command": "POST only (Overview form)",
    "chargers:charger-settings": "POST only (Overview form)",
    "chargers:charger-whitelist": "POST only (Logs row form)",
    "chargers:charger-proxy-state": "HTML fragment polled by the Proxy tab",
    "chargers:charger-proxy-delete": "POST only",
    "chargers:charger-proxy-leader": "POST only",
    "chargers:charger-proxy-timeout": "POST only",
    "chargers:charger-security-action": "POST only (Security tab form)",
    "chargers:charger-security-profile": "POST only (Security tab form)",
    "chargers:charger-rotate-password": "POST only (Security tab form)",
    "meterkeys:charger-meter-keys-read": "POST only (Meter keys tab form)",
    "meterkeys:charger-meter-key-confirm": "POST only (Meter keys tab row form)",
    "meterkeys:charger-meter-key-delete": "POST only (Meter keys tab row form)",
    "chargers:charger-reserve": "POST only (Reservations tab form)",
    "chargers:charger-reservation-cancel": "POST only",
    "chargers:charger-set-variable": "POST only (Device model tab form)",
    "chargers:charger-smart-charging-action": "POST only (Smart charging tab form)",
    "chargers:network-move": "POST only (Network list form)",
    "chargers:location-reimbursement": "POST only (Locations form)",
    "chargers:location-reimbursement-remove": "POST only",
    "chargers:session-export": "CSV download",
    "chargers:session-meter": "HTML fragment polled by the session page",
    "authorization:token-group-remove": "POST only",
    "authorization:msp-block": "POST only",
    "chargers:network-unit-add": "POST only (the Network list's Add unit form)",
    "backoffice:time-zone": "POST only (the dashboard's Show times in form)",
    "authorization:roaming-valid": "POST only (Authorization › Roaming's valid box)",
    "billing:payment-refund": "POST only (session cost page form)",
    "billing:statement-create": "POST only (payout list form)",
    "billing:statement-progress": "JSON polled by the payout list",
    "billing:statement-download": "file download",
    "billing:reconciliation-upload": "staff only (support's reconciliation of payout reports)",
    "billing:reconciliation-detail": "staff only",
    "billing:stripe-webhook": "Stripe's webhook endpoint",
    "billing:sandbox-confirm": "the sandbox processor's API",
    "billing:sandbox-setup-confirm": "the sandbox processor's API",
    "billing:sandbox-3ds": "the sandbox's stand-in for the card issuer's 3-D Secure page",
    "billing:sandbox-onboarding": "the sandbox's stand-in for Stripe's hosted onboarding",
    "billing:payout-account": "redirects to the processor's onboarding",
    "billing:payout-account-return": "redirects back to the payout list",
    "billing:subscription-manage": "driver subscriptions (tests/drivers)",
    "partners:msp-ocpi-partner-unregister": "POST only",
    "partners:msp-ocpi-partner-version-update": "POST only (partner page form)",
    "partners:terminal-assign": "POST only (a PTP partner's terminal form)",
    "partners:terminal-activate": "POST only (a PTP partner's page: activate a terminal)",
    "partners:terminal-deactivate": "POST only (a PTP partner's terminal row: deactivate)",
    "partners:terminal-invoice-base": "the start of the invoice URL a payment terminal is given (404 alone)",
    "partners:terminal-invoice": "a driver's invoice for a session paid at a PTP's terminal; needs a "
    "terminal-paid session (tests/roaming/test_payments_module.py)",
    "stays:policy-update": "POST only",
    "power:location-power-live": "HTML fragment polled by the Power page",
    "power:location-power-reading": "POST only (the Power page's Building meter reading form)",
    "stays:calendar-add": "POST only",
    "stays:calendar-sync": "POST only",
    "stays:calendar-remove": "POST only",
    "stays:integration-add": "POST only (integration list's Connect form)",
    "stays:integration-credentials": "POST only (integration page's credentials form)",
    "stays:integration-sync": "POST only",
    "stays:integration-remove": "POST only (integration page's Disconnect)",
    "stays:listing-unit": "POST only",
    "stays:webhook": "a PMS's webhook endpoint",
    "support:inbound-mime": "the mail server's hook for customers' replies (POST only)",
    "support:inbound-mailgun": "Mailgun's inbound route (POST only)",
    "guest:pay-return": "the processor's return URL: shows the pay page again or redirects",
    "guest:stop": "POST only",
    "guest:start": "POST only (landing form)",
    "guest:ports": "HTML fragment polled by the landing page",
    "guest:stay-start": "POST only (stay code form)",
    "logout": "POST only",
    "reliability:alert-rule-edit": "an alert's form, the Alerts page's fields "
    "(tests/reliability/test_alert_rules_browser.py: axe at 1366 and 390 px)",
    "reliability:alert-rule-delete": "POST only (an alert's page)",
    "reliability:alert-recipient-confirm": "an alert recipient's confirmation link "
    "(tests/reliability/test_alert_recipients.py)",
}


def route_names() -> set[str]:
    def walk(patterns: list, namespace: str | None) -> list[str]:
        names = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                names += walk(pattern.url_patterns, pattern.namespace or namespace)
            elif isinstance(pattern, URLPattern) and pattern.name:
                if namespace in NAMESPACES:
                    names.append(f"{namespace}:{pattern.name}")
                elif namespace is None and pattern.name in AUTH_PAGES | {"logout"}:
                    names.append(pattern.name)
        return names

    return set(walk(get_resolver().url_patterns, None))


def test_every_page_is_classified():
    known = set(HOST_PAGES) | set(GUEST_PAGES) | set(NOT_PAGES)
    assert route_names() - known == set(), (
        "add these routes to HOST_PAGES, GUEST_PAGES or NOT_PAGES"
    )
    assert known - route_names() == set(), "these routes are gone"


@pytest.fixture
def world(transactional_db) -> World:
    from billing.models import Rate
    from chargers.models import Backoffice, Connector
    from guest.models import GuestSession
    from guest.services import guest_start
    from tests.factories import ChargerFactory
    from tests.guest.conftest import make_online
    from tests.portal.conftest import make_site

    site = make_site("ax")  # lower case: sign-in matches the login lower-cased
    from fleet.models import Campaign, FirmwareRelease

    release = FirmwareRelease.objects.create(
        organization=site.org,
        version="2.0.0",
        vendor="Vendor",
        location="https://firmware.example.com/2.0.0.bin",
        sha256="a" * 64,
    )
    campaign = Campaign.objects.create(
        organization=site.org, name="Spring rollout", release=release
    )
    from fleet.models import Baseline, BaselineSetting

    site.charger.vendor, site.charger.model = "Vendor", "M1"
    site.charger.save(update_fields=["vendor", "model"])
    baseline = Baseline.objects.create(
        organization=site.org, name="M1 standard", vendor="Vendor", model="M1", protocol="1.6"
    )
    BaselineSetting.objects.create(baseline=baseline, variable="HeartbeatInterval", value="300")
    make_online(site.charger)
    from chargers.models import Command

    # The energy-reporting check a boot queues: a payload of long unbroken keys must wrap on a
    # phone, not make the Recent commands table scroll (axe: scrollable-region-focusable).
    Command.objects.create(
        charger=site.charger,
        action="GetConfiguration",
        payload={
            "key": ["MeterValuesSampledData", "StopTxnSampledData", "MeterValueSampleInterval"]
        },
        status="failed",
        error="CALLERROR NotSupported: MeterValuesSampledData,StopTxnSampledData,MeterValueSampleInterval",
        source="system",
    )
    Connector.objects.filter(charger=site.charger, connector_id=2).update(
        status="Available", error_code=""
    )
    site.charger.license_valid_until = timezone.localdate() + timedelta(days=300)
    site.charger.save()
    charger201 = ChargerFactory(
        property=site.prop,
        station_id="ax-V201",
        ocpp_version="2.0.1",
        license_valid_until=timezone.localdate() + timedelta(days=300),
    )
    backoffice = Backoffice.objects.create(
        charger=site.charger, name="Employer backoffice", url="ws://upstream.example/ocpp"
    )
    rate = Rate.objects.create(
        property=site.prop,
        valid_from=timezone.now() - timedelta(days=1),
        connection_fee=Decimal("1.00"),
        energy_price_per_kwh=Decimal("0.40"),
        tax_percent=Decimal("21"),
        prices_include_tax=False,  # a location from before the choice: tax on top
    )
    from stays.models import Reservation, Unit

    unit = Unit.objects.create(property=site.prop, name="Apartment 1")
    stay = Reservation.objects.create(
        property=site.prop,
        unit=unit,
        guest_name="Ada Guest",
        check_in=timezone.now() - timedelta(hours=2),
        check_out=timezone.now() + timedelta(days=2),
    )
    paying = guest_start(charger=site.charger, connector_id=1, email="guest@example.com")
    failed = guest_start(charger=site.charger, connector_id=2, email="guest2@example.com")
    GuestSession.objects.filter(pk=failed.pk).update(
        state=GuestSession.State.FAILED,
        failure_code="no_start",
        finished_at=timezone.now(),
        failure_message="The car was not plugged in, so charging did not start. You were not charged.",
    )
    return World(
        site,
        charger201,
        backoffice,
        rate,
        stay,
        paying,
        failed,
        _payout(site),
        _partner(site),
        _integration(site),
        _ticket(site),
        campaign,
        baseline,
    )


def _payout(site):
    """Two guest sessions paid through the gateway, one partly refunded, paid out as billing does."""
    from billing.services import payout_create, refund_issue
    from tests.billing.helpers import paid_session

    start = timezone.now() - timedelta(hours=6)
    paid_session(site.charger, wh=12000, start=start)
    _session, payment = paid_session(site.charger, wh=5000, start=start + timedelta(hours=1))
    refund_issue(
        payment=payment,
        amount=Decimal("1.00"),
        reason="idle fee in error",
        source="host",
        idempotency_key="every-page",
    )
    return payout_create(
        organization_id=site.org.pk, currency=site.prop.currency, period_end=timezone.now()
    )


def _partner(site):
    """A connected eMSP whose OCPI log has a pull that worked and one it refused, and a push waiting."""
    import httpx

    from roaming import client, services
    from tests.roaming.conftest import connected_partner

    partner = connected_partner(site.org, country_code="NL", party_id="AXE", name="Every eMSP")
    answers = iter(
        [
            {"status_code": 1000, "data": []},
            {"status_code": 2001, "status_message": "Invalid token"},
        ]
    )
    http = httpx.Client(
        transport=httpx.MockTransport(lambda request: httpx.Response(200, json=next(answers)))
    )
    for _ in range(2):
        try:
            client.call(
                partner=partner,
                method="GET",
                url=partner.endpoints["tokens"]["SENDER"],
                token=partner.outgoing_token,
                module="tokens",
                client=http,
            )
        except client.PartnerCallError:
            pass
    services.delivery_enqueue(
        partner=partner, module="cdrs", object_key="cdr:1", method="POST", path="", body={}
    )
    return partner


def _integration(site):
    """A Guesty integration (sealed credentials) synced from Guesty's recorded answers: one listing
    maps to a unit by its id, the other is not mapped."""
    from stays.models import Unit
    from stays.services.pms import integration_create, pms_sync
    from tests.stays.test_pms_sync import GUESTY_LISTINGS, GUESTY_RESERVATIONS, NOW, _transport

    Unit.objects.create(property=site.prop, name="Cabin 1", external_id="64a1f0c2e4b0a1")
    integration = integration_create(
        organization_id=site.org.pk,
        vendor="guesty",
        name="Guesty",
        credentials={"client_id": "cid", "client_secret": "sec"},
    )
    routes = {
        ("POST", "/oauth2/token"): (
            200,
            {"token_type": "Bearer", "access_token": "tok", "expires_in": 86400},
        ),
        ("GET", "/v1/listings"): (200, GUESTY_LISTINGS),
        ("GET", "/v1/reservations"): (200, GUESTY_RESERVATIONS),
    }
    assert pms_sync(integration_id=integration.pk, client=_transport(routes, []), now=NOW).ok
    return integration


def _ticket(site):
    """The assistant hands a charger problem over to support (with its findings); support replies."""
    from support.assistant.service import assistant_answer
    from support.models import Ticket
    from support.toolkit import ticket_reply
    from tests.factories import UserFactory

    answer = assistant_answer(
        message="charger offline, that didn't help",
        station_id=site.charger.station_id,
        email="guest@example.com",
    )
    ticket = Ticket.objects.get(pk=answer.ticket)
    ticket_reply(
        ticket=ticket,
        user=UserFactory(username="agent@support.test", is_staff=True),
        body="We restarted the charger; it is online again.",
    )
    return ticket


def test_the_detail_pages_show_the_worlds_objects(client, world):
    """The payout, partner, integration and ticket pages checked above are not empty shells."""
    client.force_login(world.site.owner)

    def page(name: str) -> str:
        response = client.get(reverse(name, args=HOST_PAGES[name](world)))
        assert response.status_code == 200
        return response.content.decode()

    payout = page("billing:payout-detail")
    assert (
        payout.count('<td data-label="Session">') == 2 and "<dd>−1.00</dd>" in payout
    )  # the refund
    partner = page("partners:msp-ocpi-partner")
    assert "OCPI 2001: Invalid token" in partner and "POST cdrs cdr:1" in partner
    integration = page("stays:integration-detail")
    assert "(1 not mapped to a unit)" in integration and "Anna Smith" in integration
    ticket = page("support:ticket-detail")
    assert "What the assistant found" in ticket and "We restarted the charger" in ticket


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        yield instance
        instance.close()


def axe_problems(page) -> list:
    from tests.axe import Axe

    results = Axe().run(page)
    return [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _skip_link_problem(page) -> str:
    """The first focusable element is a 'Skip to content' link to an element that exists."""
    info = page.evaluate("""() => {
        const link = document.querySelector('a.skip-link');
        if (!link) return 'no skip link';
        const target = document.querySelector(link.getAttribute('href'));
        if (!target) return 'skip link target missing';
        const first = document.querySelector('a[href], button:not([hidden]), input, select, textarea');
        return first === link ? '' : 'skip link is not the first focusable element';
    }""")
    return info


# QR label sheets are laid out in millimetres for A4 / Letter paper (their own print page, no menu).
PRINT_SHEETS = {"guest:label-charger", "guest:label-sheet"}


def _too_wide(page) -> list[str]:
    """The elements that stick out on the right, to say what to fix."""
    return page.evaluate("""() => { const w = document.documentElement.clientWidth; const out = [];
        for (const el of document.querySelectorAll('body *')) { const r = el.getBoundingClientRect();
            if (r.right > w + 1 && r.width > 0) out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
                + (el.className && typeof el.className === 'string' ? '.' + el.className.trim().split(/\\s+/).join('.') : '')
                + ' ' + Math.round(r.right)); }
        return out.slice(0, 6); }""")


def _visit(page, url: str) -> int:
    response = page.goto(url)
    page.wait_for_load_state("load")
    return response.status if response else 0


def _login(page, base: str, username: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


@pytest.mark.parametrize(
    "who, viewport",
    [
        pytest.param("host", {"width": 1280, "height": 900}, id="host-desktop"),
        pytest.param("host", {"width": 390, "height": 844}, id="host-phone"),
        pytest.param("guest", {"width": 390, "height": 844}, id="guest-phone"),
    ],
)
def test_every_page_passes_axe_and_has_a_skip_link(live_server_proc, world, browser, who, viewport):
    base = live_server_proc.url
    phone = viewport["width"] < 800
    context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
    page = context.new_page()
    csp: list = []
    watch_csp(page, csp)
    pages = HOST_PAGES if who == "host" else GUEST_PAGES
    if who == "host":
        _login(page, base, world.site.owner.username)
    problems: dict[str, list] = {}
    for name, args in sorted(pages.items()):
        url = base + reverse(name, args=args(world))
        status = _visit(page, url)
        found = []
        if status >= 400:
            found.append(f"HTTP {status}")
        skip = _skip_link_problem(page) if name not in PRINT_SHEETS else ""
        if skip:
            found.append(skip)
        found += axe_problems(page)
        if phone and name not in PRINT_SHEETS:
            width = page.evaluate("document.documentElement.scrollWidth")
            if width > viewport["width"] + 2:
                found.append(f"{width}px wide on a {viewport['width']}px phone: {_too_wide(page)}")
        if found:
            problems[name] = found
    context.close()
    assert problems == {}, problems
    assert csp == []


def test_phone_menu_folds_and_charger_tabs_scroll(live_server_proc, world, browser):
    base = live_server_proc.url
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    _login(page, base, world.site.owner.username)
    for path in ("/", f"/chargers/{world.charger201.station_id}/", "/sessions/", "/locations/"):
        page.goto(base + path)
        header = page.evaluate(
            "document.querySelector('header.topbar').getBoundingClientRect().height"
        )
        assert header < 0.15 * 844, f"{path}: the header takes {header}px of 844"
        assert not page.locator("nav.mainnav a:has-text('Sessions')").is_visible()
    # The menu opens on a tap (and says so to screen readers), Escape closes it.
    page.click("button.menu-toggle")
    assert page.get_attribute("button.menu-toggle", "aria-expanded") == "true"
    assert page.locator("nav.mainnav a:has-text('Sessions')").is_visible()
    page.keyboard.press("Escape")
    assert page.get_attribute("button.menu-toggle", "aria-expanded") == "false"
    # A 2.0.1 charger has nine tabs: the row scrolls sideways inside the screen, none is cut off.
    page.goto(f"{base}/chargers/{world.charger201.station_id}/device-model/")
    tabs = page.evaluate("""() => { const t = document.querySelector('nav.tabs'); const r = t.getBoundingClientRect();
        return {scroll: t.scrollWidth, client: t.clientWidth, right: r.right,
                overflow: getComputedStyle(t).overflowX, page: document.documentElement.scrollWidth}; }""")
    assert tabs["scroll"] > tabs["client"] and tabs["overflow"] == "auto"
    assert tabs["right"] <= 390 and tabs["page"] <= 392
    active = page.evaluate("""() => { const a = document.querySelector('nav.tabs a.active').getBoundingClientRect();
        return [a.left, a.right]; }""")
    assert 0 <= active[0] and active[1] <= 390, "the active tab is scrolled into view"
    page.locator("nav.tabs a:has-text('Overview')").scroll_into_view_if_needed()
    assert page.locator("nav.tabs a:has-text('Overview')").is_visible()
    # Desktop: no menu button, the menu is open.
    desktop = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    _login(desktop, base, world.site.owner.username)
    assert not desktop.locator("button.menu-toggle").is_visible()
    assert desktop.locator("nav.mainnav a:has-text('Sessions')").is_visible()
    context.close()


def test_guest_pages_are_readable_at_200_percent_zoom_on_a_phone(live_server_proc, world, browser):
    """200 % zoom on a 390 px phone leaves 195 CSS px: nothing may need a sideways scroll."""
    base = live_server_proc.url
    context = browser.new_context(
        viewport={"width": 195, "height": 422}, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    wide = {}
    for name in (
        "guest:entry",
        "guest:landing",
        "guest:location-access",
        "guest:pay",
        "guest:session",
        "guest:receipt",
        "guest:stay-link",
        "support:contact",
    ):
        page.goto(base + reverse(name, args=GUEST_PAGES[name](world)))
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > 197:
            wide[name] = (width, _too_wide(page))
    context.close()
    assert wide == {}


def test_session_page_follows_a_charging_session(live_server_proc, world, browser):
    """The meter card refreshes itself (every 10 s) while the session charges: kWh, kW and price."""
    from chargers.models import ChargingSession, MeterValue

    now = timezone.now()

    def charging() -> ChargingSession:
        session = ChargingSession.objects.create(
            charger=world.site.charger,
            connector_id=1,
            transaction_id=777001,
            id_tag=world.site.token.uid,
            token=world.site.token,
            started_at=now - timedelta(minutes=10),
            meter_start_wh=0,
            status="active",
        )
        MeterValue.objects.create(
            charger=world.site.charger,
            session=session,
            connector_id=1,
            timestamp=now - timedelta(minutes=5),
            unit="Wh",
            value=Decimal(1000),
        )
        return session

    # Playwright's sync API runs an event loop in this thread: the ORM goes to another one.
    pool = ThreadPoolExecutor(1)
    active = pool.submit(charging).result()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    # The page's own timers on a clock the test moves: its 10 s refresh runs when told, not 10 s later.
    page.clock.install()
    _login(page, live_server_proc.url, world.site.owner.username)
    page.goto(f"{live_server_proc.url}/sessions/{active.pk}/")
    assert "1.000 kWh" in page.inner_text("#session-meter")

    def new_readings() -> None:  # as the charger's MeterValues handler would store them
        MeterValue.objects.create(
            charger=world.site.charger,
            session=active,
            connector_id=1,
            timestamp=now,
            unit="Wh",
            value=Decimal(3500),
        )
        MeterValue.objects.create(
            charger=world.site.charger,
            session=active,
            connector_id=1,
            timestamp=now,
            unit="W",
            measurand="Power.Active.Import",
            value=Decimal(11000),
        )

    pool.submit(new_readings).result()
    pool.shutdown()
    page.clock.fast_forward(10_000)  # the card's refresh is due: it fetches the new readings
    page.wait_for_selector(
        "#session-meter:has-text('3.500 kWh'):has-text('11.0 kW now')", timeout=25_000
    )
    assert page.locator("#session-meter .session-price").is_visible()
    assert (
        page.locator("#meter-chart .axis-right").count() == 3
    )  # the kW axis appeared with the power
