"""The OCPI examples and property tables kept in the repository match the reference, which is
found relative to the repository (or by OCPI_SPEC_DIR), not by a machine path."""

import json
from pathlib import Path

import pytest

from tests.roaming import spec, spec_types

VERSIONS = (spec.V221, spec.V230)


def _needs(version: str):
    return pytest.mark.skipif(spec.reference_dir(version) is None, reason=spec.MISSING_REASON)


@pytest.mark.parametrize("version", [pytest.param(v, marks=_needs(v)) for v in VERSIONS])
def test_the_examples_kept_here_are_verbatim_copies_of_the_reference(version):
    reference = spec.reference_dir(version)
    assert reference is not None
    folder = spec.COPIES[version]
    tables = ("property_tables.json", spec_types.TYPED_FILE.name)
    copies = sorted(p for p in folder.glob("*.json") if p.name not in tables)
    assert len(copies) >= 12
    for copy in copies:
        assert copy.read_bytes() == (reference / "examples" / copy.name).read_bytes(), copy.name


@pytest.mark.parametrize("version", [pytest.param(v, marks=_needs(v)) for v in VERSIONS])
def test_the_property_tables_kept_here_match_the_reference(version):
    reference = spec.reference_dir(version)
    assert reference is not None
    assert spec.tables_from_reference(reference, version) == spec._vendored_tables(version)


@pytest.mark.parametrize("version", [pytest.param(v, marks=_needs(v)) for v in VERSIONS])
def test_the_typed_tables_kept_here_match_the_reference(version):
    reference = spec.reference_dir(version)
    assert reference is not None
    kept = json.loads(spec_types.TYPED_FILES[version].read_text())
    assert spec_types.typed_tables(reference, version) == kept
    # Every object we check is there, with the classes and enums it reaches.
    assert set(spec_types.ROOTS_OF[version]) <= set(kept["classes"])
    if version == spec.V230:
        assert kept["enums"]["mod_tariffs_taxincluded_enum"] == ["YES", "NO", "N/A"]
        assert "payments" in kept["enums"][spec_types.MODULE_ID]
    else:
        assert set(kept["classes"]["types_price_class"]) == {"excl_vat", "incl_vat"}


def _reference_at(folder: Path) -> Path:
    ocpi = folder / "shared" / "reference" / "ocpi"
    ocpi.mkdir(parents=True)
    (ocpi / "mod_locations.asciidoc").write_text("")
    return ocpi


def test_the_reference_is_found_beside_the_repository_or_above_it(tmp_path, monkeypatch):
    monkeypatch.delenv("OCPI_SPEC_DIR", raising=False)
    repository = tmp_path / "work" / "wt" / "checkout"
    repository.mkdir(parents=True)
    monkeypatch.setattr(spec, "REPOSITORY", repository)
    assert spec.reference_dir() is None  # a fresh clone elsewhere: absent, the tests skip
    found = _reference_at(tmp_path / "work")
    assert spec.reference_dir() == found  # ../../shared/reference/ocpi from a worktree


def test_ocpi_spec_dir_overrides_the_search(tmp_path, monkeypatch):
    monkeypatch.setattr(spec, "REPOSITORY", tmp_path / "repo")
    _reference_at(tmp_path)
    elsewhere = _reference_at(tmp_path / "elsewhere")
    monkeypatch.setenv("OCPI_SPEC_DIR", str(elsewhere))
    assert spec.reference_dir() == elsewhere
    monkeypatch.setenv("OCPI_SPEC_DIR", str(tmp_path / "missing"))
    assert spec.reference_dir() is None
