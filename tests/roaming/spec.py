"""The OCPI 2.2.1 text for contract tests (no project imports): property tables and JSON examples.

What the tests use is in the repository, so they run on any checkout (CI clones into a fresh
temporary directory): `ocpi_examples/` holds verbatim copies of the spec's JSON examples the
tests read and `ocpi_examples/property_tables.json`, the property tables (name -> cardinality)
read out of the spec's AsciiDoc by `tables_from_reference()`.

The reference itself (for checking that the copies still match it) is found by
`reference_dir()`: `OCPI_SPEC_DIR` when set, else `shared/reference/ocpi` in the repository's
folder or any folder above it (on the dev machine it sits at ../shared/reference beside the
checkout, or two levels up from a worktree). Tests needing it skip with `MISSING_REASON`.

Refresh the tables after a spec change: `python -m tests.roaming.spec`.
"""

from __future__ import annotations

import json
import os
import re
from functools import cache
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
VENDORED = Path(__file__).resolve().parent / "ocpi_examples"
TABLES_FILE = VENDORED / "property_tables.json"

# (document, anchor) of every property table the contract tests check objects against.
TABLES = [
    ("credentials.asciidoc", "credentials_credentials_object"),
    ("credentials.asciidoc", "credentials_credentials_role_class"),
    ("mod_locations.asciidoc", "mod_locations_location_object"),
    ("mod_locations.asciidoc", "mod_locations_evse_object"),
    ("mod_locations.asciidoc", "mod_locations_connector_object"),
    ("mod_locations.asciidoc", "mod_locations_hours_class"),
    ("mod_locations.asciidoc", "mod_locations_regularhours_class"),
    ("mod_locations.asciidoc", "mod_locations_exceptionalperiod_class"),
    ("mod_locations.asciidoc", "mod_locations_geolocation_class"),
    ("mod_tariffs.asciidoc", "mod_tariffs_tariff_object"),
    ("mod_tariffs.asciidoc", "mod_tariffs_pricecomponent_class"),
    ("mod_sessions.asciidoc", "mod_sessions_session_object"),
    ("mod_cdrs.asciidoc", "mod_cdrs_cdr_object"),
    ("mod_cdrs.asciidoc", "mod_cdrs_cdr_location_class"),
    ("mod_cdrs.asciidoc", "mod_cdrs_signed_data_class"),
    ("mod_cdrs.asciidoc", "mod_cdrs_signed_value_class"),
]

_ROW = re.compile(r"^\|(?P<name>[a-z_0-9]+) +\|(?P<type>[^|]*)\|(?P<card>[1?*+]) *\|")


def reference_dir() -> Path | None:
    """Return the OCPI 2.2.1 reference folder, or None when this machine does not have it."""
    configured = os.environ.get("OCPI_SPEC_DIR", "")
    if configured:
        return Path(configured) if (Path(configured) / "mod_locations.asciidoc").is_file() else None
    for folder in [REPOSITORY, *REPOSITORY.parents]:
        candidate = folder / "shared" / "reference" / "ocpi"
        if (candidate / "mod_locations.asciidoc").is_file():
            return candidate
    return None


MISSING_REASON = (
    "the OCPI 2.2.1 reference is not on this machine (set OCPI_SPEC_DIR, or put it at "
    "shared/reference/ocpi beside the repository); the copies in tests/roaming/ocpi_examples "
    "are used instead"
)


def table_from_text(text: str, anchor: str) -> dict[str, str]:
    """Return {property: cardinality} of the table after `[[anchor]]` in an AsciiDoc text."""
    lines = text.splitlines()
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


def tables_from_reference(reference: Path) -> dict[str, dict[str, str]]:
    """Return every table of TABLES read out of the reference, keyed "document#anchor"."""
    return {
        f"{document}#{anchor}": table_from_text((reference / document).read_text(), anchor)
        for document, anchor in TABLES
    }


@cache
def _vendored_tables() -> dict[str, dict[str, str]]:
    return json.loads(TABLES_FILE.read_text())


def fields(document: str, anchor: str) -> dict[str, str]:
    """Return {property: cardinality} of the object's property table."""
    key = f"{document}#{anchor}"
    tables = _vendored_tables()
    assert key in tables, f"add ({document!r}, {anchor!r}) to TABLES and run python -m {__name__}"
    return tables[key]


def example(name: str):
    """Return one of the spec's JSON examples (a verbatim copy in ocpi_examples/)."""
    path = VENDORED / name
    assert path.is_file(), f"copy examples/{name} of the OCPI reference into {VENDORED}"
    return json.loads(path.read_text())


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


if __name__ == "__main__":
    found = reference_dir()
    if found is None:
        raise SystemExit(MISSING_REASON)
    TABLES_FILE.write_text(json.dumps(tables_from_reference(found), indent=2) + "\n")
    print(f"wrote {TABLES_FILE} from {found}")
