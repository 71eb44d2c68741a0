"""Refresh the README's screenshots (docs/screenshots) in real headless Chromium. Not a test.

    .venv/bin/python tests/screenshots.py [--out docs/screenshots] [--port 8765]

Builds a throw-away SQLite database with the demo data (`load_demo`, `load_demo_billing`), starts
the real server with its simulated chargers (DEMO-001..003 send real OCPP traffic), and walks the
pages a host and a guest use: the host portal on a desktop (dashboard, Logs and "Invalid only",
Proxy, a session's live meter chart, a location with Add charger and reimbursement, the setup card),
the portal on a 390 px phone (folded menu, charger tabs), the guest flow on a phone with the
sandbox card element (landing, payment, live session, receipt) and the support assistant panel.
Nothing here touches the repository's own database.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backoffice import listen

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOST, HOST_PASSWORD = (
    "host@example.com",
    "demo-host-pass",
)  # chargers/management/commands/load_demo.py
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server(workdir: Path, port: int) -> tuple[subprocess.Popen, dict]:
    env = {
        **os.environ,
        "DEBUG": "true",
        "DATABASE_URL": f"sqlite:///{workdir / 'shots.sqlite3'}",
        "REDIS_URL": "",
        "CONN_MAX_AGE": "0",
        "OCPP_JOURNAL_DIR": str(workdir / "journal"),
    }
    manage = [sys.executable, "manage.py"]
    for command in (["migrate", "--noinput"], ["load_demo"], ["load_demo_billing"]):
        subprocess.run(manage + command, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL)
    log = open(workdir / "server.log", "w")
    process = subprocess.Popen(
        manage + ["serve", "--port", str(port), "--simulate", "3"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited, see {log.name}")
        if listen.serving("127.0.0.1", port):  # answering, not only listening
            return process, env
        time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start in 60 s")


# A free charger for the guest flow (the demo's simulated ones keep their ports busy): created at
# the demo property with a license, then run by the project's simulator without sessions of its own,
# so it starts on the guest's remote start and reports five minutes of charging every 3 seconds;
# it also presents an unknown card once, for the Logs' "Invalid only".
GUEST_CHARGER = """
import asyncio
from datetime import date, timedelta
from backoffice.models import Property
from chargers.models import Charger
from chargers.management.simulator import SimulatedCharger
prop = Property.objects.get(name="Harbour View Garage")
charger, _ = Charger.objects.get_or_create(station_id="GUEST-001", defaults={
    "property": prop, "name": "Visitor bay", "access_mode": "public",
    "license_valid_until": date.today() + timedelta(days=365)})
charger.set_ocpp_password("guest-screenshot-pass-1")
charger.save()
sim = SimulatedCharger(url="ws://127.0.0.1:%(port)d/ocpp", station_id="GUEST-001", connectors=2,
                       password="guest-screenshot-pass-1", auto_sessions=False, power_kw=11.0)
async def meter():
    await asyncio.sleep(3)
    await sim.authorize("04UNKNOWN01")  # an unknown card: the refusal "Invalid only" finds
    while True:
        await asyncio.sleep(3)
        for n, state in sim.state.items():
            if state.transaction_id is not None:
                await sim.meter_values(n, seconds=300)
async def main():
    await asyncio.gather(sim.run(), meter())
