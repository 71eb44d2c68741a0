"""API inputs at the edges (issue 33 item 10): list paging is capped with a clear 400, and a lone
surrogate in any choice field of any request body is a 400, never a 500."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from drf_spectacular.generators import SchemaGenerator
from rest_framework.authtoken.models import Token as ApiToken
from rest_framework.test import APIClient

from tests.security.conftest import Tenant
from tests.security.test_api_fuzz import own_path_values

pytestmark = pytest.mark.django_db

LONE_SURROGATE = '"\\ud800"'  # as a JSON client sends it: an escape naming half a pair


def _client(t: Tenant) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {ApiToken.objects.create(user=t.owner).key}")
    return client


def _schema() -> dict:
    return SchemaGenerator().get_schema(request=None, public=True)


def _resolve(schema: dict, node: dict) -> dict:
    while "$ref" in node:
        node = schema["components"]["schemas"][node["$ref"].rsplit("/", 1)[1]]
    return node


def _enum_fields(schema: dict, body: dict) -> list[str]:
    body = _resolve(schema, body)
    names = []
    for name, prop in body.get("properties", {}).items():
        options = [_resolve(schema, p) for p in prop.get("allOf", []) + prop.get("oneOf", [])]
        if "enum" in _resolve(schema, prop) or any("enum" in o for o in options):
            names.append(name)
    return names


def _path_values(t: Tenant, path: str) -> dict[str, Any]:
    values = own_path_values(t, path)
    extra = {
        "property_id": t.prop.pk,
        "reservation_pk": t.reservation.pk,
        "ocpp_action": "Reset",
        "organization_id": t.org.pk,
        "country": "NL",
        "by": "connector",
        "port": 1,
        "meter_serial": "EMH-1",
    }
    values.update({k: v for k, v in extra.items() if "{" + k + "}" in path})
    return values


def _list_paths(schema: dict) -> list[str]:
    """The paginated lists: every GET with both limit and offset."""
    return [
        path
        for path, item in schema["paths"].items()
        if {"limit", "offset"} <= {p["name"] for p in item.get("get", {}).get("parameters", [])}
    ]


def test_every_list_is_capped_and_says_the_cap(mine, theirs):
    client = _client(mine)
    paths = _list_paths(_schema())
    assert len(paths) >= 15
    for path in paths:
        url = path.format(**_path_values(mine, path))
        assert client.get(url).status_code == 200, url
        for limit in ("10" + "0" * 30, "501", "0", "-1", "ten", "1e3"):
            response = client.get(url, {"limit": limit})
            assert response.status_code == 400, (url, limit, response.status_code)
            assert "from 1 to 500" in str(response.json()["limit"]), response.json()
        response = client.get(url, {"offset": "9" * 40})
        assert response.status_code == 400 and "offset" in response.json(), url
        assert client.get(url, {"limit": "500", "offset": "3"}).status_code == 200, url
        # Pages by number are not how these lists page: said, not ignored (same rows forever).
        response = client.get(url, {"page": "2"})
        assert response.status_code == 400 and "offset" in response.json()["page"][0], url


def test_a_list_pages_by_the_default_size_when_no_limit_is_given(mine):
    client = _client(mine)
    with override_settings(API_PAGE_SIZE=2, API_MAX_LIMIT=3):
        from tests.factories import TokenFactory

        for _n in range(4):
            TokenFactory(organization=mine.org)
        page = client.get("/api/v1/tokens/").json()
        assert page["count"] >= 5 and len(page["results"]) == 2 and page["next"]
        assert len(client.get("/api/v1/tokens/", {"limit": 3}).json()["results"]) == 3
        refused = client.get("/api/v1/tokens/", {"limit": 4})
        assert refused.status_code == 400
        assert refused.json() == {"limit": ["Use a whole number from 1 to 3."]}


def test_the_message_log_limit_is_capped_too(mine):
    client = _client(mine)
    url = f"/api/v1/chargers/{mine.charger.station_id}/logs/"
    assert client.get(url, {"limit": 500}).status_code == 200
    for query in ({"limit": 501}, {"limit": "9" * 40}, {"before": "9" * 40}, {"before": "x"}):
        assert client.get(url, query).status_code == 400, query
    events = f"/api/v1/chargers/{mine.charger.station_id}/security-events/"
    assert client.get(events, {"before": "9" * 40}).status_code == 400


def _write_operations(schema: dict) -> list[tuple[str, str, list[str]]]:
    found = []
    for path, item in schema["paths"].items():
        for method in ("post", "put", "patch"):
            body = (
                item.get(method, {})
                .get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema")
            )
            if body:
                fields = _enum_fields(schema, body)
                if fields:
                    found.append((method, path, fields))
    return found


def test_a_lone_surrogate_in_any_choice_field_is_a_400(mine, theirs, settings):
    settings.MSP_URL_ALLOWLIST = []
    client = _client(mine)
    operations = _write_operations(_schema())
    assert sum(len(fields) for _, _, fields in operations) >= 5
    failures: list[Any] = []
    for method, path, fields in operations:
        url = path.format(**_path_values(mine, path))
        for field in fields:
            raw = "{" + f'"{field}": {LONE_SURROGATE}' + "}"
            response = getattr(client, method)(url, raw, content_type="application/json")
            if response.status_code != 400:
                failures.append((method, path, field, response.status_code))
    assert failures == []


def test_a_lone_surrogate_is_refused_in_plain_words(mine):
    response = _client(mine).post(
        "/api/v1/tokens/", '{"id_tag": "\\udfff"}', content_type="application/json"
    )
    assert response.status_code == 400
    assert "surrogate" in response.json()["detail"]


@pytest.mark.parametrize(
    ("path", "param"),
    [("/api/v1/sessions/", "started_before"), ("/api/v1/uptime/", "start")],
)
def test_a_time_zone_offset_no_place_has_is_a_400(mine: Tenant, path, param):
    """PostgreSQL refuses offsets past +-15:59 with an error (found as a 500 by schemathesis); real
    zones lie within +-14:00, so anything past that is the client's mistake, said as such."""
    client = _client(mine)
    answer = client.get(path, {param: "0417-02-20T01:47:13.4-16:46"})
    assert answer.status_code == 400
    assert "-14:00 and +14:00" in answer.content.decode()
    assert client.get(path, {param: "2026-02-20T01:47:13+13:45"}).status_code == 200


