"""When roaming's background work runs: modules below `roaming/tasks.py` queue a task here by
its name, so they never import the tasks that call them (the app registers the tasks in
`RoamingConfig.ready()`)."""

from __future__ import annotations

from celery import Task, current_app

from backoffice import queueing

COMMAND_EXECUTE = "roaming.command_execute"
LOCATIONS_RESEND = "roaming.locations_resend"
EMSP_TOKEN_PUSH = "roaming.emsp_token_push"
EMSP_TOKENS_PUSH_ALL = "roaming.emsp_tokens_push_all"
EMSP_NETWORK_PULL = "roaming.emsp_network_pull"


def task(name: str) -> Task:
    """Return the registered task `name` (a name nobody registered fails here)."""
    return current_app.tasks[name]


def later(name: str, *args: object) -> None:
    """Queue task `name` with `args`; a job the broker does not take is kept and sent once it
    answers (backoffice.queueing), not lost."""
    queueing.later(name, *args)
