"""The success KPIs' pure rules (reliability.kpis) over a planted day, against a hand count
(docs/reliability.md, "Success KPIs")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from reliability import kpis

DAY = datetime(2026, 3, 10, tzinfo=UTC)
NOW = DAY + timedelta(days=2)
CHARGER = 7
OTHER_CHARGER = 8


def at(hhmmss: str) -> datetime:
    h, m, s = (int(x) for x in hhmmss.split(":"))
    return DAY + timedelta(hours=h, minutes=m, seconds=s)


def session(
    pk,
    port,
    started,
    stopped,
    tag,
    *,
    energy_at=None,
    wh=Decimal("10000"),
    reason="Local",
    token_type="",
    charger=CHARGER,
    autocharge=False,
):
    return kpis.Session(
        id=pk,
        charger=charger,
        connector=port,
        started_at=at(started),
        stopped_at=at(stopped) if stopped else None,
        id_tag=tag,
        token_type=token_type,
        roaming_token=False,
        autocharge_token=autocharge,
        remote_start_id=None,
        stop_reason=reason,
        energy_wh=wh,
        first_energy_at=at(energy_at) if energy_at else None,
    )


def authorize(when, uid, accepted=True):
    return kpis.Authorize(
        charger=CHARGER,
        connector=None,
        at=at(when),
        uid=uid,
        accepted=accepted,
        token_type="",
        roaming_token=False,
    )


def remote(when, tag, port, source, answer="Accepted"):
    return kpis.RemoteStart(
        charger=CHARGER,
        connector=port,
        at=at(when),
        id_tag=tag,
        remote_start_id=None,
        source=source,
        status="answered",
        answer=answer,
    )


def planted_day():
    """The day of docs/reliability.md's worked example (13 attempts, hand counted)."""
    sessions = [
        # 1 card, completed, 50 s to energy from the Authorize
        session(
            1, 1, "08:00:20", "09:00:00", "CARD-A", energy_at="08:00:50", reason="EVDisconnected"
        ),
        # 2 app remote start, completed, 40 s
        session(2, 2, "09:00:10", "10:00:00", "APP-B", energy_at="09:00:40", reason="Remote"),
        # 3a card, no energy; 3b the same card 10 minutes later: completed, 35 s
        session(3, 1, "10:00:05", "10:03:00", "CARD-C", wh=Decimal(0), reason="EVDisconnected"),
        session(4, 1, "10:10:05", "11:00:00", "CARD-C", energy_at="10:10:35"),
        # 4b the orphan Authorize's card 45 minutes later (another visit): completed, 30 s
        session(5, 2, "12:45:10", "13:30:00", "CARD-D", energy_at="12:45:30"),
        # 5b a guest a minute after another guest's start went nowhere: completed, 40 s
        session(6, 1, "14:01:10", "15:00:00", "GUEST-2", energy_at="14:01:40", token_type="GUEST"),
        # 6b a guest 5 minutes after a rejected start: energy, then a power loss, 30 s
        session(7, 2, "16:05:10", "16:30:00", "GUEST-4", energy_at="16:05:30", reason="PowerLoss"),
        # 7 autocharge: no Authorize, 15 s from the transaction's start
        session(
            8,
            1,
            "17:00:00",
            "18:00:00",
            "VID:0012AB34CD56",
            energy_at="17:00:15",
            reason="EVDisconnected",
        ),
        # 8 roaming remote start, completed, 25 s
        session(9, 2, "18:00:10", "19:00:00", "NL-XYZ-1", energy_at="18:00:25", reason="Remote"),
        # still charging at the end of the day: in progress, not counted
        session(10, 2, "23:00:00", None, "CARD-E", energy_at="23:00:30"),
        # ten days before (another month too): not this day's
        session(11, 1, "-240:00:00", "-239:00:00", "CARD-F", energy_at="-239:59:50"),
    ]
    authorizes = [
        authorize("08:00:00", "CARD-A"),
        authorize("10:00:00", "CARD-C"),
        authorize("10:10:00", "CARD-C"),
        authorize("12:00:00", "CARD-D"),  # 4a orphan
        authorize("12:45:00", "CARD-D"),
        authorize("19:30:00", "BAD-1", accepted=False),  # 9 rejected card: a failed attempt
        authorize("23:00:00", "CARD-E"),
    ]
    remotes = [
        remote("09:00:00", "APP-B", 2, "api"),
        remote("14:00:00", "GUEST-1", 1, "guest"),  # 5a orphan remote start
        remote("14:01:00", "GUEST-2", 1, "guest"),
        remote("16:00:00", "GUEST-3", 2, "guest", answer="Rejected"),  # 6a orphan
        remote("16:05:00", "GUEST-4", 2, "guest"),
        remote("18:00:00", "NL-XYZ-1", 2, "ocpi"),
    ]
    return sessions, authorizes, remotes


def day_board(rules: kpis.Rules | None = None) -> kpis.Board:
    rules = rules or kpis.Rules()
    sessions, authorizes, remotes = planted_day()
    board = kpis.Board(rules=rules, places={CHARGER: (3, 4)})
    board.add(
        kpis.attempts(
            sessions,
            authorizes,
            remotes,
            start=DAY,
            end=DAY + timedelta(days=1),
            now=NOW,
            rules=rules,
        )
    )
    return board


