"""The mail server is down while the sweep charges a driver's partner CDRs whose charge task was
lost: every due CDR is charged (once) in that run, not only the first."""

import pytest

from drivers import roaming as driver_roaming
from drivers.models import DriverProfile
from roaming import emsp_driving
from roaming.models import PartnerCdr
from tests.drivers.conftest import save_card, sign_up
from tests.drivers.test_mail_down import LOCMEM
from tests.drivers.test_roaming import _cdr, _ocpi, _session
from tests.drivers.test_roaming import network as network  # the fixture

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs as in production


def test_the_sweep_charges_every_due_cdr_while_mail_is_down(client, network, settings, monkeypatch):
    from drivers import tasks

    settings.EMAIL_BACKEND = LOCMEM
    sign_up(client, "roamer@example.com")
    save_card(client)
    profile = DriverProfile.objects.get(user__email="roamer@example.com")
    token = driver_roaming.roaming_token(profile, emsp_driving.driver_identity())
    _ocpi(client, "PUT", "/ocpi/2.2.1/emsp/sessions/BE/CPX/S1", _session(token.uid))
    # The charge tasks are lost (a broker restart): the sweep is what charges them.
    monkeypatch.setattr(tasks.roaming_cdr_charge_task, "delay", lambda *a, **k: None)
    for cdr_id in ("C1", "C2"):
        _ocpi(client, "POST", "/ocpi/2.2.1/emsp/cdrs", _cdr(cdr_id, token.uid, excl_vat=4.0))
    assert set(PartnerCdr.objects.values_list("payment_status", flat=True)) == {"due"}

    settings.EMAIL_BACKEND = "tests.drivers.test_mail_down.MailDown"
    # Before: the first receipt's SMTP error ended the run; the second CDR waited for the next.
    assert driver_roaming.roaming_charges_collect() == 2
    assert set(PartnerCdr.objects.values_list("payment_status", flat=True)) == {"paid"}
