"""Wiring you can follow: environment reads in one place, no signal used as a call that returns data.

Scans the product code (not tests, bench or the virtualenv) with the AST.
"""

from __future__ import annotations

import ast
import functools
import gc
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIP = {"tests", "bench", ".venv", "node_modules", "migrations"}


# Parsed once per worker: three tests read the same 450 modules (2.4 CPU-s each parse).
@functools.cache
def product_modules() -> tuple[tuple[Path, ast.Module], ...]:
    modules = []
    # Garbage an earlier test left is collected here, not inside ast.parse: CPython 3.11's
    # parser is not reentrant, and a finalizer that logs a traceback parses source lines
    # (traceback's caret anchors), which failed a CI run with "AST constructor recursion
    # depth mismatch".
    gc.collect()
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if SKIP & set(relative.parts):
            continue
        modules.append((relative, ast.parse(path.read_text(), filename=str(path))))
    return tuple(modules)


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def test_environment_is_read_only_through_backoffice_env():
    reads = []
    for path, tree in product_modules():
        if path == Path("backoffice/env.py"):
            continue
        for node in ast.walk(tree):
            name = _dotted(node) if isinstance(node, ast.Attribute) else ""
            if name in ("os.environ", "os.getenv", "os.environb"):
                reads.append(f"{path}:{node.lineno}")
            if isinstance(node, ast.ImportFrom) and node.module == "os":
                if {a.name for a in node.names} & {"environ", "getenv", "environb"}:
                    reads.append(f"{path}:{node.lineno}")
    # The one write allowed: pointing Django at its settings before it starts.
    starters = {"manage.py", "portal/asgi.py", "portal/celery.py"}
    assert [r for r in reads if r.split(":")[0] not in starters] == []


def test_no_signal_is_asked_for_an_answer():
    """A signal's receivers' return values are never collected: use backoffice.providers."""
    signals: set[str] = set()
    modules = product_modules()
    for _path, tree in modules:
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Assign)
                and isinstance(node.value, ast.Call)
                and _dotted(node.value.func) in ("Signal", "dispatch.Signal")
            ):
                signals |= {t.id for t in node.targets if isinstance(t, ast.Name)}
    assert {"session_started", "session_finished"} <= signals  # the scan finds them
    used = []
    for path, tree in modules:
        parents = {
            child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("send", "send_robust")
                and _dotted(node.func.value).split(".")[-1] in signals
                and not isinstance(parents.get(node), (ast.Expr, ast.Lambda))
            ):
                used.append(f"{path}:{node.lineno}")
    assert used == []


# Receivers chargers/ still connects with @receiver at import (its own wiring is outside
# issue 50's item 5 so far); portal/db_pool.py wires Django's connection_created before apps load.
RECEIVERS_WIRED_ELSEWHERE = {
    "chargers/sessions/reservations.py",
    "chargers/devices/local_list.py",
    "portal/db_pool.py",
}


def signal_wiring(tree: ast.Module) -> list[int]:
    """Lines that connect a receiver: `@receiver(...)` or `<signal>.connect(..., dispatch_uid=)`."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for decorator in node.decorator_list:
                call = decorator.func if isinstance(decorator, ast.Call) else decorator
                if isinstance(call, ast.Name) and call.id == "receiver":
                    found.append(decorator.lineno)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "connect"
            and any(k.arg == "dispatch_uid" for k in node.keywords)
        ):
            found.append(node.lineno)
    return found


def test_signal_wiring_is_found():
    tree = ast.parse(
        "@receiver(done)\ndef a(sender, **kw): ...\n"
        "done.connect(a, dispatch_uid='x')\n"
        "client.connect()\n"
    )
    assert signal_wiring(tree) == [1, 3]


def test_every_app_wires_its_signals_in_its_app_config():
    """Signals are wired one way (issue 50 item 5): each app's AppConfig.ready() connects its
    receivers (in receivers.py) with a dispatch_uid; no @receiver, no connect() elsewhere."""
    found = [
        f"{path}:{line}"
        for path, tree in product_modules()
        if path.name != "apps.py" and path.as_posix() not in RECEIVERS_WIRED_ELSEWHERE
        for line in signal_wiring(tree)
    ]
    assert found == [], "connect receivers in the app's AppConfig.ready(): " + ", ".join(found)
