"""The OCPI 2.3.0 (and 2.2.1) texts' property tables with their types, for checking our objects
field by field (no project imports).

`check(data, anchor)` walks an object against the table after `[[anchor]]`: every field we send
is in the table, every required one is there (`1`, `+`), lists are lists (`*`, `+`) and single
values are not, and each value has its type: CiString (printable ASCII) and string (printable) up
to their length, URL (string(255)), DateTime (RFC 3339 as the types text lists it, UTC), number,
int, boolean, an enum's or OpenEnum's listed values (we send only those), or a class, checked the
same way, down to the leaves.

The tables are kept in the repository (`ocpi230_examples/typed_tables.json`, and for 2.2.1
`ocpi_examples/typed_tables.json`, read out of the AsciiDoc by `typed_tables()` starting from
ROOTS and following every class and enum they name), so the tests run on any checkout;
`test_spec_copies.py` checks the copies against the reference.
Refresh it after a spec change: `python -m tests.roaming.spec_types`.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

from tests.roaming import spec

TYPED_FILES = {version: spec.COPIES[version] / "typed_tables.json" for version in spec.COPIES}
TYPED_FILE = TYPED_FILES[spec.V230]

# The objects we write or answer in 2.3.0, by their anchor in the text.
ROOTS = (
    "version_information_endpoint_version_class",
    "version_information_get_details_endpoint_data",
    "credentials_credentials_object",
    "mod_locations_location_object",
    "mod_tariffs_tariff_object",
    "mod_sessions_session_object",
    "mod_cdrs_cdr_object",
    "mod_commands_commandresponse_object",
    "mod_commands_commandresult_object",
    "mod_tokens_token_object",
    "mod_payments_terminal_object",
    "mod_payments_financial_advice_confirmation_object",
)
# 2.2.1 has the same objects but the Payments module's.
ROOTS_OF = {spec.V230: ROOTS, spec.V221: tuple(r for r in ROOTS if "payments" not in r)}

MODULE_ID = "version_information_endpoint_moduleid_enum"
_ROW = re.compile(
    r"^\|\s*(?:\[\[[^\]]+\]\]\s*)?(?P<name>[a-z_0-9]+)\s*\|(?P<type>[^|]*)\|\s*(?P<card>[1?*+])\s*\|"
)
_REF = re.compile(r"<<(?:[a-z_]+\.asciidoc#)?(?P<anchor>[a-z0-9_]+),\s*(?P<label>[^>]+)>>")
_LENGTH = re.compile(r"[(\[](?P<n>\d+)[)\]]")
_VALUE = re.compile(r"^\|\s*(?P<value>[A-Za-z0-9_/.\-]+)\s*a?\s*(?:\||$)")
_HEADING = re.compile(r"^=+ .*_(?P<kind>enum|OpenEnum|class|type)_", re.IGNORECASE)
# Types named by a bare word (no cross reference) in some rows.
_PLAIN = {"number", "int", "boolean", "string", "cistring", "url", "datetime"}
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z?$")


def _anchors(reference: Path) -> dict[str, list[str]]:
    """Return {anchor: the lines after it} over every document of the reference."""
    found: dict[str, list[str]] = {}
    for document in sorted(reference.glob("*.asciidoc")):
        lines = document.read_text().splitlines()
        for index, line in enumerate(lines):
            match = re.fullmatch(r"\[\[([a-z0-9_]+)\]\]", line.strip())
            if match:
                found[match[1]] = lines[index + 1 :]
    return found


def _table_rows(lines: list[str]) -> list[str]:
    rows: list[str] = []
    inside = False
    for index, line in enumerate(lines[:400]):
        if line.startswith("=") and index > 1 and not inside:
            break  # the next section: this definition has no table
        if line.startswith("|==="):
            if inside:
                break
            inside = True
            continue
        if inside and line.startswith("|"):
            rows.append(line)
    return rows


def _field_type(text: str) -> dict[str, Any]:
    length = _LENGTH.search(text.split(">>")[-1])
    ref = _REF.search(text)
    label = (ref["label"] if ref else text).strip()
    word = re.sub(r"[^a-z]", "", label.lower())
    if word in _PLAIN:
        kind = word
    elif ref:
        kind = "ref"
    else:
        raise ValueError(f"unknown type {text!r}")
    return {
        "kind": kind,
        "ref": ref["anchor"] if kind == "ref" else None,
        "max": int(length["n"]) if length else None,
    }


def _definition_kind(anchor: str, lines: list[str]) -> str:
    heading = next((line for line in lines[:3] if line.startswith("=")), "")
    match = _HEADING.match(heading)
    if match:
        kind = match["kind"].lower()
        return "enum" if kind in ("enum", "openenum") else "class"
    return "enum" if anchor.endswith("_enum") else "class"


def typed_tables(reference: Path, version: str = spec.V230) -> dict[str, Any]:
    """Return {"classes": {anchor: {field: {card, kind, ref, max}}}, "enums": {anchor: [values]}}
    for ROOTS and every class and enum they reach."""
    anchors = _anchors(reference)
    classes: dict[str, dict[str, Any]] = {}
    enums: dict[str, list[str]] = {}
    todo = list(ROOTS_OF[version])
    while todo:
        anchor = todo.pop()
        if anchor in classes or anchor in enums:
            continue
        lines = anchors[anchor]
        rows = _table_rows(lines)
        if _definition_kind(anchor, lines) == "enum":
            values = [m["value"] for m in map(_VALUE.match, rows) if m]
            enums[anchor] = [v for v in values if v != "Value"]
            assert enums[anchor], f"no values after {anchor}"
            continue
        table: dict[str, Any] = {}
        for row in rows:
            match = _ROW.match(row)
            if match:
                table[match["name"]] = {"card": match["card"], **_field_type(match["type"])}
        assert table, f"no table after {anchor}"
        classes[anchor] = table
        todo.extend(f["ref"] for f in table.values() if f["ref"])
    # ModuleID is an OpenEnum whose table lists the modules in columns of their own and leaves
    # out the newer ones (payments): each module's text names its identifier.
    enums[MODULE_ID] = sorted(
        re.findall(r"^\*Module Identifier: `([a-z]+)`\*", _all_text(reference), re.MULTILINE)
    )
    return {"classes": dict(sorted(classes.items())), "enums": dict(sorted(enums.items()))}


def _all_text(reference: Path) -> str:
    return "\n".join(d.read_text() for d in sorted(reference.glob("*.asciidoc")))


@cache
def _tables(version: str = spec.V230) -> dict[str, Any]:
    return json.loads(TYPED_FILES[version].read_text())


def check(
    data: Any, anchor: str, path: str = "$", *, partial: bool = False, version: str = spec.V230
) -> None:
    """Assert `data` is the 2.3.0 class at `anchor`, field by field, down to the leaves; a
    `partial` one (a PATCH body) may leave out required fields."""
    table = _tables(version)["classes"][anchor]
    assert isinstance(data, dict), f"{path}: an object ({anchor})"
    unknown = sorted(set(data) - set(table))
    assert not unknown, f"{path}: not in {anchor}: {unknown}"
    for name, field in table.items():
        where = f"{path}.{name}"
        if name not in data:
            assert partial or field["card"] in "?*", f"{where}: required by {anchor}"
            continue
        value = data[name]
        if field["card"] in "*+":
            assert isinstance(value, list), f"{where}: a list"
            assert value or field["card"] == "*", f"{where}: at least one"
            for index, item in enumerate(value):
                _value(item, field, f"{where}[{index}]", version)
        else:
            assert value is not None, f"{where}: null is not a value"
            _value(value, field, where, version)


def _value(value: Any, field: dict[str, Any], where: str, version: str) -> None:
    kind, limit = field["kind"], field["max"]
    if kind in ("string", "cistring", "url", "datetime"):
        assert isinstance(value, str), f"{where}: a string"
        assert value.isprintable(), f"{where}: printable characters only"
        if kind == "cistring":
            assert value.isascii(), f"{where}: ASCII only (CiString)"
        limit = {"url": 255, "datetime": 25}.get(kind, limit)
        assert limit is None or len(value) <= limit, f"{where}: at most {limit} characters"
        if kind == "datetime":
            assert _DATETIME.match(value), f"{where}: an OCPI DateTime, not {value!r}"
    elif kind == "number":
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{where}: number"
    elif kind == "int":
        assert isinstance(value, int) and not isinstance(value, bool), f"{where}: an int"
    elif kind == "boolean":
        assert isinstance(value, bool), f"{where}: a boolean"
    elif field["ref"] in _tables(version)["enums"]:
        values = _tables(version)["enums"][field["ref"]]
        assert value in values, f"{where}: {value!r} is not one of {field['ref']}: {values}"
        assert limit is None or len(value) <= limit, f"{where}: at most {limit} characters"
    else:
        check(value, field["ref"], where, version=version)


if __name__ == "__main__":
    for version in (spec.V221, spec.V230):
        found = spec.reference_dir(version)
        if found is None:
            raise SystemExit(spec.MISSING_REASON)
        TYPED_FILES[version].write_text(json.dumps(typed_tables(found, version), indent=1) + "\n")
        print(f"wrote {TYPED_FILES[version]} from {found}")
