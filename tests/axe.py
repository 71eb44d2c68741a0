"""axe-core in the browser tests, as axe_playwright_python runs it (the same axe.min.js, options
and results), with the script sent to the browser once per browser context instead of once per
check.

axe_playwright_python's `Axe().run(page)` evaluates the whole 570 KB script in the page before
every check: JSON through the Playwright driver and the browser's DevTools pipe, parsed again by
Chromium's browser and renderer processes (the every-page test checks 67 pages per viewport). Here
the script is added to the context as an init script (`add_init_script`, one transfer): every
document the context loads afterwards has axe before its own scripts run, and a document that was
already open is given it as before. The checks themselves are unchanged.
"""

from __future__ import annotations

import json
import weakref

from axe_playwright_python.base import AXE_SCRIPT, AxeResults
from axe_playwright_python.sync_playwright import DEFAULT_OPTIONS

# None when the document has no axe yet (loaded before the init script was added). A check
# called right after a click that navigates can land in the new document while it is still
# being parsed (no documentElement yet: axe fails); it waits for the document's load first, as
# the old per-check injection of 570 KB did by taking that long.
_RUN = (
    "(async () => {"
    " if (typeof window.axe === 'undefined') return null;"
    " if (document.readyState !== 'complete')"
    "  await new Promise(done => window.addEventListener('load', done, {once: true}));"
    " return await window.axe.run(%s); })()"
)

# The contexts (sync or async) that already carry the init script.
_preloaded: weakref.WeakSet = weakref.WeakSet()


def _command(context, options) -> str:
    """axe.run's arguments written as axe_playwright_python writes them."""
    args = ([repr(context)] if context else []) + ([json.dumps(options)] if options else [])
    return _RUN % ",".join(args)


class Axe:
    """Drop-in for axe_playwright_python.sync_playwright.Axe."""

    def run(self, page, context=None, options: dict | None = DEFAULT_OPTIONS) -> AxeResults:
        if page.context not in _preloaded:
            page.context.add_init_script(script=AXE_SCRIPT)
            _preloaded.add(page.context)
        command = _command(context, options)
        response = page.evaluate(command)
        if response is None:
            page.evaluate(AXE_SCRIPT)
            response = page.evaluate(command)
        return AxeResults(response)


class AsyncAxe:
    """Drop-in for axe_playwright_python.async_playwright.Axe."""

    async def run(self, page, context=None, options: dict | None = DEFAULT_OPTIONS) -> AxeResults:
        if page.context not in _preloaded:
            await page.context.add_init_script(script=AXE_SCRIPT)
            _preloaded.add(page.context)
        command = _command(context, options)
        response = await page.evaluate(command)
        if response is None:
            await page.evaluate(AXE_SCRIPT)
            response = await page.evaluate(command)
        return AxeResults(response)
