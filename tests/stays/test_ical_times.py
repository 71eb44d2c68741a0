"""Calendar feeds on the days the clocks change, and all-day events however their end is given:
the stay (and so the guest's access code) starts and ends at the times the calendar means."""

from datetime import UTC, datetime, time

from stays.ical import parse_calendar


def _calendar(*lines: str) -> str:
    event = "".join(f"{line}\r\n" for line in lines)
    return (
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nBEGIN:VEVENT\r\nUID:stay-1\r\nSUMMARY:Reserved\r\n"
        f"{event}END:VEVENT\r\nEND:VCALENDAR\r\n"
    )


def _stay(*lines: str) -> tuple[datetime, datetime]:
    (event,) = parse_calendar(
        _calendar(*lines),
        timezone="America/New_York",
        check_in_at=time(15),
        check_out_at=time(11),
    )
    return event.check_in.astimezone(UTC), event.check_out.astimezone(UTC)


def test_a_duration_in_hours_is_real_hours_across_the_spring_change():
    # 01:30 EST on the day US clocks go forward, for two hours: until 04:30 EDT. Before, the two
    # hours were added to the wall clock (03:30 EDT), one real hour: the stay ended an hour early.
    assert _stay("DTSTART;TZID=America/New_York:20260308T013000", "DURATION:PT2H") == (
        datetime(2026, 3, 8, 6, 30, tzinfo=UTC),
        datetime(2026, 3, 8, 8, 30, tzinfo=UTC),
    )


def test_a_duration_in_days_keeps_the_time_of_day_across_the_autumn_change():
    # Three nights from 16:00 EDT over the night clocks go back: out at 16:00 EST, as DTEND would say.
    assert _stay("DTSTART;TZID=America/New_York:20261030T160000", "DURATION:P3D") == (
        datetime(2026, 10, 30, 20, tzinfo=UTC),
        datetime(2026, 11, 2, 21, tzinfo=UTC),
    )


def test_an_all_day_stay_ends_at_check_out_time_however_its_end_is_given():
    with_end = _stay("DTSTART;VALUE=DATE:20260701", "DTEND;VALUE=DATE:20260704")
    # Before, a DURATION or no end at all made check-out 15:00 (the check-in time) on the last
    # day: four hours after the guest had to leave, and unlike the same stay written with DTEND.
    assert _stay("DTSTART;VALUE=DATE:20260701", "DURATION:P3D") == with_end
    assert with_end == (
        datetime(2026, 7, 1, 19, tzinfo=UTC),  # 15:00 EDT
        datetime(2026, 7, 4, 15, tzinfo=UTC),  # 11:00 EDT
    )
    assert _stay("DTSTART;VALUE=DATE:20260701") == (
        datetime(2026, 7, 1, 19, tzinfo=UTC),
        datetime(2026, 7, 2, 15, tzinfo=UTC),
    )


def test_an_all_day_stay_over_a_clock_change_keeps_local_check_in_and_check_out_times():
    # In before the spring change (EST), out after it (EDT).
    assert _stay("DTSTART;VALUE=DATE:20260307", "DTEND;VALUE=DATE:20260309") == (
        datetime(2026, 3, 7, 20, tzinfo=UTC),  # 15:00 EST
        datetime(2026, 3, 9, 15, tzinfo=UTC),  # 11:00 EDT
    )
