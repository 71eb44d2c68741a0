"""Foreign-exchange reference rates (issue 55, a driver's partner CDR in another currency): the
ECB's daily file read (and a hostile one refused), fetched over real HTTP through the outbound
guard, and a conversion taken from the newest day on or before the bill's that lists both."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from billing import exchange
from billing.models import ExchangeRate
from billing.services.exchange_rates import RatesUnavailable, conversion, exchange_rates_fetch

# The shape of https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml
ECB_DAILY = """<?xml version="1.0" encoding="UTF-8"?>
<gesmes:Envelope xmlns:gesmes="http://www.gesmes.org/xml/2002-08-01"
 xmlns="http://www.ecb.int/vocabulary/2002-08-01/eurofxref">
  <gesmes:subject>Reference rates</gesmes:subject>
  <gesmes:Sender><gesmes:name>European Central Bank</gesmes:name></gesmes:Sender>
  <Cube>
    <Cube time='2026-03-02'>
      <Cube currency='USD' rate='1.0512'/>
      <Cube currency='JPY' rate='158.12'/>
      <Cube currency='SEK' rate='11.4608'/>
      <Cube currency='XYZ' rate='2.0'/>
    </Cube>
  </Cube>
</gesmes:Envelope>"""

# A document declaring entities (the start of "billion laughs" and external entities) is refused,
# even where the entity would expand to a plausible rate.
ENTITIES = """<?xml version="1.0"?>
<!DOCTYPE rates [<!ENTITY r "1.5">]>
<Cube><Cube time='2026-03-02'><Cube currency='USD' rate='&r;'/></Cube></Cube>"""


def test_the_ecb_file_is_read_and_crossed_through_the_euro():
    day, rates = exchange.parse_ecb_daily(ECB_DAILY)
    assert day == date(2026, 3, 2)
    assert rates == {"USD": Decimal("1.0512"), "JPY": Decimal("158.12"), "SEK": Decimal("11.4608")}
    assert exchange.cross_rate(rates, "EUR", "SEK") == Decimal("11.4608")
    # 1 USD in SEK = 11.4608 / 1.0512, to eight places.
    assert exchange.cross_rate(rates, "USD", "SEK") == Decimal("10.90258752")
    assert exchange.cross_rate(rates, "EUR", "CHF") is None
    # Rounded to the target's minor unit once: JPY has none.
    assert exchange.convert(Decimal("5.32"), Decimal("158.12"), "JPY") == Decimal("841")
    with pytest.raises(exchange.NotRates):
        exchange.parse_ecb_daily(ENTITIES)  # entities are never expanded
    with pytest.raises(exchange.NotRates):
        exchange.parse_ecb_daily("<html>maintenance</html>")
    # Numbers no rate column holds are no rates (the fetch stored them, and failed).
    odd = ECB_DAILY.replace("'1.0512'", "'Infinity'").replace("'158.12'", "'1e400'")
    with pytest.raises(exchange.NotRates, match="lists no rates"):
        exchange.parse_ecb_daily(odd.replace("'11.4608'", "'NaN'"))
    assert exchange.parse_ecb_daily(odd)[1] == {"SEK": Decimal("11.4608")}


@pytest.fixture
def source(settings):
    """The ECB file served over real HTTP on loopback (allowed for the test)."""
    body = {"text": ECB_DAILY}

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            data = body["text"].encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/xml")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    settings.MSP_URL_ALLOWLIST = ["127.0.0.1"]
    settings.EXCHANGE_RATES_URL = f"http://127.0.0.1:{server.server_port}/eurofxref-daily.xml"
    yield body
    server.shutdown()
    server.server_close()


def test_the_days_rates_are_fetched_kept_once_and_converted(db, source):
    assert exchange_rates_fetch() == 3
    assert exchange_rates_fetch() == 3  # the same day again: the same rows
    assert ExchangeRate.objects.count() == 3
    on = conversion(Decimal("5.32"), "EUR", "SEK", on=date(2026, 3, 4))
    assert (on.rate, on.day, on.amount) == (
        Decimal("11.46080000"),
        date(2026, 3, 2),
        Decimal("60.97"),
    )
    # A bill of a day before any known rate is not converted on a guess.
    assert conversion(Decimal("5.32"), "EUR", "SEK", on=date(2026, 3, 1)) is None
    source["text"] = "<html>maintenance</html>"
    with pytest.raises(RatesUnavailable):
        exchange_rates_fetch()
    assert ExchangeRate.objects.count() == 3


def test_a_private_address_is_not_fetched(db, settings):
    settings.EXCHANGE_RATES_URL = "https://10.0.0.1/eurofxref-daily.xml"
    with pytest.raises(RatesUnavailable):
        exchange_rates_fetch()
