"""When roaming's background work runs: modules below `roaming/tasks.py` queue a task here by
its name, so they never import the tasks that call them (the app registers the tasks in
`RoamingConfig.ready()`)."""

from __future__ import annotations

from celery import Task, current_app

COMMAND_EXECUTE = "roaming.command_execute"
LOCATIONS_RESEND = "roaming.locations_resend"


def task(name: str) -> Task:
    """Return the registered task `name` (a name nobody registered fails here)."""
    return current_app.tasks[name]
