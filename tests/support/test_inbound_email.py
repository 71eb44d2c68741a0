"""Customers' email replies land on their ticket: raw MIME from the mail server, Mailgun's route."""

from __future__ import annotations

import hashlib
import hmac
import time
from datetime import timedelta
from email.message import EmailMessage

import pytest
import time_machine
from auditlog.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from support import toolkit
from support.inbound import MAX_BODY_CHARS, html_to_text, strip_quoted
from support.models import QuarantinedEmail, Ticket, TicketMessage
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SECRET = "mail-hook-secret-0123456789"
SIGNING_KEY = "key-mailgun-signing-abcdef"
MIME_URL = "/support/inbound/mime/"
MAILGUN_URL = "/support/inbound/mailgun/"


@pytest.fixture(autouse=True)
def configured(settings):
    settings.SUPPORT_INBOUND_SECRET = SECRET
    settings.MAILGUN_SIGNING_KEY = SIGNING_KEY
    settings.SUPPORT_INBOUND_EMAIL = "replies@support.example.com"
    cache.clear()  # rate-limit windows and used Mailgun tokens
    return settings


@pytest.fixture
def agent(db):
    return UserFactory(username="agent@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def ticket(db):
    return Ticket.objects.create(
        email="Guest@Example.com", message="The charger at HB-9 is dead.", topic="offline"
    )


@pytest.fixture
def sent(ticket, agent):
    """The reply the agent really sent, as the customer's mail client received it."""
    mail.outbox.clear()
    toolkit.ticket_reply(ticket=ticket, user=agent, body="Could you tell us when it happened?")
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.WAITING
    return mail.outbox[-1]


def customer_reply(
    sent,
    *,
    sender: str = "guest@example.com",
    text: str = "It happened at 10:42, thanks.",
    message_id: str = "<reply-1@mail.example.com>",
    threaded: bool = True,
    subject: str | None = None,
) -> bytes:
    """A reply as a mail client writes it: threaded on the email it answers, quoting it."""
    reply = EmailMessage()
    reply["From"] = f"Guest <{sender}>"
    reply["To"] = sent.reply_to[0]
    reply["Subject"] = subject if subject is not None else f"Re: {sent.subject}"
    reply["Message-ID"] = message_id
    if threaded:
        reply["In-Reply-To"] = sent.extra_headers["Message-ID"]
        reply["References"] = sent.extra_headers["Message-ID"]
    quoted = "\n".join(f"> {line}" for line in sent.body.splitlines())
    reply.set_content(
        f"{text}\n\nOn Mon, 3 Jun 2026 at 10:50, Support <{sent.from_email}> wrote:\n{quoted}\n"
    )
    return bytes(reply)


def post_mime(raw: bytes, secret: str | None = SECRET, client: Client | None = None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {secret}"} if secret is not None else {}
    return (client or Client()).post(MIME_URL, raw, content_type="message/rfc822", **headers)


def mailgun_fields(
    sent,
    *,
    timestamp: int | None = None,
    token: str = "tok-1",
    key: str = SIGNING_KEY,
    sender: str = "guest@example.com",
    message_id: str = "<mg-1@mail.example.com>",
) -> dict:
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = hmac.new(key.encode(), f"{stamp}{token}".encode(), hashlib.sha256).hexdigest()
    return {
        "sender": sender,
        "from": f"Guest <{sender}>",
        "recipient": "replies@support.example.com",
        "subject": f"Re: {sent.subject}",
        "body-plain": "Yes, at 10:42.\n\n> Could you tell us when it happened?",
        "stripped-text": "Yes, at 10:42.",
        "Message-Id": message_id,
        "In-Reply-To": sent.extra_headers["Message-ID"],
        "References": sent.extra_headers["Message-ID"],
        "timestamp": stamp,
        "token": token,
        "signature": signature,
    }


def inbound(ticket) -> list[TicketMessage]:
    return list(ticket.thread.filter(direction=TicketMessage.Direction.IN))


# -- the raw-MIME hook ----------------------------------------------------------------------------


def test_a_reply_to_the_agents_email_lands_on_the_ticket_without_the_quote_and_reopens_it(
    ticket, sent, agent
):
    assert sent.reply_to == [
        "replies@support.example.com"
    ]  # where the customer's client sends the reply
    response = post_mime(customer_reply(sent))
    assert response.status_code == 200 and response.json() == {"result": "attached"}
    [message] = inbound(ticket)
    assert message.body == "It happened at 10:42, thanks."  # the quoted question is not repeated
    assert (
        message.from_email == "guest@example.com"
        and message.in_reply_to == sent.extra_headers["Message-ID"]
    )
    assert message.message_id == "<reply-1@mail.example.com>"
    ticket.refresh_from_db()
    assert ticket.status == Ticket.Status.OPEN  # back with an agent
    # Audit-logged like the toolkit's writes: the message created and the status change.
    assert LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(TicketMessage),
        object_pk=str(message.pk),
        action=LogEntry.Action.CREATE,
    ).exists()
    change = LogEntry.objects.filter(
        content_type=ContentType.objects.get_for_model(Ticket),
        object_pk=str(ticket.pk),
        action=LogEntry.Action.UPDATE,
    ).latest("timestamp")
    assert change.changes_dict["status"] == ["waiting", "open"]
    # The agent reads it in the ticket's thread in the admin.
    client = Client()
    client.force_login(agent)
    page = client.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    assert "It happened at 10:42, thanks." in page and "Received from the customer" in page


def test_the_assigned_agent_is_told_the_customer_answered(
    ticket, sent, agent, django_capture_on_commit_callbacks
):
    mail.outbox.clear()
    with django_capture_on_commit_callbacks(execute=True):
        post_mime(customer_reply(sent))
    [notice] = mail.outbox
    assert notice.to == ["agent@example.com"] and ticket.reference in notice.subject
    assert "It happened at 10:42, thanks." in notice.body


def test_the_next_agent_reply_threads_on_the_customers_reply(ticket, sent, agent):
    post_mime(customer_reply(sent))
    toolkit.ticket_reply(ticket=ticket, user=agent, body="Thanks, we reset it.")
    assert mail.outbox[-1].extra_headers["In-Reply-To"] == "<reply-1@mail.example.com>"


def test_a_redelivered_reply_adds_nothing(ticket, sent):
    raw = customer_reply(sent)
    assert post_mime(raw).json() == {"result": "attached"}
    Ticket.objects.filter(pk=ticket.pk).update(status=Ticket.Status.RESOLVED)
    again = post_mime(raw)
    assert again.status_code == 200 and again.json() == {"result": "not attached"}
    assert len(inbound(ticket)) == 1
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.RESOLVED  # not reopened twice


@pytest.mark.parametrize("secret", ["wrong-secret", "", None])
def test_a_wrong_or_missing_secret_is_refused_and_stores_nothing(ticket, sent, secret):
    before = (TicketMessage.objects.count(), QuarantinedEmail.objects.count())
    response = post_mime(customer_reply(sent), secret=secret)
    assert response.status_code == 403
    assert (TicketMessage.objects.count(), QuarantinedEmail.objects.count()) == before
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.WAITING


def test_the_hook_needs_the_rfc822_content_type(ticket, sent):
    response = Client().post(
        MIME_URL,
        customer_reply(sent),
        content_type="text/plain",
        HTTP_AUTHORIZATION=f"Bearer {SECRET}",
    )
    assert response.status_code == 415 and inbound(ticket) == []


def test_without_configuration_both_hooks_answer_404(settings, ticket, sent):
    settings.SUPPORT_INBOUND_SECRET = ""
    settings.MAILGUN_SIGNING_KEY = ""
    assert post_mime(customer_reply(sent), secret="").status_code == 404
    assert Client().post(MAILGUN_URL, mailgun_fields(sent)).status_code == 404
    assert inbound(ticket) == []


def test_the_hooks_need_no_csrf_token(ticket, sent):
    strict = Client(enforce_csrf_checks=True)
    assert post_mime(customer_reply(sent), client=strict).status_code == 200
    assert strict.post(MAILGUN_URL, mailgun_fields(sent)).status_code == 200


def test_a_reply_from_another_address_is_quarantined_not_attached(ticket, sent, agent):
    response = post_mime(
        customer_reply(sent, sender="mallory@evil.example", text="Refund me to IBAN X")
    )
    assert response.status_code == 200 and response.json() == {"result": "not attached"}  # no retry
    assert inbound(ticket) == []
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.WAITING
    held = QuarantinedEmail.objects.get()
    assert (held.ticket, held.from_email, held.reason) == (
        ticket,
        "mallory@evil.example",
        "sender_mismatch",
    )
    # An agent sees it in the admin, checks it, and may attach it; then it is on the thread.
    client = Client()
    client.force_login(agent)
    page = client.get(f"/admin/support/ticket/{ticket.pk}/change/").content.decode()
    assert f"/admin/support/quarantinedemail/?ticket__id__exact={ticket.pk}" in page
    assert "1 email(s) from another address name this ticket" in page
    listing = client.get(
        f"/admin/support/quarantinedemail/?ticket__id__exact={ticket.pk}"
    ).content.decode()
    assert "mallory@evil.example" in listing
    response = client.post(
        "/admin/support/quarantinedemail/",
        {"action": "attach_to_ticket", "_selected_action": [held.pk]},
    )
    assert response.status_code == 302
    [message] = inbound(ticket)
    assert message.body == "Refund me to IBAN X" and message.from_email == "mallory@evil.example"
    held.refresh_from_db()
    assert held.attached_message == message and held.attached_by == agent
    ticket.refresh_from_db()
    assert (
        ticket.status == Ticket.Status.OPEN
        and "Attached an email from mallory@evil.example" in ticket.agent_notes
    )
    # Redelivered after that: still nothing new.
    post_mime(customer_reply(sent, sender="mallory@evil.example", text="Refund me to IBAN X"))
    assert len(inbound(ticket)) == 1 and QuarantinedEmail.objects.count() == 1


def test_a_mail_that_names_no_ticket_is_dropped(ticket, sent):
    raw = customer_reply(sent, threaded=False, subject="Hello there")
    assert post_mime(raw).json() == {"result": "not attached"}
    assert inbound(ticket) == [] and QuarantinedEmail.objects.count() == 0


def test_a_reply_without_thread_headers_is_matched_by_the_reference_in_its_subject(ticket, sent):
    raw = customer_reply(
        sent, threaded=False, subject=f"Re: your request #{ticket.reference.lower()}"
    )
    assert post_mime(raw).json() == {"result": "attached"}
    assert len(inbound(ticket)) == 1


def test_a_subject_match_from_another_sender_is_not_attached(ticket, sent):
    raw = customer_reply(
        sent,
        threaded=False,
        sender="other@example.com",
        subject=f"Re: your request #{ticket.reference}",
    )
    assert post_mime(raw).json() == {"result": "not attached"}
    assert inbound(ticket) == [] and QuarantinedEmail.objects.get().ticket == ticket


def test_the_thread_headers_win_over_a_reference_in_the_subject(ticket, sent):
    other = Ticket.objects.create(email="guest@example.com", message="Another problem.")
    raw = customer_reply(sent, subject=f"Re: your request #{other.reference}")
    post_mime(raw)
    assert len(inbound(ticket)) == 1 and inbound(other) == []


def test_a_huge_body_with_nul_bytes_is_stored_capped_and_clean(ticket, sent):
    reply = EmailMessage()
    reply["From"] = "guest@example.com"
    reply["To"] = sent.reply_to[0]
    reply["Subject"] = f"Re: {sent.subject}\x00"
    reply["Message-ID"] = "<huge@mail.example.com>"
    reply["In-Reply-To"] = sent.extra_headers["Message-ID"]
    reply.set_content("Here is the log\x00:\n" + "x" * 3_000_000)
    raw = bytes(reply)
    assert len(raw) > 3_000_000  # over Django's DATA_UPLOAD_MAX_MEMORY_SIZE
    response = post_mime(raw)
    assert response.status_code == 200 and response.json() == {"result": "attached"}
    [message] = inbound(ticket)
    assert len(message.body) == MAX_BODY_CHARS and message.body.startswith("Here is the log:\n")
    assert "\x00" not in message.body and "\x00" not in message.subject


def test_an_html_only_reply_keeps_the_text_and_drops_the_quote(ticket, sent):
    reply = EmailMessage()
    reply["From"] = "guest@example.com"
    reply["Subject"] = f"Re: {sent.subject}"
    reply["Message-ID"] = "<html@mail.example.com>"
    reply["In-Reply-To"] = sent.extra_headers["Message-ID"]
    reply.set_content(
        '<div>It was at <b>10:42</b> &amp; raining.</div><div class="gmail_quote">On Mon, Support '
        "wrote:<blockquote>Could you tell us when it happened?</blockquote></div>",
        subtype="html",
    )
    post_mime(bytes(reply))
    assert inbound(ticket)[0].body == "It was at 10:42 & raining."


def one_minute_of_the_clock() -> time_machine.travel:
    """The clock stopped 20 s into the next minute: the hooks count per minute of the clock
    (`support.views.inbound`), so a test's posts all fall in one window, wherever the real clock
    is (a minute that began mid-test started the count again)."""
    start = (timezone.now() + timedelta(minutes=1)).replace(second=20, microsecond=0)
    return time_machine.travel(start, tick=False)


def test_the_hooks_are_rate_limited(settings, ticket, sent):
    settings.SUPPORT_INBOUND_LIMIT_PER_MIN = 2
    with one_minute_of_the_clock():
        codes = [post_mime(b"", secret="wrong").status_code for _ in range(3)]
        assert codes == [403, 403, 429]
        assert post_mime(customer_reply(sent)).status_code == 429 and inbound(ticket) == []


# -- Mailgun's inbound route ----------------------------------------------------------------------


def test_a_mailgun_reply_with_a_valid_signature_lands_on_the_ticket(ticket, sent):
    response = Client().post(MAILGUN_URL, mailgun_fields(sent))
    assert response.status_code == 200 and response.json() == {"result": "attached"}
    [message] = inbound(ticket)
    assert message.body == "Yes, at 10:42." and message.message_id == "<mg-1@mail.example.com>"
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.OPEN


def test_a_mailgun_post_signed_with_another_key_is_refused_and_stores_nothing(ticket, sent):
    response = Client().post(MAILGUN_URL, mailgun_fields(sent, key="not-the-key"))
    assert (
        response.status_code == 403
        and inbound(ticket) == []
        and QuarantinedEmail.objects.count() == 0
    )


def test_a_mailgun_post_with_a_tampered_signature_is_refused(ticket, sent):
    fields = mailgun_fields(sent)
    fields["signature"] = fields["signature"][:-1] + (
        "0" if fields["signature"][-1] != "0" else "1"
    )
    assert Client().post(MAILGUN_URL, fields).status_code == 403 and inbound(ticket) == []


def test_a_stale_mailgun_timestamp_is_refused(ticket, sent):
    fields = mailgun_fields(
        sent, timestamp=int(time.time()) - 3600
    )  # correctly signed, an hour old
    assert Client().post(MAILGUN_URL, fields).status_code == 403 and inbound(ticket) == []


def test_a_replayed_mailgun_token_is_refused_even_with_other_fields(ticket, sent):
    assert Client().post(MAILGUN_URL, mailgun_fields(sent)).status_code == 200
    # The signature covers timestamp and token only: the same three with new content must not pass.
    replay = {
        **mailgun_fields(sent),
        "Message-Id": "<forged@mail.example.com>",
        "stripped-text": "Forged.",
    }
    assert Client().post(MAILGUN_URL, replay).status_code == 403
    assert [m.body for m in inbound(ticket)] == ["Yes, at 10:42."]


def test_a_mailgun_redelivery_with_a_new_token_adds_nothing(ticket, sent):
    assert Client().post(MAILGUN_URL, mailgun_fields(sent, token="tok-1")).json() == {
        "result": "attached"
    }
    again = Client().post(MAILGUN_URL, mailgun_fields(sent, token="tok-2"))
    assert again.status_code == 200 and again.json() == {"result": "not attached"}
    assert len(inbound(ticket)) == 1


def test_a_mailgun_reply_from_another_sender_is_quarantined(ticket, sent):
    response = Client().post(MAILGUN_URL, mailgun_fields(sent, sender="mallory@evil.example"))
    assert response.status_code == 200 and inbound(ticket) == []
    assert QuarantinedEmail.objects.get().transport == "mailgun"


# -- the text a reply keeps ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, own",
    [
        ("Thanks!\n\nOn Mon, 3 Jun 2026 at 10:42, Support <s@x.com> wrote:\n> old", "Thanks!"),
        (
            "Thanks!\nOn Mon, 3 Jun 2026 at 10:42, Support Team <support@example.com>\nwrote:\n> old",
            "Thanks!",
        ),
        ("Fixed.\n\n-----Original Message-----\nFrom: Support\nSent: Monday\nold", "Fixed."),
        (
            "Fixed.\n\nFrom: Support <s@x.com>\nSent: Monday, 3 June 2026 10:42\nTo: me\nold",
            "Fixed.",
        ),
        ("Fixed.\n-- \nJane, sent from my phone", "Fixed."),
        ("> only a quote", "> only a quote"),  # nothing of their own: keep it all, nothing lost
        ("Answer one\n> q2\nAnswer two", "Answer one\nAnswer two"),
    ],
)
def test_strip_quoted_keeps_the_customers_own_words(text, own):
    assert strip_quoted(text) == own


