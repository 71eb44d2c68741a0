"""Every reason code, driven through a real charger connection (or the remote-start API path):
checks the idTagInfo status the charger got and the recorded decision."""

from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from authorization.models import AuthorizationDecision
from tests.factories import (
    ChargerFactory,
    MembershipFactory,
    MspFactory,
    OrganizationFactory,
    TokenFactory,
    TokenGroupFactory,
)
from tests.msp_server import FakeMsp
from tests.ocpp_client import OcppTestClient

pytestmark = pytest.mark.django_db(transaction=True)
TS = "2026-11-21T10:00:00Z"


async def authorize(station_id: str, uid: str, action: str = "Authorize") -> str:
    client = OcppTestClient(station_id)
    assert (await client.connect())[0]
    if action == "Authorize":
        status = (await client.result("Authorize", {"idTag": uid}))["idTagInfo"]["status"]
    else:
        status = (
            await client.result(
                "StartTransaction",
                {"connectorId": 1, "idTag": uid, "meterStart": 0, "timestamp": TS},
            )
        )["idTagInfo"]["status"]
    await client.close()
    return status


async def last_decision() -> AuthorizationDecision:
    return await AuthorizationDecision.objects.order_by("-id").afirst()


async def assert_outcome(station_id, uid, status, reason, action="Authorize"):
    assert await authorize(station_id, uid, action) == status
    decision = await last_decision()
    assert (decision.status, decision.reason, decision.station_id) == (status, reason, station_id)
    assert decision.message
    return decision


@sync_to_async
def setup(**charger_kwargs):
    charger = ChargerFactory(station_id="CP-A", **charger_kwargs)
    return charger, charger.property.organization


async def test_license_inactive(db):
    charger, org = await setup(license_valid_until=None)
    await sync_to_async(TokenFactory)(uid="AA01", organization=org)
    await assert_outcome("CP-A", "AA01", "Invalid", "license_inactive")


async def test_license_expired_yesterday(db):
    charger, org = await setup(license_valid_until=timezone.localdate() - timedelta(days=1))
    await sync_to_async(TokenFactory)(uid="AA01", organization=org)
    await assert_outcome("CP-A", "AA01", "Invalid", "license_inactive")


async def test_unknown_token(db):
    await setup()
    decision = await assert_outcome("CP-A", "FFFF9999", "Invalid", "unknown_token")
    assert "Unrecognized" in decision.message


async def test_token_invalid(db):
    charger, org = await setup()
    await sync_to_async(TokenFactory)(uid="AA02", organization=org, valid=False)
    await assert_outcome("CP-A", "aa02", "Invalid", "token_invalid")


async def test_token_expired(db):
    charger, org = await setup()
    await sync_to_async(TokenFactory)(
        uid="AA03", organization=org, expires_at=timezone.now() - timedelta(hours=1)
    )
    await assert_outcome("CP-A", "AA03", "Expired", "token_expired")


async def test_token_blocked(db):
    charger, org = await setup()
    await sync_to_async(TokenFactory)(uid="AA04", organization=org, blocked=True)
    await assert_outcome("CP-A", "AA04", "Blocked", "token_blocked")


async def test_charger_not_roaming(db):
    await setup(access_mode="private")
    await sync_to_async(TokenFactory)(
        uid="AA05", organization=await sync_to_async(OrganizationFactory)()
    )
    await assert_outcome("CP-A", "AA05", "Invalid", "charger_not_roaming")


async def test_not_in_local_group(db):
    charger, org = await setup()
    group = await sync_to_async(TokenGroupFactory)(organization=org)
    await sync_to_async(charger.token_groups.add)(group)
    await sync_to_async(TokenFactory)(uid="AA06", organization=org)
    await assert_outcome("CP-A", "AA06", "Invalid", "not_in_local_group")


async def test_accepted_group(db):
    charger, org = await setup()
    group = await sync_to_async(TokenGroupFactory)(organization=org)
    await sync_to_async(charger.token_groups.add)(group)
    token = await sync_to_async(TokenFactory)(uid="AA07", organization=org)
    await sync_to_async(group.tokens.add)(token)
    await assert_outcome("CP-A", "AA07", "Accepted", "accepted_group")


async def test_msp_blocked(db):
    charger, org = await setup()
    msp = await sync_to_async(MspFactory)(organization=org, blocked=True)
    await sync_to_async(TokenFactory)(uid="AA08", organization=None, msp=msp)
    await assert_outcome("CP-A", "AA08", "Blocked", "msp_blocked")


async def test_reimbursement_not_allowed(db):
    charger, org = await setup()
    await sync_to_async(TokenFactory)(uid="AA09", organization=org, allowed_station_ids=["CP-HOME"])
    await assert_outcome("CP-A", "AA09", "Invalid", "reimbursement_not_allowed")


