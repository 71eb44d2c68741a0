"""Moved to backoffice/env.py (issue 50: the environment readers sit below every app that reads
them). Kept only so chargers/management/commands/serve.py and branches in flight still import;
new code imports backoffice.env."""

from backoffice.env import (
    env_bool,
    env_choice,
    env_float,
    env_int,
    env_list,
    env_prefix_for_test_worker,
    env_secret,
    env_str,
)

__all__ = [
    "env_bool",
    "env_choice",
    "env_float",
    "env_int",
    "env_list",
    "env_prefix_for_test_worker",
    "env_secret",
    "env_str",
]
