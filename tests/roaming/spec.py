"""Read object definitions out of the OCPI 2.2.1 text, for contract tests (no project imports)."""

import json
import re
from functools import cache
from pathlib import Path

SPEC = Path("/work/shared/reference/ocpi")
if not SPEC.exists():  # the spec is vendored next to the repository in the shared checkout
    SPEC = Path(__file__).resolve().parents[3] / "shared" / "reference" / "ocpi"

_ROW = re.compile(r"^\|(?P<name>[a-z_0-9]+) +\|(?P<type>[^|]*)\|(?P<card>[1?*+]) *\|")


@cache
def fields(document: str, anchor: str) -> dict[str, str]:
    """Return {property: cardinality} of the table after `[[anchor]]` in `document`."""
    lines = (SPEC / document).read_text().splitlines()
    start = lines.index(f"[[{anchor}]]")
    found: dict[str, str] = {}
    in_table = False
    for line in lines[start + 1 :]:
        if line.startswith("|==="):
            if in_table:
                break
            in_table = True
            continue
        match = _ROW.match(line) if in_table else None
        if match:
            found[match["name"]] = match["card"]
    assert found, f"no table after {anchor}"
    return found


def example(name: str):
    return json.loads((SPEC / "examples" / name).read_text())


def check_object(data: dict, document: str, anchor: str) -> None:
    """Assert `data` uses only the object's properties and has every required one."""
    spec = fields(document, anchor)
    unknown = set(data) - set(spec)
    assert not unknown, f"{anchor}: not in the spec: {sorted(unknown)}"
    missing = [name for name, card in spec.items() if card in "1+" and name not in data]
    assert not missing, f"{anchor}: required but missing: {missing}"
    empty = [name for name, card in spec.items() if card == "+" and not data.get(name)]
    assert not empty, f"{anchor}: needs at least one: {empty}"


def same_types(ours, theirs, path: str = "$") -> None:
    """Assert every key ours shares with the spec example has the same JSON type, recursively."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), path
        for key in set(ours) & set(theirs):
            same_types(ours[key], theirs[key], f"{path}.{key}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list), path
        if ours and theirs:
            same_types(ours[0], theirs[0], f"{path}[0]")
    elif isinstance(theirs, bool):
        assert isinstance(ours, bool), path
    elif isinstance(theirs, int | float):
        assert isinstance(ours, int | float) and not isinstance(ours, bool), path
    else:
        assert isinstance(ours, type(theirs)), (
            f"{path}: {type(ours).__name__} vs {type(theirs).__name__}"
        )
