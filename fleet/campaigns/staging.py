"""Which chargers of a firmware campaign go next, and when it halts (docs/firmware.md).

Pure: the campaign's rules and its targets' states in, a decision out; no Django. A campaign
is cut into stages in rollout order: the canary (a share of the chargers, at least one), then
waves of `wave_size`. A stage is released once every earlier stage has finished and the
success rate of what finished holds; failures reaching `max_failures` halt it all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time

PENDING = "pending"
SENT = "sent"
SUCCEEDED = "succeeded"
FAILED = "failed"
SKIPPED = "skipped"
FINISHED = {SUCCEEDED, FAILED, SKIPPED}

DISPATCH = "dispatch"
WAIT = "wait"
HALT = "halt"
HOLD = "hold"
COMPLETE = "complete"

# What a charger reports when an update failed: FirmwareStatusNotification (1.6 §7.25, 2.0.1
# FirmwareStatusEnumType), SignedFirmwareStatusNotification (security whitepaper), and the
# answers to (Signed)UpdateFirmware that refuse it (L01.FR.02/.03, L01.FR.11).
FAILURE_STATUSES = {
    "DownloadFailed",
    "InstallationFailed",
    "InstallVerificationFailed",
    "InvalidSignature",
    "Rejected",
    "InvalidCertificate",
    "RevokedCertificate",
}
INSTALLED_STATUSES = {"Installed"}


@dataclass(frozen=True)
class Rules:
    canary_share: float
    wave_size: int
    success_threshold: float
    max_failures: int


@dataclass(frozen=True)
class Target:
    id: int
    position: int
    status: str
    ready: bool = True  # may be sent now: online, no session, inside its property's window


@dataclass(frozen=True)
class Decision:
    verdict: str
    send: tuple[int, ...] = ()
    reason: str = ""
    stage: int = 0  # the last stage released (0: the canary)


def stage_sizes(count: int, canary_share: float, wave_size: int) -> list[int]:
    """The number of chargers in each stage: the canary, then waves."""
    if count <= 0:
        return []
    canary = min(count, max(1, math.ceil(count * canary_share))) if canary_share > 0 else 0
    sizes = [canary] if canary else []
    rest = count - canary
    wave = max(1, wave_size)
    while rest > 0:
        sizes.append(min(wave, rest))
        rest -= sizes[-1]
    return sizes


def _rate(targets: Sequence[Target]) -> float | None:
    succeeded = sum(1 for t in targets if t.status == SUCCEEDED)
    failed = sum(1 for t in targets if t.status == FAILED)
    return succeeded / (succeeded + failed) if succeeded + failed else None


def decide(rules: Rules, targets: Sequence[Target], *, release_bad: bool = False) -> Decision:
    """Return what the campaign does now: send the ready pending targets of the released
    stages, wait, halt, hold (its release is marked bad) or complete."""
    if release_bad:
        return Decision(HOLD, reason="The release is marked bad.")
    failed = sum(1 for t in targets if t.status == FAILED)
    if failed >= rules.max_failures:
        return Decision(
            HALT, reason=f"{failed} failed update(s) reached the limit of {rules.max_failures}."
        )
    if all(t.status in FINISHED for t in targets):
        return Decision(COMPLETE)
    ordered = sorted(targets, key=lambda t: (t.position, t.id))
    send: list[int] = []
    start = 0
    released = 0
    for index, size in enumerate(stage_sizes(len(ordered), rules.canary_share, rules.wave_size)):
        before, stage = ordered[:start], ordered[start : start + size]
        if index > 0:
            if any(t.status not in FINISHED for t in before):
                break  # the previous stages are still running
            rate = _rate(before)
            if rate is not None and rate < rules.success_threshold:
                return Decision(
                    HALT,
                    reason=f"Success rate {rate:.0%} below {rules.success_threshold:.0%} "
                    f"after stage {index}.",
                    stage=index - 1,
                )
        released = index
        send += [t.id for t in stage if t.status == PENDING and t.ready]
        start += size
    return Decision(DISPATCH if send else WAIT, send=tuple(send), stage=released)


def in_window(start: time, end: time, local: time) -> bool:
    """Whether `local` lies in [start, end) of a daily window (end before start: over midnight;
    equal: all day)."""
    if start == end:
        return True
    if start < end:
        return start <= local < end
    return local >= start or local < end


@dataclass(frozen=True)
class Progress:
    """What is known of one sent update."""

    target_version: str
    sent_at: datetime
    last_report_at: datetime | None
    operation_status: str  # the latest answer or notification ("" none)
    booted_at: datetime | None
    reported_version: str


def verdict(progress: Progress, *, timeout_s: int, now: datetime) -> tuple[str, str] | None:
    """Return (SUCCEEDED or FAILED, why) once a sent update is decided, else None. Success is a
    boot after the update with the release's firmwareVersion; a failure status, a boot on
    another version after it reported Installed, or silence for `timeout_s` is a failure."""
    booted_since = progress.booted_at is not None and progress.booted_at > progress.sent_at
    if booted_since and progress.reported_version == progress.target_version:
        return SUCCEEDED, f"Booted with {progress.target_version}."
    if progress.operation_status in FAILURE_STATUSES:
        return FAILED, f"The charger reported {progress.operation_status}."
    if booted_since and progress.operation_status in INSTALLED_STATUSES:
        return FAILED, f"Booted with {progress.reported_version or 'no version'} after installing."
    heard = max(
        [progress.sent_at]
        + [t for t in (progress.last_report_at, progress.booted_at) if t is not None]
    )
    if (now - heard).total_seconds() >= timeout_s:
        return FAILED, f"No report for {timeout_s} s."
    return None
