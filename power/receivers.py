"""Receivers of chargers' signals: a session started or finished → recompute its site soon."""

from __future__ import annotations

from typing import Any

from chargers import signals


def session_changed(sender: Any = None, session_id: int | None = None, **kwargs: Any) -> None:
    from .services import mark_dirty

    if session_id is not None:
        mark_dirty(session_id=session_id)


def connect() -> None:
    signals.session_started.connect(session_changed, dispatch_uid="power.session_started")
    signals.session_finished.connect(session_changed, dispatch_uid="power.session_finished")
