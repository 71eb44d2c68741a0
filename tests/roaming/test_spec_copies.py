"""The OCPI examples and property tables kept in the repository match the reference, which is
found relative to the repository (or by OCPI_SPEC_DIR), not by a machine path."""

from pathlib import Path

import pytest

from tests.roaming import spec

reference = spec.reference_dir()
needs_reference = pytest.mark.skipif(reference is None, reason=spec.MISSING_REASON)


@needs_reference
def test_the_examples_kept_here_are_verbatim_copies_of_the_reference():
    assert reference is not None
    copies = sorted(p for p in spec.VENDORED.glob("*.json") if p != spec.TABLES_FILE)
    assert len(copies) >= 12
    for copy in copies:
        assert copy.read_bytes() == (reference / "examples" / copy.name).read_bytes(), copy.name


@needs_reference
def test_the_property_tables_kept_here_match_the_reference():
    assert reference is not None
    assert spec.tables_from_reference(reference) == spec._vendored_tables()


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
