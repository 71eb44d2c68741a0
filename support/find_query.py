"""Pure: what a support agent typed into the admin home's one search box (no Django imports).

An agent pastes what the customer gave: a station id, an email, the card's last four digits
(often with the day or the amount: "4242 2026-11-20", "4242 12.50"), a session, payment or
transaction number, a ticket reference. This reads each word for what it can be; the search
(support/find.py) looks each up where it can live.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation

MAX_LENGTH = 200

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_AMOUNT = re.compile(r"^\d{1,7}[.,]\d{1,4}$")
_LAST4 = re.compile(r"^\d{4}$")
_NUMBER = re.compile(r"^#?\d{1,12}$")
_WORD = re.compile(r"^[\w*./:@+-]{2,64}$")


@dataclass(frozen=True)
class Query:
    """The words of a search, each read for what it can be."""

    text: str = ""
    emails: tuple[str, ...] = ()
    last4: str = ""
    day: date | None = None
    amount: Decimal | None = None
    numbers: tuple[int, ...] = ()
    # Words that can be a station id, a ticket reference, a payment reference or a card uid.
    words: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        return not (self.emails or self.last4 or self.numbers or self.words)


def _day(word: str) -> date | None:
    match = _DATE.match(word)
    if not match:
        return None
    try:
        return date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def _amount(word: str) -> Decimal | None:
    if not _AMOUNT.match(word):
        return None
    try:
        return Decimal(word.replace(",", "."))
    except InvalidOperation:
        return None


def parse(text: str) -> Query:
    """Read the search box. Four digits are the card's last four (and also a number: a
    session or transaction id may be four digits too); a date and an amount narrow them."""
    text = " ".join(text.split())[:MAX_LENGTH]
    emails: list[str] = []
    numbers: list[int] = []
    words: list[str] = []
    last4, day, amount = "", None, None
    for word in text.split(" "):
        if not word:
            continue
        if _EMAIL.match(word):
            emails.append(word.lower())
        elif (found_day := _day(word)) is not None:
            day = found_day
        elif (found_amount := _amount(word)) is not None:
            amount = found_amount
        elif _NUMBER.match(word):
            digits = word.lstrip("#")
            if _LAST4.match(digits) and not last4:
                last4 = digits
            numbers.append(int(digits))
            words.append(digits)
        elif _WORD.match(word):
            words.append(word)
    return Query(
        text=text,
        emails=tuple(emails),
        last4=last4,
        day=day,
        amount=amount,
        numbers=tuple(numbers),
        words=tuple(words),
    )
