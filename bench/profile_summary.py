"""Summarize a py-spy raw (collapsed) profile: top frames by own and by inclusive samples,
or (--ours) by what of ours the samples are in: the function a database-pool thread runs
("DB: session_stop") or the deepest frame of ours on the event loop ("LOOP: ...").

    python -m bench.profile_summary bench/results/profiles/throughput-ours-1000.txt
    python -m bench.profile_summary --ours bench/recorded/2026-11-22-profile-storm-connect-3000-after.txt
"""

import sys
from collections import Counter


def summarize(path: str, top: int = 25) -> str:
    own, inclusive, total = Counter(), Counter(), 0
    for line in open(path, errors="replace"):
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for frame in set(frames):
            inclusive[frame] += n
    out = [f"{total} samples", "", "own time:"]
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in own.most_common(top)]
    out += ["", "inclusive:"]
    out += [f"  {100 * c / total:5.1f}%  {f}" for f, c in inclusive.most_common(top * 2)]
    return "\n".join(out)


OURS = ("chargers/", "backoffice/", "authorization/", "billing/", "guest/", "roaming/")


def summarize_ours(path: str, top: int = 25) -> str:
    where, total = Counter(), 0
    for line in open(path, errors="replace"):
        stack, _, count = line.rstrip().rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        key = None
        for i, frame in enumerate(frames):
            if frame.startswith("_call (backoffice/db.py") and i + 1 < len(frames):
                key = "DB: " + frames[i + 1].split(" (")[0]
                break
        if key is None:
            ours = [f for f in frames if any(app in f for app in OURS)]
            key = "LOOP: " + (ours[-1] if ours else frames[-1])
        where[key] += n
    out = [
        f"{total} samples, by database-pool function (DB) or deepest frame of ours on the loop (LOOP)"
    ]
    out += [f"  {100 * c / total:5.1f}%  {k}" for k, c in where.most_common(top)]
    return "\n".join(out)


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--ours"]
    limit = int(args[1]) if len(args) > 1 else 25
    print(summarize_ours(args[0], limit) if "--ours" in sys.argv else summarize(args[0], limit))
