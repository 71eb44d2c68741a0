"""Services queue tasks by name (`<app>/schedule.py`), so each name must be a task its app's
`tasks.py` defines and registers at start-up (`AppConfig.ready()`), or a queued job is lost."""

import pytest
from celery import current_app

import billing.schedule
import guest.schedule
import roaming.schedule

NAMED = [
    (billing.schedule, "billing.tasks", ["RECONCILIATION_IMPORT", "STATEMENT_GENERATE"]),
    (guest.schedule, "guest.tasks", ["START_EXPIRE"]),
    (
        roaming.schedule,
        "roaming.tasks",
        [
            "COMMAND_EXECUTE",
            "LOCATIONS_RESEND",
            "EMSP_TOKEN_PUSH",
            "EMSP_TOKENS_PUSH_ALL",
            "EMSP_NETWORK_PULL",
        ],
    ),
]


@pytest.mark.parametrize(("schedule", "tasks_module", "constants"), NAMED)
def test_every_scheduled_name_is_a_registered_task_of_its_app(schedule, tasks_module, constants):
    for constant in constants:
        name = getattr(schedule, constant)
        assert name in current_app.tasks, f"{name} is not registered"
        assert current_app.tasks[name].__module__ == tasks_module


def test_every_name_constant_of_a_schedule_module_is_checked():
    for schedule, _, constants in NAMED:
        names = {n for n in vars(schedule) if n.isupper() and isinstance(getattr(schedule, n), str)}
        assert names == set(constants), schedule.__name__