def _enum_query_parameters(schema: dict) -> list[tuple[str, str, list]]:
    found = []
    for path, item in schema["paths"].items():
        for parameter in item.get("get", {}).get("parameters", []):
            described = _resolve(schema, parameter.get("schema", {}))
            enum = described.get("enum") or (
                ["false", "true"] if described.get("type") == "boolean" else None
            )
            if parameter["in"] == "query" and enum:
                found.append((path, parameter["name"], enum))
    return found


def test_a_filter_value_outside_its_choices_is_a_400_keyed_by_the_parameter(mine):
    """A list filtered by a documented choice refuses a value that is not one, with a 400 keyed by
    the parameter: the message log answered every row for `?direction=sideways`, as if the filter
    held, and a charger's operations an empty list for `?kind=sideways`."""
    schema = _schema()
    client = _client(mine)
    found = _enum_query_parameters(schema)
    assert ("/api/v1/chargers/{station_id}/logs/", "direction", ["in", "out"]) in found
    events = "/api/v1/chargers/{station_id}/security-events/"
    assert (events, "critical", ["false", "true"]) in found
    wrong = []
    for path, name, enum in found:
        url = path.format(**_path_values(mine, path))
        response = client.get(url, {name: "sideways"})
        if response.status_code != 400 or name not in response.json():
            wrong.append((path, name, response.status_code))
        assert client.get(url, {name: enum[-1]}).status_code == 200, (path, name)
    assert wrong == [], "\n".join(map(str, wrong))
    # The strict values still filter, in either spelling.
    ids = {t["id"] for t in client.get("/api/v1/tokens/", {"blocked": "false"}).json()["results"]}
    assert mine.token.pk in ids
    for blocked in ("true", "1", "True"):
        rows = client.get("/api/v1/tokens/", {"blocked": blocked}).json()["results"]
        assert all(row["blocked"] for row in rows) and mine.token.pk not in {r["id"] for r in rows}
