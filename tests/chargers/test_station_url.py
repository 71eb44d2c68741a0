"""The Network page fills each charger's links from one reversed pattern
(chargers/web/network.py, station_url): the same URL Django's reverse gives, whatever the id."""

import pytest
from django.urls import NoReverseMatch, reverse

from chargers.web.network import station_url

IDS = [
    "DEMO-001",
    "with space",
    "ümlaut-Ω",
    "percent%20sign",
    "q?x=1#frag",
    "a&b=c;d",
    "colon:at@tilde~",
    "quote'\"<tag>",
    "plus+comma,star*",
]


@pytest.mark.parametrize("name", ["chargers:charger-detail", "chargers:network-move"])
def test_the_same_url_as_reverse(name):
    fill = station_url(name)
    for station_id in IDS:
        assert fill(station_id) == reverse(name, args=[station_id]), station_id


def test_an_id_reverse_refuses_is_refused_alike():
    fill = station_url("chargers:charger-detail")
    for station_id in ("", "a/b"):
        with pytest.raises(NoReverseMatch):
            fill(station_id)
