"""tests/axe.py finds what axe_playwright_python finds, on a document open before its init script
and on one loaded after it, in real Chromium (sync and async Playwright)."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from tests.axe import AsyncAxe, Axe

pytestmark = [pytest.mark.browser]

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu"]
# An image without alt text (critical), a button without a name (critical), a form field without
# a label (critical) and a heading order skipped (moderate: left out by the tests' filter); one
# more image outside <main>, which a check of <main> alone does not see.
PAGE = """<!doctype html><html lang="en"><head><title>t</title></head><body>
<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><main>
<h1>Title</h1><h4>Skipped</h4><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw="><button></button>
<input type="text"></main></body></html>"""


def _found(results) -> list:
    return sorted((v["id"], v["impact"], len(v["nodes"])) for v in results.response["violations"])


def _serve(route) -> None:
    route.fulfill(status=200, content_type="text/html", body=PAGE)


@contextlib.asynccontextmanager
async def _async_page(serve):
    """A page of a fresh Chromium whose requests to http://axe.test/ `serve` answers."""
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = await browser.new_page()
            await page.route("http://axe.test/**", serve)
            yield page
        finally:
            await browser.close()


def test_the_checks_are_axe_playwright_pythons_before_and_after_the_init_script():
    from axe_playwright_python.sync_playwright import Axe as LibraryAxe
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page()
            page.route("http://axe.test/**", _serve)
            page.goto("http://axe.test/first")
            open_before = Axe().run(page)  # the document was open: axe given to it as before
            page.goto("http://axe.test/second")
            # The new document has axe from the context's init script, before any check.
            assert page.evaluate("typeof window.axe") == "object"
            from_init_script = Axe().run(page)
            page.goto("http://axe.test/third")
            library = LibraryAxe().run(page)
            found = _found(library)
            assert {"image-alt", "button-name", "label"} <= {name for name, _, _ in found}
            assert _found(open_before) == _found(from_init_script) == found
            # A context given to axe.run (admin home's check of one region) is passed on.
            only_main = Axe().run(page, context="main")
            assert _found(only_main) == _found(LibraryAxe().run(page, context="main")) != found
        finally:
            browser.close()


async def test_the_async_checks_are_axe_playwright_pythons():
    from axe_playwright_python.async_playwright import Axe as LibraryAxe

    async def serve(route) -> None:
        await route.fulfill(status=200, content_type="text/html", body=PAGE)

    async with _async_page(serve) as page:
        await page.goto("http://axe.test/first")
        open_before = await AsyncAxe().run(page)
        await page.goto("http://axe.test/second")
        assert await page.evaluate("typeof window.axe") == "object"
        from_init_script = await AsyncAxe().run(page)
        library = await LibraryAxe().run(page)
        assert _found(open_before) == _found(from_init_script) == _found(library) != []


async def test_a_check_of_a_document_still_loading_waits_for_its_load():
    """A check right after a click that navigates can land in the new document while it is being
    parsed (in CI: axe failed on a document without documentElement). The check waits for the
    load, so it sees the whole page: here the parser is held on a script until the check has
    started, and the violations after the script are found."""
    held = asyncio.Event()
    page_html = PAGE.replace("<main>", '<script src="http://axe.test/held.js"></script><main>')

    async def serve(route) -> None:
        if route.request.url.endswith("/held.js"):
            await held.wait()
            await route.fulfill(status=200, content_type="text/javascript", body="")
        else:
            body = page_html if route.request.url.endswith("/second") else PAGE
            await route.fulfill(status=200, content_type="text/html", body=body)

    async with _async_page(serve) as page:
        await page.goto("http://axe.test/first")
        await AsyncAxe().run(page)  # the context now carries the init script
        await page.goto("http://axe.test/second", wait_until="commit")
        assert await page.evaluate("document.readyState") == "loading"
        check = asyncio.ensure_future(AsyncAxe().run(page))
        await asyncio.sleep(0.5)  # the check has started and waits (not a bound on time)
        held.set()
        found = _found(await check)
        assert {"image-alt", "button-name", "label"} <= {name for name, _, _ in found}
