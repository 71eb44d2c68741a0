import pytest


@pytest.fixture(autouse=True)
def _fast_passwords(request, settings):
    # Not for tests against the real server process: it checks passwords with the real hashers.
    if request.node.get_closest_marker("e2e") is None:
        settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
