"""Summarize a py-spy raw (collapsed) profile: top frames by own and by inclusive samples.

    python -m bench.profile_summary bench/results/profiles/throughput-ours-1000.txt
"""

import sys
from collections import Counter


def summarize(path: str, top: int = 25) -> str:
    own, inclusive, total = Counter(), Counter(), 0
    for line in open(path):
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


if __name__ == "__main__":
    print(summarize(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 25))
