"""Amounts in admin with their currency's own decimals (issue 51 item 7: a refund said "1.0000 EUR").

Money is stored with four decimals; Django's admin shows a DecimalField with all of them, in lists
and on read-only change pages. `CurrencyAmountsAdmin` shows each field named in `money_fields`
rounded to the currency of the row (`currency_path`, e.g. "payment.currency"), both in the list
and on the change page, through one display method per field made when the class is declared.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from .money import round_money

SUFFIX = "_in_currency"


def currency_of(obj: Any, path: str) -> str:
    """The currency code reached along a dotted path ("payment.currency"); "" when unset."""
    value: Any = obj
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return ""
    return str(value)


def amount_text(amount: Any, currency: str) -> str:
    """ "1.00 EUR", "500 JPY"; "–" for no amount."""
    if amount is None:
        return "–"
    return f"{round_money(amount, currency)} {currency}".strip() if currency else str(amount)


def _display(name: str, path: str) -> Callable[[Any, Any], str]:
    def shown(self: Any, obj: Any) -> str:
        return amount_text(getattr(obj, name), currency_of(obj, path))

    label = name.replace("_", " ").capitalize()
    return admin.display(description=label, ordering=name)(shown)


def _swap(names: Sequence[Any], money: Sequence[str]) -> list[Any]:
    """Each money field replaced by its display, in place; each name once."""
    swapped = [f"{n}{SUFFIX}" if isinstance(n, str) and n in money else n for n in names]
    return list(dict.fromkeys(swapped))


class CurrencyAmountsAdmin(admin.ModelAdmin):
    money_fields: tuple[str, ...] = ()
    currency_path = "currency"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in cls.money_fields:
            setattr(cls, f"{name}{SUFFIX}", _display(name, cls.currency_path))

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return _swap(list(super().get_list_display(request)), self.money_fields)

    def _readonly_money(self, request: HttpRequest, obj: Any) -> tuple[str, ...]:
        """The money fields shown read-only: all of them on a page the agent may not change,
        else those the admin declares read-only."""
        if obj is not None and not self.has_change_permission(request, obj):
            return self.money_fields
        declared = set(super().get_readonly_fields(request, obj))
        return tuple(n for n in self.money_fields if n in declared)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        # The field itself stays read-only (so the form never edits it); its display is shown.
        return _swap(list(super().get_fields(request, obj)), self._readonly_money(request, obj))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        fields = [str(f) for f in super().get_readonly_fields(request, obj)]
        shown = [f"{n}{SUFFIX}" for n in self._readonly_money(request, obj)]
        return fields + [f for f in shown if f not in fields]