def test_the_planted_day_equals_the_hand_count():
    fleet = day_board().fleets[4].as_json()
    assert fleet["charge_attempts"] == 13
    assert fleet["power_delivered"] == 8 and fleet["completions"] == 7
    assert fleet["in_progress"] == 1
    assert (fleet["orphan_authorizes"], fleet["orphan_remote_starts"]) == (2, 2)
    assert fleet["session_success_percent"] == round(7 / 13 * 100, 2)
    assert fleet["charge_start_success_percent"] == round(8 / 13 * 100, 2)
    assert fleet["charge_end_success_percent"] == 87.5
    # 15 25 30 30 35 40 40 50 s, interpolated between ranks
    assert fleet["start_time_samples"] == 8
    assert (fleet["start_time_p50_s"], fleet["start_time_p90_s"], fleet["start_time_p95_s"]) == (
        32.5,
        43.0,
        46.5,
    )
    modes = {m: (v["charge_attempts"], v["completions"]) for m, v in fleet["by_mode"].items()}
    assert modes == {
        "card": (6, 3),
        "app": (1, 1),
        "guest": (4, 1),
        "autocharge": (1, 1),
        "roaming": (1, 1),
    }
    # visits: A, B, C(2 tries), D, D again 45 min later, guests on port 1 (2 tries), guest on
    # port 2, guest on port 2 five minutes later, VID, roaming, BAD-1
    assert fleet["visits"] == 11
    assert fleet["first_attempt_successes"] == 5
    assert fleet["first_attempt_success_percent"] == round(5 / 11 * 100, 2)
    assert fleet["visit_success_percent"] == round(7 / 11 * 100, 2)


def test_per_port_and_an_authorize_without_a_port():
    board = day_board()
    port1 = board.port(CHARGER, 1).as_json()
    port2 = board.port(CHARGER, 2).as_json()
    unknown = board.port(CHARGER, 0).as_json()  # two ports: a 1.6 Authorize names neither
    assert (port1["charge_attempts"], port1["completions"], port1["power_delivered"]) == (6, 4, 4)
    assert (port2["charge_attempts"], port2["completions"], port2["power_delivered"]) == (5, 3, 4)
    assert (unknown["charge_attempts"], unknown["orphan_authorizes"]) == (2, 2)
    assert board.properties[3].as_json()["charge_attempts"] == 13


def test_a_charger_with_one_port_takes_its_authorizes():
    sessions, authorizes, remotes = planted_day()
    found = kpis.attempts(
        sessions,
        authorizes,
        remotes,
        start=DAY,
        end=DAY + timedelta(days=1),
        now=NOW,
        rules=kpis.Rules(),
        single_port={CHARGER: 1},
    )
    assert {a.connector for a in found if a.orphan == "authorize"} == {1}


def test_the_visit_windows_are_settings():
    wide = day_board(kpis.Rules(visit_driver_s=3600, visit_anonymous_s=600)).fleets[4].as_json()
    # CARD-D's two tries and the two guests on port 2 become one visit each
    assert wide["visits"] == 9


def test_what_counts_as_an_attempt_is_a_setting():
    strict = kpis.Rules(rejected_authorize_counts=False)
    assert day_board(strict).fleets[4].as_json()["charge_attempts"] == 12
    lenient = kpis.Rules(completion_reasons=kpis.COMPLETION_REASONS | {"PowerLoss"})
    assert day_board(lenient).fleets[4].as_json()["completions"] == 8
    # As INL's calculator: 3a's EVDisconnected without energy completes a session, not a charge.
    unpowered = day_board(kpis.Rules(completion_needs_energy=False)).fleets[4].as_json()
    assert (unpowered["completions"], unpowered["power_delivered"]) == (8, 8)
    assert unpowered["charge_end_success_percent"] == 87.5
    assert unpowered["session_success_percent"] == round(8 / 13 * 100, 2)


def test_an_authorize_too_recent_to_judge_is_in_progress():
    rules = kpis.Rules()
    found = kpis.attempts(
        [],
        [authorize("12:00:00", "CARD-Z")],
        [],
        start=DAY,
        end=DAY + timedelta(days=1),
        now=at("12:02:00"),
        rules=rules,
    )
    assert [a.outcome for a in found] == [kpis.PENDING]


def test_a_slice_counts_what_began_in_it_and_links_across_its_edge():
    """An Authorize at 23:58 and its transaction at 00:01 the next day: the session is the next
    slice's attempt, and the Authorize is no orphan in this one."""
    rules = kpis.Rules()
    late = [kpis.Authorize(CHARGER, None, at("23:58:00"), "CARD-X", True, "", False)]
    crossing = [session(20, 1, "24:01:00", "25:00:00", "CARD-X", energy_at="24:01:30")]
    day = kpis.attempts(
        crossing, late, [], start=DAY, end=DAY + timedelta(days=1), now=NOW, rules=rules
    )
    assert day == []
    (next_day,) = kpis.attempts(
        crossing,
        late,
        [],
        start=DAY + timedelta(days=1),
        end=DAY + timedelta(days=2),
        now=NOW,
        rules=rules,
    )
    assert next_day.start_s == 210 and next_day.outcome == kpis.COMPLETED


def test_percentile_matches_linear_interpolation():
    assert kpis.percentile([], 50) is None
    assert kpis.percentile([7.0], 95) == 7.0
    assert kpis.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
