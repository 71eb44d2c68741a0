"""Filters for settings.LOGGING (no Django imports: logging is configured before the apps load)."""

from __future__ import annotations

import logging


class RefusalWithoutTraceback(logging.Filter):
    """A refused request (403 PermissionDenied, 400 SuspiciousOperation, …) is logged by Django
    at WARNING with the exception's traceback. For a refusal the line is what an operator needs:
    a traceback per admin page an agent may not open buried the real errors. 5xx keep theirs."""

    def filter(self, record: logging.LogRecord) -> bool:
        status = getattr(record, "status_code", None)
        if record.exc_info and isinstance(status, int) and status < 500:
            record.exc_info = None
            record.exc_text = None
        return True
