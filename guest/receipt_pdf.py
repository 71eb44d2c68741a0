"""The receipt as a PDF (fpdf2): the same facts as the receipt page, from receipt_context, so the
page, the email and the file never disagree. Core fonts (Helvetica) carry Latin-1 only: other
characters are written as their nearest Latin-1 form."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fpdf import FPDF

from .formatting import money

_PLAIN = str.maketrans({"–": "-", "—": "-", "…": "...", "’": "'", "“": '"', "”": '"', "−": "-"})


def _latin1(text: Any) -> str:
    return str(text).translate(_PLAIN).encode("latin-1", "replace").decode("latin-1")


def _when(value: datetime | None) -> str:
    return value.strftime("%d %b %Y, %H:%M %Z") if value is not None else "-"


def _row(pdf: FPDF, label: str, value: str, *, bold: bool = False) -> None:
    pdf.set_font("Helvetica", "B" if bold else "", 10)
    pdf.cell(120, 6, _latin1(label))
    pdf.cell(0, 6, _latin1(value), align="R", new_x="LMARGIN", new_y="NEXT")


def _parties(pdf: FPDF, ctx: dict[str, Any]) -> None:
    receipt = ctx["receipt"]
    pdf.set_font("Helvetica", "", 10)
    seller = f"Seller: {receipt.seller_name}"
    if receipt.seller_vat_number:
        seller += f", VAT number {receipt.seller_vat_number}"
    pdf.multi_cell(0, 5, _latin1(seller), new_x="LMARGIN", new_y="NEXT")
    if receipt.buyer_company:
        buyer = f"Customer: {receipt.buyer_company}"
        if receipt.buyer_vat_id:
            buyer += f", VAT ID {receipt.buyer_vat_id}"
        pdf.multi_cell(0, 5, _latin1(buyer), new_x="LMARGIN", new_y="NEXT")
    pdf.multi_cell(
        0, 5, _latin1(f"Issued {_when(ctx['issued_at'])}"), new_x="LMARGIN", new_y="NEXT"
    )
    pdf.ln(3)


def _lines(pdf: FPDF, ctx: dict[str, Any]) -> None:
    cost = ctx["cost"]
    cur = cost.currency
    for line in cost.lines:
        _row(pdf, line["description"], f"{cur} {money(line['amount'], cur)}")
    pdf.ln(1)
    if cost.prices_include_tax:
        _row(pdf, "Total", f"{cur} {money(cost.total, cur)}", bold=True)
        if cost.tax:
            _row(
                pdf,
                f"Included tax ({cost.tax_percent.normalize():f} %)",
                f"{cur} {money(cost.tax, cur)}",
            )
            _row(pdf, "Total excluding tax", f"{cur} {money(cost.subtotal, cur)}")
    else:
        _row(pdf, "Subtotal", f"{cur} {money(cost.subtotal, cur)}")
        if cost.tax:
            _row(pdf, f"Tax ({cost.tax_percent.normalize():f} %)", f"{cur} {money(cost.tax, cur)}")
        _row(pdf, "Total", f"{cur} {money(cost.total, cur)}", bold=True)


def receipt_pdf(ctx: dict[str, Any], *, collector: str) -> bytes:
    """The PDF of a receipt context that has a numbered receipt and a cost."""
    receipt = ctx["receipt"]
    pdf = FPDF(format="A4")
    pdf.set_compression(False)  # a page of text: small either way, and its words searchable
    pdf.set_title(_latin1(f"Receipt {receipt.reference}"))
    pdf.set_author(_latin1(receipt.seller_name))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 16)
    pdf.cell(0, 10, _latin1(f"Receipt {receipt.reference}"), new_x="LMARGIN", new_y="NEXT")
    _parties(pdf, ctx)
    prop, charger, gs = ctx["property"], ctx["charger"], ctx["gs"]
    place = f"{charger.station_id}, port {gs.connector_id} - {prop.name}"
    if prop.address:
        place += f", {prop.address}"
    pdf.set_font("Helvetica", "", 10)
    pdf.multi_cell(0, 5, _latin1(place), new_x="LMARGIN", new_y="NEXT")
    _row(pdf, "Started", _when(ctx["started_at"]))
    _row(pdf, "Ended", _when(ctx["stopped_at"]))
    energy = "No reading reported" if ctx["no_reading"] else f"{ctx['energy_kwh'] or '0.000'} kWh"
    _row(pdf, "Energy", energy)
    pdf.ln(3)
    _lines(pdf, ctx)
    payment = ctx.get("payment")
    if payment:
        pdf.ln(3)
        cur = payment["currency"]
        _row(pdf, "Paid by card", f"{cur} {money(payment['amount_captured'], cur)}")
        for refund in payment.get("refunds") or []:
            _row(pdf, f"Refunded: {refund['reason']}", f"-{cur} {money(refund['amount'], cur)}")
        if payment.get("refunds"):
            _row(pdf, "You paid", f"{cur} {money(payment['net'], cur)}", bold=True)
    pdf.ln(4)
    pdf.set_font("Helvetica", "", 8)
    note = (
        f"{receipt.seller_name} sells the charging; {collector} collects the payment on its behalf."
    )
    pdf.multi_cell(0, 4, _latin1(note), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())
