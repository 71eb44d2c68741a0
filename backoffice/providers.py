"""Named providers: how a lower app calls the one function an upper app supplies.

An app may not import the apps above it (the layers in pyproject.toml). Where it needs
their answer (the dashboard needs billing's revenue and the chargers' figures, a session
page its price), it declares a Provider with the call's signature (a Protocol), and the one
app that answers registers its function in its AppConfig.ready(). Unlike a signal there is
exactly one provider, its return value is the answer, and calling one that nothing
registered, or registering a second, is an error rather than a silently empty answer.

To find who answers: grep the provider's name for `.register(`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, TypeVar

from django.core.exceptions import ImproperlyConfigured

F = TypeVar("F", bound=Callable[..., Any])


class Provider(Generic[F]):
    """One named function supplied by an upper app; call it as `provider.call(...)`."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._function: F | None = None

    def register(self, function: F) -> F:
        if self._function is not None and self._function is not function:
            raise ImproperlyConfigured(
                f"{self.name} is already provided by {self._function.__module__}."
                f"{self._function.__qualname__}"
            )
        self._function = function
        return function

    @property
    def call(self) -> F:
        if self._function is None:
            raise ImproperlyConfigured(f"Nothing provides {self.name}: is its app installed?")
        return self._function

    def __repr__(self) -> str:
        return f"<Provider {self.name}>"
