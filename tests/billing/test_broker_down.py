"""The Celery broker is down (restarting) when a host asks for a statement or the platform team
uploads a bank report: the request succeeds after its write committed and the job is kept in
PendingTask, sent once the broker answers (backoffice/queueing.py)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from backoffice.models import PendingTask
from billing import schedule
from billing.models import ReconciliationImport, StatementJob
from tests.backoffice.dependencies_down import closed_port
from tests.backoffice.test_queueing import Broker
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit runs as in production

REPORT = "payout_id,date,amount,status\n"


@pytest.fixture
def broker_down():
    broker = Broker()
    broker.down_at(f"redis://127.0.0.1:{closed_port()}/0")
    yield broker
    broker.back()


def kept() -> list[tuple]:
    return [(job.name, job.args) for job in PendingTask.objects.order_by("pk")]


def test_a_statement_requested_while_the_broker_is_down_is_kept(host, prop, broker_down):
    browser = Client(raise_request_exception=False)
    browser.force_login(host)
    answer = browser.post(
        "/billing/statements/",
        {
            "organization": prop.organization_id,
            "kind": "sessions",
            "date_from": "2026-03-01",
            "date_to": "2026-03-31",
        },
    )
    assert answer.status_code == 302
    job = StatementJob.objects.get()
    assert kept() == [(schedule.STATEMENT_GENERATE, [job.pk])]


def test_a_bank_report_uploaded_while_the_broker_is_down_is_kept(broker_down):
    browser = Client(raise_request_exception=False)
    browser.force_login(UserFactory(is_staff=True))
    report = SimpleUploadedFile("report.csv", REPORT.encode(), content_type="text/csv")
    answer = browser.post("/billing/reconciliations/", {"report": report})
    assert answer.status_code == 302
    record = ReconciliationImport.objects.get()
    assert kept() == [(schedule.RECONCILIATION_IMPORT, [record.pk])]


def test_a_bank_report_added_in_the_admin_while_the_broker_is_down_is_kept(broker_down):
    browser = Client(raise_request_exception=False)
    browser.force_login(UserFactory(is_staff=True, is_superuser=True))
    answer = browser.post(
        "/admin/billing/reconciliationimport/add/",
        {
            "filename": "r.csv",
            "content": REPORT,
            "issues-TOTAL_FORMS": "0",
            "issues-INITIAL_FORMS": "0",
        },
    )
    assert answer.status_code == 302, answer.content[:2000]
    record = ReconciliationImport.objects.get()
    assert kept() == [(schedule.RECONCILIATION_IMPORT, [record.pk])]
