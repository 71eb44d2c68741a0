"""The settings of a server a test starts (tests/conftest.py, start_live_server): production's,
with two differences that only take away work production does not do either.

- The password hasher of the test process (tests/hashers.py). With production's hashers a
  server verified a test user's 1,000-iteration hash and then upgraded it to 1,000,000
  iterations at each sign-in: 0.44 s of CPU per sign-in, about 38 CPU-s of every `make test`
  (py-spy of a whole run, docs/testing.md). A sign-in does the same checks and opens the same
  session.
- No pygments or rich. The dev tools (pytest, import-linter, schemathesis) bring them into this
  virtualenv; a deployed server has neither (pyproject's dependencies pull neither), so it does
  not import them, while a test's server imported both (DRF's compat module and httpx's
  command-line client import them when present): 0.1 s of CPU per server start.
"""

import sys

for _name in ("pygments", "rich"):
    sys.modules.setdefault(_name, None)  # type: ignore[assignment]  # "not installed"

from portal.settings import *  # noqa: E402, F403

PASSWORD_HASHERS = ["tests.hashers.FastPBKDF2PasswordHasher"]
