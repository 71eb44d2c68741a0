"""Every page has an icon: the portal's, guest and driver pages link it, and /favicon.ico (which
browsers ask for on pages without the link: the admin, the API) leads to it."""

import pytest
from django.contrib.staticfiles import finders
from django.templatetags.static import static

pytestmark = pytest.mark.django_db


def test_favicon_ico_leads_to_the_icon_which_exists(client):
    response = client.get("/favicon.ico")
    assert response.status_code == 301
    assert response["Location"] == static("backoffice/icon.svg")
    assert finders.find("backoffice/icon.svg")


@pytest.mark.parametrize("url", ["/accounts/login/", "/s/", "/driver/account/login/"])
def test_pages_link_the_icon(client, url):
    body = client.get(url, follow=True).content.decode()
    assert f'<link rel="icon" href="{static("backoffice/icon.svg")}"' in body