async def test_concurrent_tx(db):
    charger, org = await setup()
    await sync_to_async(TokenFactory)(uid="AA10", organization=org, single_session=True)
    assert await authorize("CP-A", "AA10", "StartTransaction") == "Accepted"
    await assert_outcome("CP-A", "AA10", "ConcurrentTx", "concurrent_tx")


async def test_accepted_local_and_roaming(db):
    charger, org = await setup()
    await sync_to_async(TokenFactory)(uid="AA11", organization=org)
    await sync_to_async(TokenFactory)(
        uid="AA12", organization=await sync_to_async(OrganizationFactory)()
    )
    await assert_outcome("CP-A", "AA11", "Accepted", "accepted_local")
    await assert_outcome("CP-A", "AA12", "Accepted", "accepted_roaming")


async def test_start_transaction_records_its_own_decision_and_never_refuses(db):
    charger, org = await setup()
    await sync_to_async(TokenFactory)(uid="AA13", organization=org, blocked=True)
    decision = await assert_outcome(
        "CP-A", "AA13", "Blocked", "token_blocked", action="StartTransaction"
    )
    assert decision.context == "start_transaction"
    assert await charger.sessions.acount() == 1  # the session is kept; the charger stops it


@pytest.fixture(autouse=True)
def _stub_msp_allow_listed(settings):
    """The stub MSP (tests/msp_server.py) listens on 127.0.0.1 over http: staff allow-list it."""
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]


@pytest.fixture
def msp_endpoint():
    servers = []

    def make(**kwargs):
        server = FakeMsp(**kwargs)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


async def _msp_token(org, endpoint, **msp_kwargs):
    msp = await sync_to_async(MspFactory)(
        organization=org,
        live_validation_url=endpoint.url,
        live_validation_token="secret-msp-credential",
        **msp_kwargs,
    )
    await sync_to_async(TokenFactory)(uid="BB01", organization=None, msp=msp)
    return msp


async def test_accepted_msp_live_with_ocpi_request_and_cache(db, msp_endpoint):
    charger, org = await setup()
    endpoint = msp_endpoint(allowed="ALLOWED")
    await _msp_token(org, endpoint)
    decision = await assert_outcome("CP-A", "BB01", "Accepted", "accepted_msp_live")
    assert decision.msp_latency_ms is not None
    request = endpoint.requests[0]
    assert request["path"] == "/ocpi/2.2.1/tokens/BB01/authorize"
    assert request["query"] == {"type": ["RFID"]}
    assert request["auth"] == "Token secret-msp-credential"
    assert request["body"]["evse_uids"] == ["CP-A"]
    # A just-validated card is not asked again at StartTransaction.
    assert await authorize("CP-A", "BB01", "StartTransaction") == "Accepted"
    assert len(endpoint.requests) == 1


async def test_msp_rejected(db, msp_endpoint):
    charger, org = await setup()
    await _msp_token(org, msp_endpoint(allowed="NOT_ALLOWED"))
    decision = await assert_outcome("CP-A", "BB01", "Invalid", "msp_rejected")
    assert decision.msp_response["data"]["allowed"] == "NOT_ALLOWED"


async def test_msp_timeout_rejects_by_default(db, msp_endpoint):
    charger, org = await setup()
    await _msp_token(org, msp_endpoint(delay=3), timeout_s=1)
    await assert_outcome("CP-A", "BB01", "Invalid", "msp_timeout")


async def test_msp_timeout_can_accept_by_policy(db, msp_endpoint):
    charger, org = await setup()
    await _msp_token(org, msp_endpoint(delay=3), timeout_s=1, on_timeout="accept")
    await assert_outcome("CP-A", "BB01", "Accepted", "msp_timeout")


def test_remote_start_roaming_disabled_through_the_api(transactional_db, api_client):
    charger = ChargerFactory(station_id="CP-R")
    org = charger.property.organization
    charger.property.roaming_enabled = False
    charger.property.save()
    membership = MembershipFactory(organization=org, role="manager")
    msp = MspFactory(organization=org)
    TokenFactory(uid="CC01", organization=None, msp=msp)
    api_client.force_authenticate(membership.user)
    response = api_client.post(
        "/api/v1/chargers/CP-R/commands/RemoteStartTransaction/?context=remote_msp",
        {"connectorId": 1, "idTag": "CC01"},
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["reason"] == "remote_start_roaming_disabled"
    decision = AuthorizationDecision.objects.get()
    assert (decision.status, decision.reason, decision.context) == (
        "Invalid",
        "remote_start_roaming_disabled",
        "remote_msp",
    )
    # A context that is neither ours nor another network's is refused before any decision.
    response = api_client.post(
        "/api/v1/chargers/CP-R/commands/RemoteStartTransaction/?context=remote-msp",
        {"connectorId": 1, "idTag": "CC01"},
        format="json",
    )
    assert response.status_code == 400 and "remote_msp" in response.json()["context"][0]
    assert AuthorizationDecision.objects.count() == 1
