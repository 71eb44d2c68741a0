"""Make Playwright pages report Content-Security-Policy violations, so a browser test can fail on them.

Two sources, since either alone can miss one: the page's `securitypolicyviolation` event
(reported through an exposed function, which survives navigations) and Chromium's console
error "Refused to ... because it violates the following Content Security Policy directive".
"""

from __future__ import annotations

from typing import Any

_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolation(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} on ${e.documentURI}` +
    (e.sourceFile ? ` (${e.sourceFile}:${e.lineNumber})` : ""));
});
"""


def _is_csp_message(text: str) -> bool:
    return "Content Security Policy" in text or "Content-Security-Policy" in text


def watch_csp(page: Any, violations: list[str]) -> list[str]:
    """Collect the CSP violations of a sync-API `page` into `violations` and return it."""
    page.expose_function("__cspViolation", lambda text: violations.append(text))
    page.add_init_script(_LISTENER)
    page.on(
        "console",
        lambda msg: (
            violations.append(msg.text)
            if msg.type == "error" and _is_csp_message(msg.text)
            else None
        ),
    )
    return violations


async def awatch_csp(page: Any, violations: list[str]) -> list[str]:
    """The same for an async-API `page`."""
    await page.expose_function("__cspViolation", lambda text: violations.append(text))
    await page.add_init_script(_LISTENER)
    page.on(
        "console",
        lambda msg: (
            violations.append(msg.text)
            if msg.type == "error" and _is_csp_message(msg.text)
            else None
        ),
    )
    return violations