asyncio.run(main())
"""


def _guest_charger(env: dict, port: int, workdir: Path) -> subprocess.Popen:
    log = open(workdir / "guest-charger.log", "w")
    return subprocess.Popen(
        [sys.executable, "manage.py", "shell", "-c", GUEST_CHARGER % {"port": port}],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def _login(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", HOST)
    page.fill("#id_password", HOST_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def host_desktop(browser, base: str, out: Path) -> None:
    page = browser.new_page(viewport=DESKTOP)
    _login(page, base)
    page.screenshot(path=str(out / "dashboard.png"), full_page=True)
    page.goto(f"{base}/chargers/")
    page.screenshot(path=str(out / "chargers.png"), full_page=True)
    page.goto(f"{base}/chargers/DEMO-001/logs/")
    page.wait_for_selector("details.log-entry")
    page.locator("details.log-entry").first.locator("summary").click()
    page.screenshot(path=str(out / "charger-logs.png"), full_page=False)
    page.goto(f"{base}/chargers/DEMO-001/logs/?q=StartTransaction")
    page.screenshot(path=str(out / "charger-logs-search.png"), full_page=False)
    page.goto(f"{base}/chargers/GUEST-001/logs/?q=StartTransaction&invalid=on")
    page.wait_for_selector("details.log-entry")
    page.locator("details.log-entry").first.locator("summary").click()
    page.screenshot(path=str(out / "charger-logs-invalid-only.png"), full_page=False)
    page.goto(f"{base}/chargers/DEMO-001/proxy/")
    page.screenshot(path=str(out / "charger-proxy.png"), full_page=True)
    page.goto(f"{base}/chargers/DEMO-001/")
    page.screenshot(path=str(out / "charger-overview.png"), full_page=True)
    page.goto(f"{base}/tokens/")
    page.screenshot(path=str(out / "tokens.png"), full_page=True)
    page.goto(f"{base}/mobility-providers/")
    page.screenshot(path=str(out / "mobility-providers.png"), full_page=True)
    page.goto(f"{base}/sessions/")
    page.screenshot(path=str(out / "sessions.png"), full_page=True)
    first = page.locator("table a[href^='/sessions/']").first
    if first.count():
        first.click()
        page.wait_for_selector("#session-meter")
        page.screenshot(path=str(out / "session-detail.png"), full_page=True)
    page.goto(f"{base}/locations/")
    page.screenshot(path=str(out / "locations.png"), full_page=True)
    page.locator("table a[href^='/locations/'], main a[href^='/locations/']").first.click()
    page.wait_for_selector("#reimbursement")
    page.screenshot(path=str(out / "location-detail.png"), full_page=True)
    # Add charger: the setup card, with its password shown this once.
    page.click("#add-charger")
    page.fill("#id_station_id", f"SHOT-{int(time.time()) % 100000}")
    page.fill("#id_name", "Visitor bay")
    page.click("main button[type=submit]")
    page.wait_for_selector(".setup-card")
    page.screenshot(path=str(out / "charger-setup-card.png"), full_page=True)
    page.close()


def host_phone(browser, base: str, out: Path) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    _login(page, base)
    page.screenshot(path=str(out / "phone-dashboard.png"), full_page=False)
    page.click("button.menu-toggle")
    page.screenshot(path=str(out / "phone-menu-open.png"), full_page=False)
    page.goto(f"{base}/chargers/DEMO-003/")  # 2.0.1: nine tabs, scrolling sideways
    page.screenshot(path=str(out / "phone-charger-tabs.png"), full_page=False)
    page.goto(f"{base}/chargers/DEMO-001/logs/")
    page.wait_for_selector("details.log-entry")
    page.locator("details.log-entry").first.locator("summary").click()
    page.screenshot(path=str(out / "phone-charger-logs.png"), full_page=False)
    context.close()


def guest_phone(browser, base: str, out: Path) -> None:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(f"{base}/s/")
    page.screenshot(path=str(out / "guest-1-entry.png"), full_page=False)
    page.goto(f"{base}/s/GUEST-001")
    page.screenshot(path=str(out / "guest-2-landing.png"), full_page=False)
    if page.locator("#pay-start").count():
        page.check("input[name=connector][value='1']")
        page.fill("#id_email", "guest@example.com")
        page.check("input[name=agree]")
        page.click("#pay-start")
        page.wait_for_url(re.compile(r"/s/pay/[^/]+/$"))
        page.get_by_text("Sandbox card element").wait_for()
        page.fill("#sbx-card", "4242 4242 4242 4242")
        page.fill("#sbx-exp", "12/34")
        page.fill("#sbx-cvc", "123")
        page.screenshot(path=str(out / "guest-3-pay.png"), full_page=False)
        page.click("#pay-button")
        page.wait_for_url(re.compile(r"/s/session/[^/]+/$"), timeout=30_000)
        page.locator("#status", has_text="Charging").wait_for(timeout=30_000)
        page.locator("#kwh").wait_for()
        time.sleep(7)  # a few meter values from the simulated charger
        page.screenshot(path=str(out / "guest-4-session.png"), full_page=False)
        page.click("#stop-btn")
        page.locator("#receipt-link").wait_for(state="visible", timeout=30_000)
        page.click("#receipt-link")
        page.wait_for_url(re.compile(r"/s/receipt/[^/]+/$"))
        page.screenshot(path=str(out / "guest-5-receipt.png"), full_page=True)
    else:
        print(
            "GUEST-001 is not ready (see guest-charger.log): the guest payment screenshots were skipped",
            file=sys.stderr,
        )
    # The support assistant, opened from a prompt a guest meets.
    page.goto(f"{base}/s/NO-SUCH-CHARGER")
    page.get_by_role("button", name="Ask the assistant about this").first.click()
    panel = page.get_by_role("dialog", name="Support assistant")
    panel.wait_for()
    panel.get_by_role("button", name="Send").click()
    panel.locator(".sa-log > .bot").first.wait_for(timeout=20_000)
    page.screenshot(path=str(out / "assistant-panel.png"), full_page=False)
    context.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "screenshots"))
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="evportal-shots-") as tmp:
        port = args.port or _free_port()
        process, env = _server(Path(tmp), port)
        guest = _guest_charger(env, port, Path(tmp))
        base = f"http://127.0.0.1:{port}"
        try:
            time.sleep(15)  # the simulated chargers boot, authorize and start sessions
            with sync_playwright() as p:
                browser = p.chromium.launch(
                    executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
                )
                try:
                    host_desktop(browser, base, out)
                    host_phone(browser, base, out)
                    guest_phone(browser, base, out)
                finally:
                    browser.close()
        finally:
            guest.terminate()
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
    print(f"screenshots written to {out}")


if __name__ == "__main__":
    main()
