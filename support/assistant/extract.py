"""Pull the details seed 003 asks for out of what people type. Pure: no Django."""

from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
AMOUNT = re.compile(
    r"(?:[$€£]\s*\d+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?\s*(?:dollars?|euros?|eur|usd|gbp|pounds?|bucks))",
    re.IGNORECASE,
)
LAST4 = re.compile(
    r"(?:ending(?: in)?|last\s*(?:4|four)(?:\s*digits)?(?:\s*(?:are|is|:))?|ends? (?:in|with))\s*(\d{4})\b",
    re.IGNORECASE,
)
TIME = re.compile(
    r"\b(?:today|yesterday|last night|this morning|tonight|\d{1,2}:\d{2}\s*(?:am|pm)?|\d{1,2}\s*(?:am|pm)|"
    r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}(?:/\d{2,4})?|(?:mon|tues|wednes|thurs|fri|satur|sun)day|"
    r"\d{1,2} (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*)\b",
    re.IGNORECASE,
)
# A charger's Station ID as printed under the QR code: letters and digits with a dash or digits.
STATION = re.compile(r"\b([A-Z][A-Z0-9]*[-_][A-Z0-9\-_]+|[A-Z]{2,}\d{2,})\b")
PAYOUT = re.compile(r"\bpayout\s*(?:id\s*)?#?\s*([A-Za-z0-9\-]{2,64})", re.IGNORECASE)
PMS_NAMES = ("guesty", "hospitable", "track", "hostaway", "lodgify", "cloudbeds", "mews", "smoobu")

# "That didn't help", "still not working", "I want a person".
_NOT_HELPED = re.compile(
    r"\b(?:did(?:n'?t| not) help|does(?:n'?t| not) help|not help(?:ful|ing)|no help|still (?:not|doesn'?t|won'?t|"
    r"isn'?t|no|the same|broken|offline|dead)|same (?:problem|issue|thing)|no luck|didn'?t work|did not work|"
    r"nothing work|tried (?:that|everything|it all)|(?:talk|speak) to (?:a |an )?(?:human|person|agent|someone)|"
    r"real person|human|agent please|contact support|open a ticket|escalate)\b",
    re.IGNORECASE,
)


def not_helped(text: str) -> bool:
    """Return whether the message says the steps did not help or asks for a person."""
    return bool(_NOT_HELPED.search(text))


def extract(text: str) -> dict[str, str]:
    """Return the details found in a message, under their asks_for names."""
    found: dict[str, str] = {}
    emails = EMAIL.findall(text)
    if emails:
        found["email"] = emails[0]
        found["account_email"] = emails[0]
        if len(emails) > 1:
            found["new_email"] = emails[-1]
    stripped = EMAIL.sub(" ", text)
    if match := LAST4.search(stripped):
        found["card_last4"] = match.group(1)
    if match := AMOUNT.search(stripped):
        found["amount"] = match.group(0).strip()
    if match := TIME.search(stripped):
        found["occurred_at"] = match.group(0)
    if match := STATION.search(stripped):
        found["station_id"] = match.group(1)
    if match := PAYOUT.search(stripped):
        found["payout_id_or_dates"] = match.group(1)
    lowered = stripped.lower()
    for name in PMS_NAMES:
        if re.search(rf"\b{name}\b", lowered):
            found["pms_name"] = name.capitalize()
            break
    if re.search(r"\bdelete|erase|remove (?:all|my data)|gdpr\b", lowered):
        found["cancel_or_delete"] = "delete the account and its data"
    elif re.search(
        r"\bsubscription only|just (?:the )?(?:subscription|plan)|cancel (?:the |my )?(?:subscription|plan)\b",
        lowered,
    ):
        found["cancel_or_delete"] = "cancel the subscription only"
    return found
