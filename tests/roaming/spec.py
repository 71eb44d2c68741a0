"""The OCPI 2.2.1 and 2.3.0 texts for contract tests (no project imports): property tables and
JSON examples.

What the tests use is in the repository, so they run on any checkout (CI clones into a fresh
temporary directory): `ocpi_examples/` (2.2.1) and `ocpi230_examples/` (2.3.0) hold verbatim
copies of the spec's JSON examples the tests read and `property_tables.json`, the property
tables (name -> cardinality) read out of the spec's AsciiDoc by `tables_from_reference()`.

The reference itself (for checking that the copies still match it) is found by
`reference_dir()`: `OCPI_SPEC_DIR` (2.2.1) or `OCPI_230_SPEC_DIR` when set, else
`shared/reference/ocpi` (`shared/reference/ocpi-2.3.0`) in the repository's folder or any folder
above it (on the dev machine it sits at ../shared/reference beside the checkout, or two levels
up from a worktree). Tests needing it skip with `MISSING_REASON`.

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
V221, V230 = "2.2.1", "2.3.0"
# Per version: the reference folder's name under shared/reference, its environment variable,
# and where the copies are kept.
FOLDERS = {V221: "ocpi", V230: "ocpi-2.3.0"}
ENV = {V221: "OCPI_SPEC_DIR", V230: "OCPI_230_SPEC_DIR"}
COPIES = {V221: VENDORED, V230: Path(__file__).resolve().parent / "ocpi230_examples"}

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

# The 2.3.0 objects the contract tests check, beside 2.2.1's (its new and changed classes).
TABLES_230 = [
    *TABLES,
    ("mod_locations.asciidoc", "mod_locations_parking_object"),
    ("mod_locations.asciidoc", "mod_locations_evseparking_class"),
    ("types.asciidoc", "types_price_class"),
    ("types.asciidoc", "types_tax_amount_class"),
    ("mod_payments.asciidoc", "mod_payments_terminal_object"),
    ("mod_payments.asciidoc", "mod_payments_financial_advice_confirmation_object"),
]
TABLES_OF = {V221: TABLES, V230: TABLES_230}

# A property row: "|name |type |card |..." (2.3.0 puts an anchor before some names, and spaces).
_ROW = re.compile(
    r"^\|\s*(?:\[\[[^\]]+\]\]\s*)?(?P<name>[a-z_0-9]+)\s*\|(?P<type>[^|]*)\|\s*(?P<card>[1?*+])\s*\|"
)


def reference_dir(version: str = V221) -> Path | None:
    """Return the OCPI reference folder of `version`, or None when this machine does not have it."""
    configured = os.environ.get(ENV[version], "")
    if configured:
        return Path(configured) if (Path(configured) / "mod_locations.asciidoc").is_file() else None
    for folder in [REPOSITORY, *REPOSITORY.parents]:
        candidate = folder / "shared" / "reference" / FOLDERS[version]
        if (candidate / "mod_locations.asciidoc").is_file():
            return candidate
    return None


MISSING_REASON = (
    "the OCPI reference is not on this machine (set OCPI_SPEC_DIR / OCPI_230_SPEC_DIR, or put it "
    "at shared/reference/ocpi and shared/reference/ocpi-2.3.0 beside the repository); the copies "
    "in tests/roaming/ocpi_examples and ocpi230_examples are used instead"
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


def tables_from_reference(reference: Path, version: str = V221) -> dict[str, dict[str, str]]:
    """Return every table of the version's tables read out of the reference, keyed
    "document#anchor"."""
    return {
        f"{document}#{anchor}": table_from_text((reference / document).read_text(), anchor)
        for document, anchor in TABLES_OF[version]
    }


@cache
def _vendored_tables(version: str = V221) -> dict[str, dict[str, str]]:
    return json.loads((COPIES[version] / "property_tables.json").read_text())


def fields(document: str, anchor: str, version: str = V221) -> dict[str, str]:
    """Return {property: cardinality} of the object's property table in `version`."""
    key = f"{document}#{anchor}"
    tables = _vendored_tables(version)
    assert key in tables, (
        f"add ({document!r}, {anchor!r}) to the tables and run python -m {__name__}"
    )
    return tables[key]


def example(name: str, version: str = V221):
    """Return one of the spec's JSON examples (a verbatim copy in the version's folder)."""
    path = COPIES[version] / name
    assert path.is_file(), (
        f"copy examples/{name} of the OCPI {version} reference into {path.parent}"
    )
    return json.loads(path.read_text())


def check_object(data: dict, document: str, anchor: str, version: str = V221) -> None:
    """Assert `data` uses only the object's properties (in `version`) and has every required one."""
    spec = fields(document, anchor, version)
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
    for version in (V221, V230):
        found = reference_dir(version)
        if found is None:
            raise SystemExit(MISSING_REASON)
        target = COPIES[version] / "property_tables.json"
        target.write_text(json.dumps(tables_from_reference(found, version), indent=2) + "\n")
        print(f"wrote {target} from {found}")
