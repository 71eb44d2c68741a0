"""Every portal write refuses another organization's objects, in the URL and in every form field.

The routes come from the URLconf: a new portal route that is neither in WRITES nor in
READ_ONLY / PUBLIC fails test_every_portal_route_is_classified. Read-only routes are
checked too: a POST to them, full of another organization's ids, changes no row.

Each WRITES row is a request that succeeds with the owner's own objects (checked), and
variants that put organization B's object in the URL or in one form field: those answer
404 (URL) or 400 (field; a few forms redirect back with a message instead), and change
no row anywhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.metering.signing import Meter
from tests.security.conftest import Tenant, changed_tables, db_state

pytestmark = pytest.mark.django_db

METER_KEY = Meter().public_key_hex  # a key printed on a meter (the Meter keys tab's Add form)

PORTAL_NAMESPACES = {
    "backoffice",
    "chargers",
    "authorization",
    "billing",
    "guest",
    "support",
    "stays",
    "drivers",
    "power",
    "meterkeys",
    "reliability",
    "partners",  # roaming's portal pages (Mobility Providers, terminals, access points)
    "metering",
    "pki",
    "fleet",
}


@dataclass
class Write:
    """A portal write: URL args and form data from (tenant in URL, tenant in fields)."""

    args: Callable[[Tenant], list]
    data: Callable[[Tenant], dict]
    # Form fields that refer to objects, each given the other tenant's object by `data`.
    fields: tuple[str, ...] = ()
    own_status: tuple[int, ...] = (302,)
    refused_status: tuple[int, ...] = (400,)  # a foreign object in a form field


def _members_data(t: Tenant) -> dict:
    return {
        "organization": t.org.pk,
        f"org{t.org.pk}-email": "new.member@example.com",
        f"org{t.org.pk}-role": "viewer",
    }


def _settings_data(t: Tenant) -> dict:
    return {
        "name": "Front",
        "access_mode": "public",
        "roaming_enabled": "unknown",
        "guest_charging_enabled": "unknown",
        "token_groups": [t.group.pk],
    }


def _rate_data(t: Tenant) -> dict:
    return {
        "charger": t.charger.pk,
        "valid_from_0": "01 Jan 2031",
        "valid_from_1": "00:00",
        "connection_fee": "0",
        "energy_price_per_kwh": "0.40",
        "time_price_per_hour": "0",
        "idle_fee_per_minute": "0",
        "idle_grace_minutes": "0",
        "tax_percent": "0",
        "prices_include_tax": "on",  # the tenant's price includes tax; its mode stays
        "processing_fee_percent": "0",
        "processing_fee_fixed": "0",
    }


# The URL tenant and the field tenant are passed separately: args(url_tenant), data(field_tenant).
WRITES: dict[str, Write] = {
    "backoffice:members": Write(
        args=lambda t: [], data=_members_data, fields=("organization",), refused_status=(404,)
    ),
    "backoffice:member-change": Write(
        args=lambda t: [t.membership.pk], data=lambda t: {"role": "manager"}
    ),
    "backoffice:organization-energy-reporting": Write(args=lambda t: [t.org.pk], data=lambda t: {}),
    "chargers:charger-command": Write(
        args=lambda t: [t.charger.station_id],
        data=lambda t: {"action": "RemoteStartTransaction", "token": t.token.pk, "connector_id": 1},
        fields=("token",),
    ),
    "chargers:charger-settings": Write(
        args=lambda t: [t.charger.station_id], data=_settings_data, fields=("token_groups",)
    ),
    # An invalid whitelist form goes back to the log page with a message.
    # Add charger answers with its setup card (the password is shown once there), not a redirect.
    "chargers:charger-add": Write(
        args=lambda t: [t.prop.pk],
        data=lambda t: {"station_id": "SEC-NEW-1", "security_profile": "1"},
        own_status=(200,),
    ),
    # Locations › Reimbursement (seed 002 item 5): only this location's chargers are choices.
    "chargers:location-reimbursement": Write(
        args=lambda t: [t.prop.pk],
        data=lambda t: {"uid": "SEC-R-1", "stations": [t.charger.station_id]},
        fields=("stations",),
    ),
    "chargers:location-reimbursement-remove": Write(
        args=lambda t: [t.prop.pk, t.token.pk], data=lambda t: {}
    ),
    "chargers:charger-whitelist": Write(
        args=lambda t: [t.charger.station_id],
        data=lambda t: {"uid": "CAFE0001", "group": t.group.pk},
        fields=("group",),
        refused_status=(302,),
    ),
    "chargers:charger-security-action": Write(
        args=lambda t: [t.charger.station_id],
        data=lambda t: {"action": "GetInstalledCertificateIds"},
    ),
    "chargers:charger-security-profile": Write(
        args=lambda t: [t.charger.station_id],
        data=lambda t: {"security_profile": "1"},
        own_status=(200, 302),
    ),
    "chargers:charger-rotate-password": Write(
        args=lambda t: [t.charger.station_id], data=lambda t: {}, own_status=(200, 302)
    ),
    # Ask support to activate the license: a ticket for the own charger, 404 for another's.
    "support:charger-license": Write(
        args=lambda t: [t.charger.station_id], data=lambda t: {"action": "request"}
    ),
    # Power › Building meter reading (issue 51 item 2): the own location's live budget.
    "power:location-power-reading": Write(
        args=lambda t: [t.prop.pk], data=lambda t: {"available": "20", "unit": "A", "minutes": "5"}
    ),
    # Meter keys tab (issue 51 item 2): the tenant's charger and its key read from the charger.
    "meterkeys:charger-meter-keys": Write(
        args=lambda t: [t.charger.station_id],
        data=lambda t: {"meter_serial": "SEC-M-1", "public_key": METER_KEY},
    ),
    "meterkeys:charger-meter-key-confirm": Write(
        args=lambda t: [t.charger.station_id, t.meter_key.pk], data=lambda t: {}
    ),
    "meterkeys:charger-meter-key-delete": Write(
        args=lambda t: [t.charger.station_id, t.meter_key.pk], data=lambda t: {}
    ),
    # The charger is offline in these tests: the read is refused with a message, no row changes.
    "meterkeys:charger-meter-keys-read": Write(
        args=lambda t: [t.charger.station_id], data=lambda t: {}
    ),
    "chargers:location-detail": Write(
        args=lambda t: [t.prop.pk],
        data=lambda t: {"roaming_enabled": "on", "restricted_token_groups": [t.group.pk]},
        fields=("restricted_token_groups",),
    ),
    "authorization:token-list": Write(
        args=lambda t: [],
        data=lambda t: {
            "organization": t.org.pk,
            "uid": "NEWCARD9",
            "type": "RFID",
            "valid": "on",
            "groups": [t.group.pk],
        },
        fields=("organization", "groups"),
    ),
    "authorization:token-edit": Write(
        args=lambda t: [t.token.pk], data=lambda t: {"label": "x", "valid": "on"}
    ),
    "authorization:token-group-list": Write(
        args=lambda t: [],
        data=lambda t: {"organization": t.org.pk, "name": "Night shift"},
        fields=("organization",),
    ),
    "authorization:token-group-detail": Write(
        args=lambda t: [t.group.pk], data=lambda t: {"uid": "CAFE1234"}
    ),
    "authorization:token-group-remove": Write(
        args=lambda t: [t.group.pk, t.token.pk], data=lambda t: {}
    ),
    "authorization:roaming-valid": Write(args=lambda t: [t.token.pk], data=lambda t: {"valid": ""}),
    "authorization:msp-block": Write(args=lambda t: [t.msp.pk], data=lambda t: {"blocked": "1"}),
    "billing:rate-list": Write(args=lambda t: [t.prop.pk], data=_rate_data, fields=("charger",)),
    "billing:rate-edit": Write(args=lambda t: [t.rate.pk], data=_rate_data, fields=("charger",)),
    "billing:seller-details": Write(
        args=lambda t: [t.org.pk],
        data=lambda t: {
            f"seller-{t.org.pk}-seller_name": "Legal Name B.V.",
            f"seller-{t.org.pk}-vat_number": "NL123456789B01",
        },
    ),
    # Recipients are the organization's members only: another organization's owner is refused.
    "billing:report-schedule": Write(
        args=lambda t: [t.org.pk],
        data=lambda t: {
            "frequency": "weekly",
            "uptime": "on",
            "revenue": "on",
            "enabled": "on",
            "recipients": [t.owner.pk],
        },
        fields=("recipients",),
    ),
    "billing:payment-refund": Write(
        args=lambda t: [t.payment.pk],
        data=lambda t: {"amount": "1.00", "reason": "test", "idempotency_key": "k1"},
        own_status=(200, 302),
    ),
    # An invalid statement request goes back to the payouts page with a message.
    # A foreign property or unit goes back to the Network list with a message, nothing moved.
    "chargers:network-move": Write(
        args=lambda t: [t.charger.station_id],
        data=lambda t: {"place": f"{t.prop.pk}:{t.unit.pk}"},
        fields=("place",),
        refused_status=(302,),
    ),
    "chargers:network-unit-add": Write(
        args=lambda t: [t.prop.pk], data=lambda t: {"name": "Cabin 9", "kind": "cabin"}
    ),
    "chargers:charger-proxy-add": Write(
        args=lambda t: [t.charger.station_id],
        data=lambda t: {"name": "Acme", "url": "ws://acme.example/ocpp", "role": "follower"},
    ),
    "chargers:charger-proxy-edit": Write(
        args=lambda t: [t.charger.station_id, t.backoffice.pk],
        data=lambda t: {"name": "Acme", "url": "ws://acme.example/ocpp", "role": "leader"},
    ),
    "chargers:charger-proxy-delete": Write(
        args=lambda t: [t.charger.station_id, t.backoffice.pk], data=lambda t: {}
    ),
    "chargers:charger-proxy-leader": Write(
        args=lambda t: [t.charger.station_id], data=lambda t: {"backoffice": ""}
    ),
    "chargers:charger-proxy-timeout": Write(
        args=lambda t: [t.charger.station_id], data=lambda t: {"proxy_leader_timeout_s": "5"}
    ),
    # Stays (docs/pms.md): a property's stay policy, its calendar feeds (the sync of the fixture's
    # loopback feed is refused before any request, and recorded).
    "stays:policy-update": Write(
        args=lambda t: [t.prop.pk],
        data=lambda t: {
            "charging": "included",
            "kwh_cap": "20",
            "grace_before_minutes": "60",
            "grace_after_minutes": "60",
            "check_in_time": "15:00",
            "check_out_time": "11:00",
            "shared_chargers": "on",
        },
    ),
    "stays:calendar-sync": Write(args=lambda t: [t.feed.pk], data=lambda t: {}),
    # Site power (docs/power.md): a location's budget, policy, schedule and circuits.
    "power:location-power": Write(
        args=lambda t: [t.prop.pk],
        data=lambda t: {
            "limit_a": "63",
            "phases": "3",
            "voltage": "230",
            "policy": "equal",
            "schedule": "17:00-21:00 40 A",
            "circuits": "Garage: 32 A",
        },
    ),
    "stays:calendar-remove": Write(args=lambda t: [t.feed.pk], data=lambda t: {}),
    "billing:statement-create": Write(
        args=lambda t: [],
        data=lambda t: {
            "organization": t.org.pk,
            "kind": "sessions",
            "date_from": "2026-01-01",
            "date_to": "2026-01-31",
        },
        fields=("organization",),
        refused_status=(302,),
    ),
}

# Staff-only writes: a host gets 403 and changes nothing.
STAFF_ONLY = {"billing:reconciliation-upload"}

# Public or key-addressed flows (guests, the support form): no organization's ids.
PUBLIC = {
    "guest:entry",
    "guest:start",
    "guest:stop",
    "guest:session",
    "guest:receipt",
    "guest:receipt-pdf",  # the receipt as a PDF, by the same unguessable key
    "guest:landing",
    "guest:location-access",
    "guest:stay-start",
    "guest:stay-link",
    "support:contact",
    "support:contact-sent",
    "billing:subscription-manage",
    "guest:pay",
    "guest:pay-return",
    "guest:ports",
    # Stripe's webhook (signature-verified) and the sandbox's stand-ins for Stripe's own pages.
    "stays:webhook",  # a PMS's webhook, authenticated by its signature (tests/stays/test_pms_sync.py)
    "billing:stripe-webhook",
    "billing:sandbox-3ds",
    "billing:sandbox-confirm",
    "billing:sandbox-onboarding",
    "billing:sandbox-setup-confirm",  # the sandbox's stand-in for Stripe.js confirmSetup (client secret)
    # Customers' email replies from the mail server (bearer secret) or Mailgun (signature); 404 unless
    # configured (tests/support/test_inbound_email.py).
    "support:inbound-mime",
    "support:inbound-mailgun",
    # Key-addressed: an alert recipient confirms with the key mailed to them; a terminal's invoice
    # and a signed session's transparency file are reached by their unguessable keys.
    "reliability:alert-recipient-confirm",
    "partners:terminal-invoice-base",
    "partners:terminal-invoice",
    "metering:transparency",
    # A hosted firmware file, for chargers without an account (tests/fleet/test_hosting.py).
    "fleet:firmware-file",
}

# Writes whose tenant checks are tested beside the feature (the object in the URL belongs to a
# charger or organization the view scopes first), with where.
TESTED_ELSEWHERE = {
    "fleet:campaign-action": "tests/fleet/test_portal.py (another organization's campaign: 404, "
    "nothing changed; a viewer's POST: 403)",
    "fleet:campaign-new": "tests/fleet/test_portal.py (another organization's release, location "
    "or charger: 400, nothing created; a viewer's POST: 403)",
    "fleet:release-list": "tests/fleet/test_portal.py (another organization in the form: 400, "
    "nothing created; another organization's releases not listed; a viewer's POST: 403)",
    "fleet:release-action": "tests/fleet/test_portal.py (another organization's release: 404, "
    "not marked bad)",
    "fleet:baseline-new": "tests/fleet/test_portal.py (another organization in the form: 400, "
    "nothing created; viewers: 403)",
    "fleet:baseline-edit": "tests/fleet/test_portal.py (another organization's baseline: 404, "
    "nothing changed)",
    "billing:plan-list": "tests/billing/test_plans_page.py (another organization's location: 404, "
    "nothing created; a viewer's POST: 403)",
    "billing:plan-stop": "tests/billing/test_plans_page.py (another organization's plan: 404, still "
    "offered)",
    "fleet:window-set": "tests/fleet/test_portal.py (another organization's location: 404, no "
    "window stored; a viewer's POST: 403)",
    "fleet:baseline-apply": "tests/fleet/test_baselines.py (another organization's baseline: 404, "
    "nothing queued; a viewer's POST: 403)",
    "fleet:charger-configuration-action": "tests/fleet/test_baselines.py (another organization's "
    "charger: 404, nothing sent; a viewer's POST: 403)",
    "pki:organization-pki": "tests/pki/test_portal.py (not a member: 404; a viewer's POST: 403; "
    "another organization's root in the form: 404, nothing removed)",
    "chargers:charger-reserve": "tests/chargers/v201/test_portal_pages.py (a stranger gets 404)",
    "chargers:charger-reservation-cancel": "tests/chargers/v201/test_portal_pages.py",
    "chargers:charger-set-variable": "tests/chargers/v201/test_portal_pages.py (owners/managers of the charger only)",
    "chargers:charger-smart-charging-action": "tests/chargers/v201/test_portal_pages.py",
    "authorization:msp-validation": "tests/authorization/test_msp_validation_settings.py",
    "billing:payout-account": "tests/billing/test_payout_account.py (owners of the organization only)",
    "billing:payout-account-return": "tests/billing/test_payout_account.py",
    # Adding a feed pulls it at once over the network: a real server in the test, and a foreign
    # property (404) or unit (not a choice) refused there.
    "stays:calendar-add": "tests/stays/test_stay_settings_page.py",
    "stays:integration-remove": "tests/stays/test_stay_settings_page.py (another organization's or a viewer's: 404, nothing removed)",
    "stays:integration-sync": "tests/stays/test_pms_sync.py (another organization's integration: 404)",
    "stays:listing-unit": "tests/stays/test_stay_settings_page.py (a foreign unit changes nothing)",
    # Connecting pulls from the vendor at once (recorded answers there, no network here).
    "stays:integration-add": "tests/stays/test_stay_settings_page.py (another organization: not a choice, nothing stored)",
    "stays:integration-credentials": "tests/stays/test_stay_settings_page.py (viewers and strangers: 404)",
    # Driver accounts belong to one driver, not an organization: another driver's card,
    # subscription or receipt answers 404 and changes nothing (route tables there).
    "drivers:card-default": "tests/drivers/test_isolation.py (FOREIGN_WRITES)",
    "drivers:card-remove": "tests/drivers/test_isolation.py (FOREIGN_WRITES)",
    "drivers:subscription-cancel": "tests/drivers/test_isolation.py (FOREIGN_WRITES)",
    "drivers:session-receipt": "tests/drivers/test_isolation.py (FOREIGN_READS)",
    "drivers:subscribe": "tests/drivers/test_cards_and_subscriptions.py (plans are public; charged to the own default card)",
    "drivers:card-add": "tests/drivers/test_cards_and_subscriptions.py (a SetupIntent on the own customer)",
    "drivers:card-return": "tests/drivers/test_isolation.py (another driver's SetupIntent is refused)",
    "drivers:sessions-claim": "tests/drivers/test_email_change_and_claim.py (verified email only)",
    "backoffice:time-zone": "tests/portal/test_one_time_story.py (the viewer's own location zones or UTC; writes no row)",
    "drivers:start": "tests/drivers/test_one_tap_start.py (chargers are public; held on the own default card)",
    "drivers:account-delete": "tests/drivers/test_account_delete.py (own account, password confirmed)",
    "drivers:business": "tests/guest/test_receipt_number.py (the signed-in driver's own profile only; no id in the URL)",
    # Partner networks: locations of the eMSP identity serving driver accounts only; a start
    # with the driver's own token and card; another driver's session cannot be stopped.
    "drivers:network-start": "tests/drivers/test_roaming.py (another organization's partner location: 404; no card or a blocked token: nothing sent)",
    "drivers:network-stop": "tests/drivers/test_roaming.py (another driver's session: nothing sent)",
    # Mobility Providers: another organization's partner, terminal or location answers 404 to GET
    # and POST and changes no row; the lists show only one's own.
    **{
        f"partners:{name}": "tests/roaming/test_portal_strangers.py"
        for name in (
            "msp-ocpi-partner-list",
            "msp-ocpi-partner",
            "msp-ocpi-partner-unregister",
            "msp-ocpi-partner-version-update",
            "terminal-assign",
            "terminal-deactivate",
            "terminal-activate",
            "location-ocpi",
            "location-parking",
        )
    },
    "partners:access-points": "tests/roaming/test_access_points.py (another organization: not a choice)",
    # Uptime › Alerts: a stranger's GET and POST of a rule answer 404 and change nothing; their
    # form does not offer our organization (400).
    "reliability:alert-rules": "tests/reliability/test_alert_rules_page.py (strangers find nothing)",
    "reliability:alert-rule-edit": "tests/reliability/test_alert_rules_page.py",
    "reliability:alert-rule-delete": "tests/reliability/test_alert_rules_page.py",
}

# Pages that only read (POST is treated like GET or refused).
READ_ONLY: dict[str, Callable[[Tenant], list]] = {
    "fleet:campaign-list": lambda t: [],
    "fleet:campaign-detail": lambda t: [t.campaign.pk],
    "fleet:baseline-list": lambda t: [],
    "fleet:window-list": lambda t: [],
    "fleet:baseline-detail": lambda t: [t.baseline.pk],
    "fleet:charger-configuration": lambda t: [t.charger.station_id],
    "backoffice:dashboard": lambda t: [],
    "chargers:charger-list": lambda t: [],
    "chargers:charger-detail": lambda t: [t.charger.station_id],
    "chargers:charger-logs": lambda t: [t.charger.station_id],
    "chargers:charger-proxy": lambda t: [t.charger.station_id],
    "chargers:charger-proxy-state": lambda t: [t.charger.station_id],
    "chargers:charger-device-model": lambda t: [t.charger.station_id],
    "chargers:charger-reservations": lambda t: [t.charger.station_id],
    "chargers:charger-smart-charging": lambda t: [t.charger.station_id],
    "chargers:charger-sessions": lambda t: [t.charger.station_id],
    "chargers:charger-authorizations": lambda t: [t.charger.station_id],
    "chargers:charger-security": lambda t: [t.charger.station_id],
    "chargers:decision-detail": lambda t: [t.decision.pk],
    "chargers:location-list": lambda t: [],
    "chargers:network-list": lambda t: [],
    "chargers:session-list": lambda t: [],
    "chargers:session-export": lambda t: [],
    "chargers:session-detail": lambda t: [t.session.pk],
    "chargers:session-meter": lambda t: [t.session.pk],
    "chargers:charger-setup-card": lambda t: [t.charger.station_id],
    "authorization:roaming": lambda t: [],
    "authorization:msp-list": lambda t: [],
    "billing:price-overview": lambda t: [],
    "billing:payout-list": lambda t: [],
    "billing:payout-detail": lambda t: [],
    "billing:statement-progress": lambda t: [],
    "billing:statement-download": lambda t: [],
    "billing:reconciliation-detail": lambda t: [],
    "billing:session-cost": lambda t: [t.session.pk],
    "guest:label-charger": lambda t: [t.charger.station_id],
    "guest:label-sheet": lambda t: [t.prop.pk],
    "support:ticket-list": lambda t: [],
    "stays:stay-settings": lambda t: [],
    "power:location-power-live": lambda t: [t.prop.pk],
    "power:power-overview": lambda t: [],
    "stays:integration-list": lambda t: [],
    "stays:integration-detail": lambda t: [],
    "support:ticket-detail": lambda t: [],
    # Driver pages: only the signed-in driver's own rows (a host is sent to the driver sign-in).
    "drivers:home": lambda t: [],
    "drivers:cards": lambda t: [],
    "drivers:subscriptions": lambda t: [],
    "drivers:sessions": lambda t: [],
    "drivers:networks": lambda t: [],
    "drivers:network-activity": lambda t: [],
    "drivers:network-location": lambda t: [1],
    "reliability:fleet-uptime": lambda t: [],
    "reliability:charger-uptime": lambda t: [t.charger.station_id],
}
NEEDS_OTHER_ROWS = {
    "billing:payout-detail",
    "billing:statement-progress",
    "billing:statement-download",
    "billing:reconciliation-detail",
    "support:ticket-detail",
    "stays:integration-detail",
    "drivers:network-location",
}  # no row of these in the fixture: their 404s are tested elsewhere


def portal_route_names() -> set[str]:
    def walk(patterns: list, namespace: str | None) -> list[str]:
        names = []
        for pattern in patterns:
            if isinstance(pattern, URLResolver):
                names += walk(pattern.url_patterns, pattern.namespace or namespace)
            elif (
                isinstance(pattern, URLPattern) and pattern.name and namespace in PORTAL_NAMESPACES
            ):
                names.append(f"{namespace}:{pattern.name}")
        return names

    return set(walk(get_resolver().url_patterns, None))


def test_every_portal_route_is_classified():
    known = set(WRITES) | STAFF_ONLY | PUBLIC | set(READ_ONLY) | set(TESTED_ELSEWHERE)
    assert portal_route_names() - known == set(), (
        "classify these new portal routes (WRITES, READ_ONLY, ...)"
    )
    assert known - portal_route_names() == set(), "these routes are gone"


def _login(client, user):
    client.force_login(user)
    return client


# Remote starts run in a database thread of their own: they need committed rows.
COMMITTED = {"chargers:charger-command", "meterkeys:charger-meter-keys-read"}


def _committed(name: str) -> list:
    return [pytest.mark.django_db(transaction=True)] if name in COMMITTED else []


@pytest.mark.parametrize("name", [pytest.param(n, marks=_committed(n)) for n in sorted(WRITES)])
def test_another_organizations_object_in_the_url_is_404_and_changes_nothing(
    name, client, mine, theirs
):
    write = WRITES[name]
    if not write.args(theirs):
        pytest.skip("no object in this route's URL")
    _login(client, mine.owner)
    before = db_state()
    response = client.post(reverse(name, args=write.args(theirs)), write.data(mine))
    assert response.status_code == 404, name
    assert changed_tables(before, db_state()) == []
    own = client.post(reverse(name, args=write.args(mine)), write.data(mine))
    assert own.status_code in write.own_status, (name, own.status_code)


FIELD_CASES = [
    pytest.param(name, f, marks=_committed(name))
    for name, write in sorted(WRITES.items())
    for f in write.fields
]


@pytest.mark.parametrize("name, field_name", FIELD_CASES)
def test_another_organizations_object_in_a_form_field_is_refused_and_changes_nothing(
    name, field_name, client, mine, theirs
):
    write = WRITES[name]
    _login(client, mine.owner)
    url = reverse(name, args=write.args(mine))
    own_data, foreign_data = write.data(mine), write.data(theirs)
    data = {**own_data}
    for key in foreign_data:  # the field, and keys derived from it (prefixed form fields)
        if key == field_name or key.startswith(f"org{theirs.org.pk}-"):
            data[key] = foreign_data[key]
    if name == "backoffice:members":
        data = foreign_data
    before = db_state()
    response = client.post(url, data)
    assert response.status_code in write.refused_status, (name, field_name, response.status_code)
    assert changed_tables(before, db_state()) == []
    accepted = client.post(url, own_data)
    assert accepted.status_code in write.own_status, (name, accepted.status_code)
    assert changed_tables(before, db_state()) != [], (
        "the same request with own objects should write"
    )


@pytest.mark.parametrize("name", sorted(STAFF_ONLY))
def test_staff_only_writes_refuse_hosts(name, client, mine):
    _login(client, mine.owner)
    before = db_state()
    assert client.post(reverse(name), {}).status_code == 403
    assert changed_tables(before, db_state()) == []


@pytest.mark.parametrize("name", sorted(set(READ_ONLY) - NEEDS_OTHER_ROWS))
def test_read_only_pages_write_nothing_even_when_posted_foreign_ids(name, client, mine, theirs):
    _login(client, mine.owner)
    junk = {
        "organization": theirs.org.pk,
        "property": theirs.prop.pk,
        "token": theirs.token.pk,
        "group": theirs.group.pk,
        "charger": theirs.charger.pk,
        "msp": theirs.msp.pk,
    }
    before = db_state()
    response = client.post(reverse(name, args=READ_ONLY[name](mine)), junk)
    assert response.status_code < 500
    assert changed_tables(before, db_state()) == []
    if READ_ONLY[name](theirs):
        assert client.get(reverse(name, args=READ_ONLY[name](theirs))).status_code == 404, name
