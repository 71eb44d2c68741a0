"""Every response carries a Content-Security-Policy without inline scripts; templates keep to it."""

import re
from pathlib import Path

import pytest
from django.conf import settings

from tests.factories import MembershipFactory, PropertyFactory, UserFactory

TEMPLATES = Path(settings.BASE_DIR) / "templates"


def directives(response) -> dict[str, list[str]]:
    policy = response["Content-Security-Policy"]
    return {
        part.split()[0]: part.split()[1:] for part in (p.strip() for p in policy.split(";")) if part
    }


@pytest.fixture
def host_client(client, db):
    prop = PropertyFactory()
    client.force_login(MembershipFactory(organization=prop.organization, role="owner").user)
    return client


def test_portal_page_has_the_policy(host_client):
    csp = directives(host_client.get("/"))
    assert csp["default-src"] == ["'self'"]
    assert csp["script-src"] == [
        "'self'"
    ]  # no nonce unless a page asks for one, never unsafe-inline
    assert csp["style-src"] == ["'self'"]
    assert csp["img-src"] == ["'self'", "data:"]
    assert csp["object-src"] == ["'none'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]


def test_websockets_are_allowed_to_this_host_only(host_client):
    csp = directives(host_client.get("/", HTTP_HOST="localhost:8000"))
    assert csp["connect-src"] == ["'self'", "ws://localhost:8000", "wss://localhost:8000"]


def test_login_page_and_api_answers_carry_it_too(client, db):
    assert "frame-ancestors 'none'" in client.get("/accounts/login/")["Content-Security-Policy"]
    assert "default-src 'self'" in client.get("/api/v1/")["Content-Security-Policy"]


def test_admin_login_has_no_inline_script_allowance(client, db):
    csp = directives(client.get("/admin/login/"))
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-inline'" not in csp["style-src"]


def test_api_docs_start_script_runs_by_nonce_and_swagger_comes_from_our_static_files(client, db):
    response = client.get("/api/v1/docs/")
    body = response.content.decode()
    nonce = re.search(r"<script nonce=\"([^\"]+)\">", body).group(1)
    assert f"'nonce-{nonce}'" in directives(response)["script-src"]
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in body
    assert "cdn.jsdelivr.net" not in body
    # A nonce is per response.
    assert nonce not in client.get("/api/v1/docs/")["Content-Security-Policy"]


def test_admin_change_list_under_the_policy(client, db):
    client.force_login(UserFactory(is_staff=True, is_superuser=True))
    response = client.get("/admin/chargers/charger/")
    assert response.status_code == 200
    assert "'unsafe-inline'" not in response["Content-Security-Policy"]


INLINE_SCRIPT = re.compile(
    r"<script\b(?![^>]*\bsrc=)(?![^>]*\bnonce=)(?![^>]*type=\"application/json\")[^>]*>", re.I
)
STYLE_ATTRIBUTE = re.compile(r"\sstyle\s*=", re.I)
STYLE_ELEMENT = re.compile(r"<style\b", re.I)
EVENT_HANDLER = re.compile(r"<[^>]*\son[a-z]+\s*=", re.I)
JS_URL = re.compile(r"href\s*=\s*[\"']?\s*javascript:", re.I)


@pytest.mark.parametrize(
    "path", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES))
)
def test_templates_have_no_inline_script_or_style(path):
    """The policy blocks these in the browser; this catches them before a browser test has to."""
    text = path.read_text()
    for pattern in (INLINE_SCRIPT, STYLE_ATTRIBUTE, STYLE_ELEMENT, EVENT_HANDLER, JS_URL):
        assert not pattern.search(text), (
            f"{path}: {pattern.search(text).group(0)!r} is blocked by the CSP"
        )
