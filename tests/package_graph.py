"""The package-level import graph of an app (issue 50): which of its packages imports which.

A node is a first-level entry of the app (a package such as `chargers.sessions`, or a top-level
module such as `chargers.models`); an arrow a -> b stands for every import from a module of a
into a module of b (grimp's graph, function-level imports included). An arrow "runs back up"
when it lies on a circle of arrows (both ends in one strongly connected part).

    .venv/bin/python -m tests.package_graph chargers     # every arrow, then the counts
"""

from __future__ import annotations

import importlib.util
import sys
import tomllib
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import grimp


def node(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def arrows(
    app: str, ignored: Iterable[tuple[str, str]] = (), graph: grimp.ImportGraph | None = None
) -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(from node, to node) -> the module imports behind it; `ignored` imports left out."""
    graph = graph or grimp.build_graph(app, cache_dir=None)
    skip = set(ignored)
    found: dict[tuple[str, str], set[tuple[str, str]]] = defaultdict(set)
    for importer in graph.modules:
        if importer.split(".")[0] != app:
            continue
        for imported in graph.find_modules_directly_imported_by(importer):
            if imported.split(".")[0] != app or (importer, imported) in skip:
                continue
            a, b = node(importer), node(imported)
            if a and b and a != b:
                found[(a, b)].add((importer, imported))
    return dict(found)


def circles(pairs: Iterable[tuple[str, str]]) -> list[set[str]]:
    """The strongly connected parts of more than one node (a few dozen nodes: plain reachability)."""
    out: dict[str, set[str]] = defaultdict(set)
    for a, b in pairs:
        out[a].add(b)

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in out[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    nodes = {n for pair in pairs for n in pair}
    reaches = {n: reach(n) for n in nodes}
    parts: list[set[str]] = []
    for n in sorted(nodes):
        part = {m for m in nodes if m in reaches[n] and n in reaches[m]} | {n}
        if len(part) > 1 and part not in parts:
            parts.append(part)
    return parts


def back_up(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The arrows that lie on a circle."""
    pairs = list(pairs)
    parts = circles(pairs)
    return [(a, b) for a, b in pairs if any(a in p and b in p for p in parts)]


def contract_ignores(app: str) -> list[tuple[str, str]]:
    """The imports the app's own layers contract leaves out (pyproject.toml)."""
    with open(Path(__file__).resolve().parents[1] / "pyproject.toml", "rb") as handle:
        contracts = tomllib.load(handle)["tool"]["importlinter"]["contracts"]
    pairs = []
    for contract in contracts:
        if contract.get("containers") == [app]:
            for line in contract.get("ignore_imports", []):
                importer, _, imported = line.replace(" ", "").partition("->")
                pairs.append((importer, imported))
    return pairs


def entry_is_package(app: str, name: str) -> bool:
    spec = importlib.util.find_spec(f"{app}.{name}")
    return bool(spec and spec.submodule_search_locations)


def summary(found: dict[tuple[str, str], set[tuple[str, str]]]) -> str:
    parts = circles(found)
    return f"{len(found)} arrows, {len(back_up(found))} on a circle, circles: " + (
        "; ".join(" ".join(sorted(p)) for p in parts) or "none"
    )


def main(app: str) -> None:
    graph = grimp.build_graph(app, cache_dir=None)
    found = arrows(app, graph=graph)
    up = set(back_up(found))
    for (a, b), imports in sorted(found.items()):
        print(f"{a:12} -> {b:12} {len(imports):3} {'on a circle' if (a, b) in up else ''}")
    print("every arrow:", summary(found))
    ignored = contract_ignores(app)
    print(
        f"without the {len(ignored)} imports the layers contract ignores:",
        summary(arrows(app, ignored, graph)),
    )
    packages = {k: v for k, v in found.items() if all(entry_is_package(app, n) for n in k)}
    print("between packages only:", summary(packages))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "chargers")
