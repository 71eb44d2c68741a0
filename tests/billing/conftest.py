import pytest


@pytest.fixture(autouse=True)
def _eager_celery(settings, tmp_path):
    """Run billing tasks in-process even when REDIS_URL configures a broker (no worker in tests)."""
    from portal.celery import app

    previous = app.conf.task_always_eager
    app.conf.task_always_eager = True
    settings.BILLING_STATEMENT_ROOT = str(tmp_path / "statements")
    yield
    app.conf.task_always_eager = previous
