"""Hostile inbound mail: a forged Mailgun signature with non-ASCII characters, and HTML bodies
built to make the text extraction slow or refuse them. Never a 500 or a 400 the mail system
would retry for days; an authenticated mail is answered 200 and kept as text."""

from __future__ import annotations

import time
from email.message import EmailMessage

import pytest
from django.test import Client

from support.inbound import html_to_text
from support.models import QuarantinedEmail, TicketMessage
from tests.support.test_inbound_email import (  # noqa: F401 (fixtures)
    MAILGUN_URL,
    agent,
    configured,
    inbound,
    mailgun_fields,
    post_mime,
    sent,
    ticket,
)

pytestmark = pytest.mark.django_db


def test_a_forged_mailgun_signature_with_non_ascii_characters_is_refused(
    ticket,  # noqa: F811
    sent,  # noqa: F811
):
    fields = mailgun_fields(sent)
    fields["signature"] = "\u00e9" * 64  # hmac.compare_digest refused non-ASCII str: a 500
    response = Client().post(MAILGUN_URL, fields)
    assert response.status_code == 403 and response.json() == {"error": "forbidden"}
    assert inbound(ticket) == [] and not QuarantinedEmail.objects.exists()


def _html_reply(sent, markup: str) -> bytes:  # noqa: F811 (the fixture's name)
    reply = EmailMessage()
    reply["From"] = "guest@example.com"
    reply["Subject"] = f"Re: {sent.subject}"
    reply["Message-ID"] = "<html-bomb@mail.example.com>"
    reply["In-Reply-To"] = sent.extra_headers["Message-ID"]
    reply.set_content(markup, subtype="html")
    return bytes(reply)


def test_an_html_reply_of_unclosed_tags_lands_on_the_ticket(ticket, sent):  # noqa: F811
    # strip_tags raised SuspiciousOperation on it: a 400, which the mail system retries.
    markup = "Still broken " + "<script" * 2_000
    response = post_mime(_html_reply(sent, markup))
    assert response.status_code == 200 and response.json() == {"result": "attached"}
    [message] = inbound(ticket)
    assert message.body.startswith("Still broken")
    assert TicketMessage.objects.filter(message_id="<html-bomb@mail.example.com>").exists()


@pytest.mark.parametrize(
    "markup",
    ["<script" * 14_000, '<div class="' * 8_000, "<blockquote" * 9_000, '<a b="' * 16_000],
    ids=["script", "div-class", "blockquote", "attribute"],
)
def test_html_to_text_reads_100_kb_of_unclosed_tags_at_once(markup):
    started = time.monotonic()
    text = html_to_text(markup)
    # Lazy patterns and html.parser took 5 to 90 s on these, strip_tags then refused them.
    assert time.monotonic() - started < 2
    assert isinstance(text, str)


def test_html_to_text_still_keeps_the_visible_text_only():
    markup = (
        "<html><head><title>T</title><style>p{}</style></head><body><p>One<br/>two</p>"
        "<blockquote>a<blockquote>b</blockquote>c</blockquote><p>three &lt;x&gt;</p>"
        '<!-- note --><div class="gmail_quote">On Mon, Support wrote: old</div></body></html>'
    )
    assert html_to_text(markup) == "One\ntwo\nthree <x>"
