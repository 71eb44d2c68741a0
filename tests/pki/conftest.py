"""Fixtures of the Plug & Charge tests."""

from __future__ import annotations

import pytest

from pki.models import CertificateUse

from .pkitools import World, install_root


@pytest.fixture(autouse=True)
def _ca_dir(settings, tmp_path):
    """Our CA (the local V2G hierarchy, the CSMS CA) lives in the test's own folder."""
    settings.OCPP_CA_DIR = str(tmp_path / "ca")


@pytest.fixture
def mo_world(charger):
    """The contract's hierarchy with its MO root installed for the charger's operator."""
    built = World()
    install_root(charger.property.organization_id, CertificateUse.MO, built.mo_root)
    yield built
    built.responder.stop()
