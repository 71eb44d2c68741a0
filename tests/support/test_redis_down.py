"""While Redis (the cache) is down or restarting, the support contact form still takes a guest's
ticket and the inbound mail hooks still attach a customer's reply; their per-client limits then
count in this process's memory and still hold."""

import pytest
from django.core import mail
from django.test import Client

from backoffice import shared_cache
from support import toolkit
from support.models import Ticket, TicketMessage
from tests.backoffice.dependencies_down import refused_redis_cache
from tests.factories import UserFactory
from tests.support.test_inbound_email import (
    MAILGUN_URL,
    SECRET,
    SIGNING_KEY,
    customer_reply,
    mailgun_fields,
    one_minute_of_the_clock,
    post_mime,
)

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _redis_down(settings):
    settings.CACHES = refused_redis_cache()
    settings.SUPPORT_INBOUND_SECRET = SECRET
    settings.MAILGUN_SIGNING_KEY = SIGNING_KEY
    settings.SUPPORT_INBOUND_EMAIL = "replies@support.example.com"
    yield
    shared_cache.forget_failure()


@pytest.fixture
def ticket(db):
    return Ticket.objects.create(
        email="guest@example.com", message="HB-9 is dead.", topic="offline"
    )


@pytest.fixture
def sent(ticket):
    agent = UserFactory(username="agent@example.com", is_staff=True, is_superuser=True)
    mail.outbox.clear()
    toolkit.ticket_reply(ticket=ticket, user=agent, body="Could you tell us when it happened?")
    return mail.outbox[-1]


def replies(ticket) -> int:
    return ticket.thread.filter(direction=TicketMessage.Direction.IN).count()


def test_the_contact_form_takes_the_ticket_and_still_limits(monkeypatch):
    monkeypatch.setattr("support.views.pages._window", lambda: 42)  # no window boundary mid-test
    browser = Client(REMOTE_ADDR="10.8.0.1")
    for n in range(5):
        answer = browser.post(
            "/support/contact/", {"topic": "other", "message": f"m{n}", "email": "a@b.co"}
        )
        assert answer.status_code == 302 and "/support/contact/sent/" in answer["Location"]
    answer = browser.post(
        "/support/contact/", {"topic": "other", "message": "m", "email": "a@b.co"}
    )
    assert answer.status_code == 429
    assert Ticket.objects.filter(email="a@b.co").count() == 5


def test_the_mime_hook_attaches_the_reply_and_still_limits(settings, ticket, sent):
    browser = Client(REMOTE_ADDR="10.8.0.2")
    answer = post_mime(customer_reply(sent), client=browser)
    assert answer.status_code == 200 and answer.json() == {"result": "attached"}
    assert replies(ticket) == 1
    settings.SUPPORT_INBOUND_LIMIT_PER_MIN = 3
    with one_minute_of_the_clock():
        codes = [post_mime(b"", secret="wrong", client=browser).status_code for _ in range(4)]
    assert codes == [403, 403, 403, 429]


def test_the_mailgun_hook_attaches_the_reply_once(ticket, sent):
    browser = Client(REMOTE_ADDR="10.8.0.3")
    fields = mailgun_fields(sent, token="tok-redis-down")
    answer = browser.post(MAILGUN_URL, fields)
    assert answer.status_code == 200 and answer.json() == {"result": "attached"}
    assert replies(ticket) == 1
    # The same signed token replayed is still refused within the process.
    assert browser.post(MAILGUN_URL, fields).status_code == 403
    assert replies(ticket) == 1
