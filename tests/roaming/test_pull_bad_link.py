"""A CPO partner whose list answer carries a next-page Link we may not follow (into a private
network) or cannot read is a failure of that partner only: the sweep goes on to the other CPO
partners, and asks the bad one again next time from the same mark."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from roaming import tasks
from roaming.models import OcpiLog
from tests.factories import OrganizationFactory
from tests.roaming.test_emsp_tokens import cpo_partner, with_identity


class ListingCpo:
    """A CPO's Sessions / CDRs Sender answering an empty page with the given Link header."""

    def __init__(self, link: str):
        self.asked: list[str] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                outer.asked.append(self.path)
                raw = json.dumps(
                    {"status_code": 1000, "data": [], "timestamp": "2026-01-01T00:00:00Z"}
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                if link:
                    self.send_header("Link", link)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}/ocpi/cpo/2.2.1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


BAD_LINKS = {
    "into a private network": '<https://10.0.0.7/ocpi/cpo/2.2.1/sessions?offset=1>; rel="next"',
    "unreadable": 'https://nowhere.example/sessions?offset=1; rel="next"',
}


@pytest.mark.django_db
@pytest.mark.parametrize("link", list(BAD_LINKS), ids=list(BAD_LINKS))
def test_a_partner_with_a_bad_next_link_does_not_keep_the_others_from_being_pulled(settings, link):
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    bad, good = ListingCpo(BAD_LINKS[link]), ListingCpo("")
    try:
        org = OrganizationFactory()
        with_identity(org)
        partners = []
        for name, stub, party in (("Bad", bad, "BAD"), ("Good", good, "GUD")):
            partners.append(
                cpo_partner(
                    org,
                    token=f"cpo-token-{party}",
                    name=name,
                    country_code="BE",
                    party_id=party,
                    cpo_party_id=party,
                    endpoints={
                        "sessions": {"SENDER": f"{stub.base}/sessions"},
                        "cdrs": {"SENDER": f"{stub.base}/cdrs"},
                    },
                )
            )

        tasks.emsp_sessions_sweep_task.delay()

        # The bad partner was asked, and the good one (after it) got its sessions and CDRs pulled.
        assert bad.asked
        assert [p.split("?")[0].rsplit("/", 1)[-1] for p in good.asked] == ["sessions", "cdrs"]
        assert (
            OcpiLog.objects.filter(partner=partners[1], direction=OcpiLog.Direction.OUT).count()
            == 2
        )
    finally:
        bad.close()
        good.close()
