"""The Postfix pipe alias documented in docs/support.md, run as written against the real server."""

from __future__ import annotations

import re
import subprocess
from email.message import EmailMessage
from pathlib import Path

import pytest
from django.core import mail

from support import toolkit
from support.models import Ticket, TicketMessage
from tests.conftest import start_live_server, stop_live_server
from tests.factories import UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SECRET = "pipe-secret-0123456789abcdef"
DOC = Path(__file__).resolve().parents[2] / "docs" / "support.md"


def documented_pipe_command(url: str, header_file: Path) -> str:
    """Return the shell command of the documented alias, pointed at this server and header file."""
    line = next(line for line in DOC.read_text().splitlines() if line.startswith("replies: "))
    command = re.search(r'"\|(.*)"$', line).group(1)
    command = command.replace("https://charge.example.com", url)
    return command.replace("/etc/postfix/support-inbound.header", str(header_file))


@pytest.fixture
def server(tmp_path):
    server = start_live_server(SUPPORT_INBOUND_SECRET=SECRET, OCPP_JOURNAL_DIR=tmp_path / "journal")
    yield server
    stop_live_server(server)


def test_the_documented_alias_posts_a_reply_onto_the_ticket_and_defers_when_refused(
    server, tmp_path
):
    agent = UserFactory(username="agent@example.com", is_staff=True)
    ticket = Ticket.objects.create(email="guest@example.com", message="Dead charger.")
    mail.outbox.clear()
    toolkit.ticket_reply(ticket=ticket, user=agent, body="When did it stop?")
    sent = mail.outbox[-1]
    reply = EmailMessage()
    reply["From"] = "guest@example.com"
    reply["To"] = "replies@example.com"
    reply["Subject"] = f"Re: {sent.subject}"
    reply["Message-ID"] = "<pipe-1@mail.example.com>"
    reply["In-Reply-To"] = sent.extra_headers["Message-ID"]
    reply.set_content("Around noon.\n\nOn Mon, Support wrote:\n> When did it stop?\n")

    header = tmp_path / "support-inbound.header"
    header.write_text(f"Authorization: Bearer {SECRET}\n")
    command = documented_pipe_command(server.url, header)
    done = subprocess.run(
        ["/bin/sh", "-c", command], input=bytes(reply), capture_output=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    [message] = TicketMessage.objects.filter(ticket=ticket, direction="in")
    assert message.body == "Around noon."
    assert Ticket.objects.get(pk=ticket.pk).status == Ticket.Status.OPEN

    # A wrong secret: exit 75 (EX_TEMPFAIL), so Postfix keeps the mail and retries, never bounces it.
    header.write_text("Authorization: Bearer wrong\n")
    done = subprocess.run(
        ["/bin/sh", "-c", documented_pipe_command(server.url, header)],
        input=bytes(reply),
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 75
