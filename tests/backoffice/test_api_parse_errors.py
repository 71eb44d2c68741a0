"""A body the API cannot parse gets a 400 with a sentence in the house's words, never the
parser's or Python's text ("JSON parse error - Out of range float values …", "Expecting value")."""

import pytest

pytestmark = pytest.mark.django_db

URL = "/api/v1/support/assistant/"  # open to anyone, reads a JSON body
LIBRARY_WORDS = ("parse error", "Expecting", "Out of range", "compliant", "Exceeds the limit")


def post(client, body: bytes, content_type="application/json"):
    response = client.post(URL, body, content_type=content_type)
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert not any(words in detail for words in LIBRARY_WORDS), detail
    return detail


@pytest.mark.parametrize("constant", [b"NaN", b"Infinity", b"-Infinity"])
def test_nan_and_infinity_are_named_as_numbers_json_does_not_allow(client, constant):
    detail = post(client, b'{"message": "hi", "context": {"amount": ' + constant + b"}}")
    assert detail == "The body is not valid JSON: NaN and Infinity are not numbers JSON allows."


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (b'{"message": }', "at line 1, column 13: a value (a string"),
        (b"{'message': 'hi'}", "at line 1, column 2: a key in double quotes was expected"),
        (b'{"message": "hi" "x": 1}', "a comma was expected between two items"),
        (b'{"message": "hi"} {}', "more text follows the JSON value"),
        (b'{"message": "hi', "a string is not closed with a double quote"),
        (b'{"message":\n "a\tb"}', "at line 2, column 4: a string holds a control character"),
        (b'{"message": "\\q"}', "a string holds a backslash escape JSON does not have"),
    ],
)
def test_malformed_json_says_where_and_what_in_plain_words(client, body, sentence):
    detail = post(client, body)
    assert detail.startswith("The body is not valid JSON at line ")
    assert sentence in detail


def test_a_number_of_more_than_4300_digits_is_refused_in_words(client):
    detail = post(client, b'{"message": "hi", "session_id": ' + b"9" * 5000 + b"}")
    assert detail == "The body is not valid JSON here: a number has more than 4,300 digits."


def test_a_broken_multipart_form_is_refused_in_words(client):
    detail = post(client, b"--x\r\n", content_type="multipart/form-data")
    assert detail.startswith("The body is not a valid multipart/form-data form")


def test_the_token_endpoint_answers_in_the_same_words(client):
    # DRF's ObtainAuthToken names DRF's own parsers: the sign-in answered its parser text.
    response = client.post(
        "/api/v1/auth/token/", b'{"username": NaN}', content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json() == {
        "detail": "The body is not valid JSON: NaN and Infinity are not numbers JSON allows."
    }


def test_every_api_view_reads_bodies_with_the_apis_parsers():
    """A view naming parsers of its own would answer a bad body in the library's words."""
    from django.urls import URLPattern, URLResolver, get_resolver
    from rest_framework.settings import api_settings
    from rest_framework.views import APIView

    def views(patterns, prefix=""):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                yield from views(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                cls = getattr(entry.callback, "cls", None)
                if cls is not None and issubclass(cls, APIView):
                    yield prefix + str(entry.pattern), cls

    found = {route: cls for route, cls in views(get_resolver().url_patterns)}
    assert any(route.startswith("api/v1/auth/token") for route in found), sorted(found)[:5]
    own = {route: cls.__name__ for route, cls in found.items() if route.startswith("api/")}
    differ = {
        route: name
        for route, name in own.items()
        if list(found[route].parser_classes) != list(api_settings.DEFAULT_PARSER_CLASSES)
    }
    assert not differ, differ
