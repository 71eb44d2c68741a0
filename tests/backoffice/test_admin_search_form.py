"""The admin's search field has a name of its own (templates/admin/search_form.html): with a help
text its only names were aria-describedby and an image, which axe-core calls serious
(label-title-only); and the result count's link is underlined (static/support/admin.css)."""

import pytest

pytestmark = pytest.mark.django_db


def test_the_search_field_is_named_and_its_link_underlined(admin_client):
    page = admin_client.get("/admin/chargers/chargingsession/").content.decode()
    assert 'id="searchbar" aria-label="Search charging sessions"' in page
    assert 'aria-describedby="searchbar_helptext"' in page  # the help text still describes it
    css = admin_client.get("/static/support/admin.css")
    body = b"".join(css.streaming_content) if css.streaming else css.content
    assert b"#changelist-search .quiet a" in body
