"""Issue 51 item 3 in Chromium: a host owner reaches Payouts from the main menu (one line at
1366 px), sees the balance, schedule and next payout date, sets the seller's name and VAT number
its receipts carry (item 5), and the page fits a 390 px phone with no serious or critical axe
finding."""

from __future__ import annotations

from decimal import Decimal

from django.utils import timezone

from billing import ledger
from billing.models import LedgerTransaction
from tests.portal.test_issue35_browser import (  # noqa: F401 (fixtures)
    DESKTOP,
    PHONE,
    _check,
    _fast_passwords,
    _login,
    _orm_beside_playwright,
    browser,
    host_site,  # noqa: F811
)


def test_a_host_finds_the_balance_and_next_payout_from_the_menu(
    live_server_proc,
    host_site,  # noqa: F811
    browser,  # noqa: F811
):
    ledger.post(
        key="browser-charge",
        kind=LedgerTransaction.Kind.GUEST_CHARGE,
        organization_id=host_site.organization_id,
        currency="EUR",
        amount=Decimal("42.10"),
        occurred_at=timezone.now(),
    )
    base = live_server_proc.url
    problems: dict = {}
    for viewport, phone in ((DESKTOP, False), (PHONE, True)):
        context = browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone)
        page = context.new_page()
        _login(page, base)
        if phone:
            page.click("button.menu-toggle")
        tops = page.evaluate(
            "Array.from(document.querySelectorAll('#mainnav > a, #mainnav > details > summary'))"
            ".map(e => Math.round(e.getBoundingClientRect().top))"
        )
        if not phone:
            assert len(set(tops)) == 1, tops
        page.click("#mainnav > a:has-text('Payouts')")
        page.wait_for_url(f"{base}/billing/payouts/")
        assert "42.10 EUR" in page.inner_text("[data-field=balance]")
        assert "Monthly on the 1st" in page.inner_text("[data-field=schedule]")
        assert page.inner_text("[data-field=next-payout]").strip()
        _check(page, problems, phone)
        if not phone:
            # Issue 51 item 5: the seller's details on receipts, set here; a wrong VAT number
            # is refused in plain words and nothing is stored.
            org = host_site.organization_id
            page.fill(f"#id_seller-{org}-vat_number", "12345")
            page.click("#receipt-seller button[type=submit]")
            page.wait_for_selector("text=A VAT number starts with the country's two letters")
            page.fill(f"#id_seller-{org}-seller_name", "Harbour Hotel B.V.")
            page.fill(f"#id_seller-{org}-vat_number", "nl123456789b01")
            page.click("#receipt-seller button[type=submit]")
            page.wait_for_selector("text=Saved: your next receipts carry these details.")
            assert page.input_value(f"#id_seller-{org}-vat_number") == "NL123456789B01"
            _check(page, problems, phone)
        context.close()
    assert problems == {}, problems
