"""The pure decision function: no database, no I/O."""

from datetime import UTC, date, datetime, timedelta

import pytest

from authorization.decisions import (
    NEEDS_MSP,
    REASONS,
    ChargerFacts,
    Context,
    MspAnswer,
    Status,
    TokenFacts,
    decide,
)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
CHARGER = ChargerFacts(
    station_id="CP-1",
    organization_id=1,
    license_valid_until=date(2027, 1, 1),
    access_mode="public",
    roaming_enabled=True,
    guest_charging_enabled=True,
)
OWN = TokenFacts(uid="AA", organization_id=1)


def charger(**changes):
    return ChargerFacts(**{**CHARGER.__dict__, **changes})


def token(**changes):
    return TokenFacts(**{**OWN.__dict__, **changes})


@pytest.mark.parametrize(
    "token_facts, charger_facts, context, status, reason",
    [
        (OWN, charger(license_valid_until=None), Context.LOCAL, Status.INVALID, "license_inactive"),
        (
            OWN,
            charger(license_valid_until=date(2026, 11, 20)),
            Context.LOCAL,
            Status.INVALID,
            "license_inactive",
        ),
        (None, CHARGER, Context.LOCAL, Status.INVALID, "unknown_token"),
        (token(blocked=True, valid=False), CHARGER, Context.LOCAL, Status.BLOCKED, "token_blocked"),
        (token(valid=False), CHARGER, Context.LOCAL, Status.INVALID, "token_invalid"),
        (
            token(expires_at=NOW - timedelta(seconds=1)),
            CHARGER,
            Context.LOCAL,
            Status.EXPIRED,
            "token_expired",
        ),
        (
            token(organization_id=None, msp_id=7, msp_blocked=True),
            CHARGER,
            Context.LOCAL,
            Status.BLOCKED,
            "msp_blocked",
        ),
        (
            token(organization_id=2),
            charger(access_mode="private", roaming_enabled=False),
            Context.LOCAL,
            Status.INVALID,
            "charger_not_roaming",
        ),
        (
            token(is_guest=True),
            charger(guest_charging_enabled=False),
            Context.REMOTE_APP,
            Status.INVALID,
            "charger_not_roaming",
        ),
        (
            OWN,
            charger(restricted_group_ids=frozenset({5})),
            Context.LOCAL,
            Status.INVALID,
            "not_in_local_group",
        ),
        # A guest paying by QR is in no local group: a restricted charger refuses it (issue 17).
        (
            token(is_guest=True),
            charger(restricted_group_ids=frozenset({5})),
            Context.REMOTE_APP,
            Status.INVALID,
            "not_in_local_group",
        ),
        (
            token(allowed_station_ids=frozenset({"CP-9"})),
            CHARGER,
            Context.LOCAL,
            Status.INVALID,
            "reimbursement_not_allowed",
        ),
        (
            token(organization_id=None, msp_id=7),
            charger(roaming_enabled=False),
            Context.REMOTE_MSP,
            Status.INVALID,
            "remote_start_roaming_disabled",
        ),
        (
            token(organization_id=2),
            charger(roaming_enabled=False),
            Context.REMOTE_APP,
            Status.INVALID,
            "remote_start_roaming_disabled",
        ),
        (
            token(single_session=True, active_sessions=1),
            CHARGER,
            Context.LOCAL,
            Status.CONCURRENT_TX,
            "concurrent_tx",
        ),
        (
            token(group_ids=frozenset({5})),
            charger(restricted_group_ids=frozenset({5})),
            Context.LOCAL,
            Status.ACCEPTED,
            "accepted_group",
        ),
        (token(organization_id=2), CHARGER, Context.LOCAL, Status.ACCEPTED, "accepted_roaming"),
        (OWN, CHARGER, Context.LOCAL, Status.ACCEPTED, "accepted_local"),
        (
            token(group_ids=frozenset({5}), organization_id=2),
            charger(
                access_mode="private", roaming_enabled=False, restricted_group_ids=frozenset({5})
            ),
            Context.LOCAL,
            Status.ACCEPTED,
            "accepted_group",
        ),
    ],
)
def test_decision_table(token_facts, charger_facts, context, status, reason):
    decision = decide(token_facts, charger_facts, context, now=NOW)
    assert (decision.status, decision.reason) == (status, reason)
    assert decision.message == REASONS[reason][1]


def test_license_is_checked_before_the_card():
    assert (
        decide(None, charger(license_valid_until=None), Context.LOCAL, now=NOW).reason
        == "license_inactive"
    )


def test_blocked_beats_invalid_and_expired():
    facts = token(blocked=True, valid=False, expires_at=NOW - timedelta(days=1))
    assert decide(facts, CHARGER, Context.LOCAL, now=NOW).status == Status.BLOCKED


MSP_TOKEN = token(organization_id=None, msp_id=7, msp_live_validation=True)


def test_msp_live_validation_is_requested_then_decided():
    assert decide(MSP_TOKEN, CHARGER, Context.LOCAL, now=NOW).reason == NEEDS_MSP
    assert (
        decide(MSP_TOKEN, CHARGER, Context.LOCAL, now=NOW, msp_answer=MspAnswer.ALLOWED).reason
        == "accepted_msp_live"
    )
    rejected = decide(MSP_TOKEN, CHARGER, Context.LOCAL, now=NOW, msp_answer=MspAnswer.NOT_ALLOWED)
    assert (rejected.status, rejected.reason) == (Status.INVALID, "msp_rejected")
    assert (
        decide(MSP_TOKEN, CHARGER, Context.LOCAL, now=NOW, msp_answer=MspAnswer.BLOCKED).status
        == Status.BLOCKED
    )


def test_msp_timeout_follows_the_providers_policy():
    reject = decide(MSP_TOKEN, CHARGER, Context.LOCAL, now=NOW, msp_answer=MspAnswer.TIMEOUT)
    assert (reject.status, reject.reason) == (Status.INVALID, "msp_timeout")
    accept = decide(
        token(organization_id=None, msp_id=7, msp_live_validation=True, msp_on_timeout_accept=True),
        CHARGER,
        Context.LOCAL,
        now=NOW,
        msp_answer=MspAnswer.TIMEOUT,
    )
    assert (accept.status, accept.reason) == (Status.ACCEPTED, "msp_timeout")


def test_every_reason_has_a_step_and_a_message():
    for reason, (step, message) in REASONS.items():
        assert 1 <= step <= 13 and len(message) > 20, reason