def test_html_to_text_drops_scripts_and_quotes():
    assert (
        html_to_text("<p>Hi&nbsp;there</p><script>x()</script><blockquote>old</blockquote>")
        == "Hi\xa0there"
    )


def test_erasing_the_customer_erases_their_replies_and_their_quarantined_mail(ticket, sent, agent):
    from decimal import Decimal

    from billing.models import Payment
    from tests.factories import OrganizationFactory

    Payment.objects.create(
        organization=OrganizationFactory(),
        email="guest@example.com",
        currency="EUR",
        amount_held=Decimal("20"),
        amount_captured=Decimal("3"),
        reference="pi_in1",
        status="captured",
        card_last4="4242",
    )
    post_mime(customer_reply(sent, text="My name is Ann Guest, flat 4B."))
    someone_else = Ticket.objects.create(email="other@example.com", message="Mine.")
    post_mime(
        customer_reply(
            sent,
            threaded=False,
            message_id="<reply-2@mail.example.com>",
            subject=f"Re: your request #{someone_else.reference}",
            text="Ann again, 4B.",
        )
    )
    assert QuarantinedEmail.objects.filter(from_email="guest@example.com").count() == 1
    assert toolkit.ticket_verify_identity(ticket=ticket, user=agent, card_last4="4242")
    toolkit.ticket_erase_customer(ticket=ticket, user=agent)
    assert not TicketMessage.objects.filter(body__icontains="4B").exists()
    assert not TicketMessage.objects.filter(from_email__iexact="guest@example.com").exists()
    assert not TicketMessage.objects.filter(to_email__iexact="guest@example.com").exists()
    assert QuarantinedEmail.objects.count() == 0


