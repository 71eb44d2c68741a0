"""A guest's access-code email that failed (the mail server down when the stay was synced) is
sent once the mail server is back. A PMS is pulled by its changes only, so the stay is not seen
again: before, nothing tried again and the guest arrived without a code."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.core import mail
from django.core.mail.backends.locmem import EmailBackend
from django.utils import timezone

from stays import tasks
from stays.models import Reservation
from stays.services.pms import pms_sync
from tests.stays.test_pms_cursor import guesty_client, pms_reservation


class MailServerDown(EmailBackend):
    def send_messages(self, messages):  # type: ignore[no-untyped-def]
        raise ConnectionRefusedError(111, "Connection refused")


STAY = {"checkIn": "2026-12-20T13:00:00.000Z", "checkOut": "2026-12-23T09:00:00.000Z"}


@pytest.mark.django_db
def test_a_code_email_that_failed_is_sent_once_the_mail_server_is_back(
    guesty, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.MailServerDown"
    start = timezone.now()
    with time_machine.travel(start, tick=False) as traveller:
        with django_capture_on_commit_callbacks(execute=True):
            stay = pms_reservation(1, "2026-11-20T08:00:00.000Z", **STAY)
            assert pms_sync(integration_id=guesty.pk, client=guesty_client([stay])).ok
        reservation = Reservation.objects.get(integration=guesty)
        assert reservation.code_sent_at is None

        settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
        mail.outbox.clear()
        traveller.shift(timedelta(minutes=15))
        with django_capture_on_commit_callbacks(execute=True):
            # The next pull asks for changes since the last one: the stay is not in it.
            assert pms_sync(integration_id=guesty.pk, client=guesty_client([])).ok
        assert mail.outbox == []  # what happened before: nobody tried again

        assert tasks.access_codes_send_task() == 1
        assert [m.to for m in mail.outbox] == [["guest1@example.com"]]
        assert reservation.access_code in mail.outbox[0].body
        assert tasks.access_codes_send_task() == 0  # once
        assert len(mail.outbox) == 1


@pytest.mark.django_db
def test_the_retry_leaves_alone_stays_just_saved_over_and_cancelled(
    guesty, settings, django_capture_on_commit_callbacks
):
    settings.EMAIL_BACKEND = f"{__name__}.MailServerDown"
    with django_capture_on_commit_callbacks(execute=True):
        stays = [
            pms_reservation(1, "2026-11-20T08:00:00.000Z", **STAY),
            pms_reservation(
                2,
                "2026-11-20T08:00:00.000Z",
                checkIn="2026-10-01T13:00:00.000Z",
                checkOut="2026-10-03T09:00:00.000Z",
            ),
            pms_reservation(3, "2026-11-20T08:00:00.000Z", status="canceled", **STAY),
        ]
        assert pms_sync(integration_id=guesty.pk, client=guesty_client(stays)).ok
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    mail.outbox.clear()
    # Saved a moment ago: its own send (on commit) may still be under way.
    assert tasks.access_codes_send_task() == 0
    with time_machine.travel(timezone.now() + timedelta(minutes=15)):
        # The stay that is over and the cancelled one get nothing.
        assert tasks.access_codes_send_task() == 1
    assert [m.to for m in mail.outbox] == [["guest1@example.com"]]
