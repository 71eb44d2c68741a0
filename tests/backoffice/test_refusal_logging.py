"""A refused request is one log line; a server error keeps its traceback (settings.LOGGING)."""

import logging
import sys

import pytest
from django.contrib.auth import get_user_model


@pytest.mark.django_db
def test_an_agent_refused_an_admin_page_is_one_line_without_a_traceback(client, caplog):
    agent = get_user_model().objects.create_user("agent", "agent@example.com", "x", is_staff=True)
    client.force_login(agent)  # staff, but without the permission to view charges
    with caplog.at_level(logging.WARNING, logger="django.request"):
        response = client.get("/admin/billing/sessioncharge/")
    assert response.status_code == 403
    (record,) = [r for r in caplog.records if r.name == "django.request"]
    assert record.getMessage() == "Forbidden (Permission denied): /admin/billing/sessioncharge/"
    assert record.exc_info is None and "Traceback" not in caplog.text


def test_a_server_error_keeps_its_traceback():
    logger = logging.getLogger("django.request")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        error = logger.makeRecord(
            "django.request", logging.ERROR, __file__, 1, "Internal Server Error: /x", (), None
        )
        error.exc_info, error.status_code = sys.exc_info(), 500
    assert logger.filter(error) and error.exc_info is not None