def test_a_mailgun_post_too_large_to_read_is_refused_without_retry(ticket, sent):
    fields = {**mailgun_fields(sent), "body-plain": "x" * 3_000_000, "stripped-text": ""}
    response = Client().post(MAILGUN_URL, fields)  # multipart, over DATA_UPLOAD_MAX_MEMORY_SIZE
    assert response.status_code == 406  # Mailgun stops retrying on 406 only
    assert inbound(ticket) == [] and QuarantinedEmail.objects.count() == 0


def test_a_mailgun_reply_with_nul_bytes_is_attached_clean(ticket, sent):
    # The portal answers 400 to NULs in form fields elsewhere; Mailgun would retry that for hours.
    fields = {
        **mailgun_fields(sent),
        "stripped-text": "At 10:42\x00 sharp.",
        "subject": f"Re: {sent.subject}\x00",
    }
    response = Client().post(MAILGUN_URL, fields)
    assert response.status_code == 200 and response.json() == {"result": "attached"}
    [message] = inbound(ticket)
    assert message.body == "At 10:42 sharp." and "\x00" not in message.subject


@pytest.mark.parametrize(
    "raw",
    [
        b"\r\n",
        b"\x00\xff\xfe garbage \r\n\r\n\x00",
        b"From: =?utf-8?q?broken\r\nSubject: =?x-unknown?b?////?=\r\nContent-Type: text/plain; charset=x-nope\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n!!!not base64!!!",
        b"Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\nContent-Type: text/plain\r\n\r\ncut off",
    ],
)
def test_malformed_mail_is_answered_200_and_stored_nowhere(ticket, sent, raw):
    response = post_mime(raw)
    assert response.status_code == 200 and response.json() == {"result": "not attached"}
    assert inbound(ticket) == [] and QuarantinedEmail.objects.count() == 0


def test_a_broken_charset_reply_still_lands_with_its_text(ticket, sent):
    raw = (
        f"From: guest@example.com\r\nSubject: Re: {sent.subject}\r\nMessage-ID: <cs@mail.example.com>\r\n"
        f"In-Reply-To: {sent.extra_headers['Message-ID']}\r\nContent-Type: text/plain; charset=x-nope\r\n\r\n"
        "Caf\xe9 at noon\r\n"
    ).encode("latin-1")
    assert post_mime(raw).json() == {"result": "attached"}
    assert inbound(ticket)[0].body == "Caf\ufffd at noon"
