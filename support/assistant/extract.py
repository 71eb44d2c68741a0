"""Pull the details seed 003 asks for out of what people type. Pure: no Django."""

from __future__ import annotations

import re

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
AMOUNT = re.compile(
    r"(?:[$€£]\s*\d+(?:[.,]\d{1,2})?|\d+(?:[.,]\d{1,2})?\s*(?:dollars?|euros?|eur|usd|gbp|pounds?|bucks)"
    r"|(?<![\d:/.,-])\d{1,6}[.,]\d{2}(?!\d|[:/.,]\d|\s*(?:kwh|kw|am|pm|h\b|uhr)))",
    re.IGNORECASE,
)
LAST4 = re.compile(
    r"(?:ending(?: in| with)?|last\s*(?:4|four)(?:\s*digits)?(?:\s*(?:are|is|was|were|:))?|ends? (?:in|with)|"
    r"(?:card|visa|master\s?card|amex|maestro|debit card|credit card)(?:\s*(?:no\.?|number|nr\.?|#|:))?|"
    r"[*x•]{2,}\s?)\s*(\d{4})\b(?![.,:]\d)",
    re.IGNORECASE,
)
# A reply that is only four digits (after being asked for the card's last 4).
BARE_LAST4 = re.compile(r"^\W*(?:it'?s|its|they are|theyre|ends?)?\W*(\d{4})\W*$", re.IGNORECASE)
TIME = re.compile(
    r"\b(?:today|yesterday|last night|this morning|tonight|\d{1,2}:\d{2}\s*(?:am|pm)?|\d{1,2}\s*(?:am|pm)|"
    r"\d{4}-\d{2}-\d{2}|\d{1,2}/\d{1,2}(?:/\d{2,4})?|(?:mon|tues|wednes|thurs|fri|satur|sun)day|"
    r"\d{1,2} (?:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*|just now|right now|"
    r"\d+ (?:min(?:ute)?s?|hours?) ago|an hour ago|a (?:few )?minutes? ago)\b",
    re.IGNORECASE,
)
# A charger's Station ID as printed under the QR code: letters and digits with a dash or digits.
STATION = re.compile(r"\b([A-Z][A-Z0-9]*[-_][A-Z0-9\-_]+|[A-Z]{2,}\d{2,})\b")
# A card's UID as readers print it: 4, 7 or 10 bytes of hex (8, 14, 20 digits), or a code right
# after "card", "uid", "idTag", "tag", "fob" or "badge": hex, or any idTag with a digit in it
# ("DEMO-CARD-1", "EMP0042": OCPP's idTag is any text of up to 20 characters, not only hex).
# Checked before station ids: "DEADBEEF01" is a card.
CARD_UID = re.compile(
    r"\b(?i:card|uid|idtag|tag|fob|badge|rfid)(?:\s+(?i:uid|number|id|no\.?))?\s*#?:?\s*"
    r"([0-9A-Fa-f]{6,20}|(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9][A-Za-z0-9_-]{3,35})\b"
    r"|\b((?=[0-9A-F]*[A-F])(?=[0-9A-F]*\d)(?:[0-9A-F]{8}|[0-9A-F]{14}|[0-9A-F]{20}))\b"
)
PAYOUT = re.compile(r"\bpayout\s*(?:id\s*)?#?\s*([A-Za-z0-9\-]{2,64})", re.IGNORECASE)
# A period for payouts and statements: "last month", "October", "2026", "1-15 Nov".
PERIOD = re.compile(
    r"\b(?:(?:last|this|previous) (?:month|week|year|quarter)|(?:jan|febr)uary|march|april|may|june|"
    r"july|august|september|october|november|december|20\d\d|q[1-4])\b",
    re.IGNORECASE,
)
NEW_EMAIL = re.compile(
    r"\b(?:to|new(?: one| email| address)?(?: is)?|into)\s*:?\s*<?" + EMAIL.pattern
)
PMS_NAMES = ("guesty", "hospitable", "track", "hostaway", "lodgify", "cloudbeds", "mews", "smoobu")

# "That didn't help", "still not working", "still empty", "I want a person".
_NOT_HELPED = re.compile(
    r"\b(?:did(?:n'?t| not) help|does(?:n'?t| not) help|not help(?:ful|ing)|no help|still (?:not|doesn'?t|won'?t|"
    r"isn'?t|no|the same|broken|offline|dead|empty|blank|missing|wrong)|same (?:problem|issue|thing)|no luck|didn'?t work|did not work|"
    r"nothing work|tried (?:that|everything|it all)|(?:talk|speak) to (?:a |an )?(?:human|person|agent|someone)|"
    r"real person|human|agent please|contact support|open a ticket|escalate|"
    r"tried\b[^.!?]{0,40}\balready|already (?:tried|did|done|checked|restarted|replugged|rebooted)|"
    r"(?:re)?tried (?:again|replugging|restarting|rebooting)|did that|done that|"
    r"power[- ]?cycled|no change|can'?t find it|(?:have|get) (?:a person|someone|support)|"
    r"can someone|someone (?:check|look)|person (?:look|check)|doesn'?t (?:add up|match)|"
    r"does not (?:add up|match)|dosn'?t match|still think|still failing|still stuck|"
    r"still refused|still nothing|not what i want|unplugged and replugged|"
    r"please (?:connect|link|reconcile|send|check|fix|look|have))\b",
    re.IGNORECASE,
)


# "I checked the network", "we've restarted it", "breaker is on": the person did the steps (not
# "I'll try that": a promise is no report).
_TRIED = re.compile(
    r"\b(?:i|we)(?:'ve| have)?(?: already| just| also)? (?:checked|tried|restarted|rebooted|reset|"
    r"power[- ]?cycled|cycled|turned|switched|flipped|unplugged|replugged|did|looked|tested|verified|"
    r"made sure|confirmed)\b|\b(?:breaker|power|internet|wi-?fi|network|router|leds?) (?:is|are|was|were) "
    r"(?:on|fine|ok|okay|working|lit|up)\b",
    re.IGNORECASE,
)


def tried_steps(text: str) -> bool:
    """Return whether the message reports having done the steps (or some of them)."""
    return bool(_TRIED.search(text.replace("’", "'")))


def last4_answer(text: str) -> str:
    """Return the four digits of a reply that is nothing else ("4242", "it's 4242")."""
    match = BARE_LAST4.match(text.strip())
    return match.group(1) if match else ""


def not_helped(text: str) -> bool:
    """Return whether the message says the steps did not help or asks for a person."""
    return bool(_NOT_HELPED.search(text))


def extract(text: str) -> dict[str, str]:
    """Return the details found in a message, under their asks_for names."""
    found: dict[str, str] = {}
    emails = EMAIL.findall(text)
    if len(emails) == 1 and NEW_EMAIL.search(text):
        found["new_email"] = emails[0]  # "change it to x@y": the address to move to
    elif emails:
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
    if match := CARD_UID.search(stripped):
        found["card_uid"] = (match.group(1) or match.group(2)).upper()
    for match in STATION.finditer(stripped):
        if match.group(1).upper() != found.get("card_uid"):
            found["station_id"] = match.group(1)
            break
    if match := PAYOUT.search(stripped):
        found["payout_id_or_dates"] = match.group(1)
    elif match := PERIOD.search(stripped):
        found["payout_id_or_dates"] = match.group(0)
    lowered = stripped.lower()
    for name in PMS_NAMES:
        if re.search(rf"\b{name}\b", lowered):
            found["pms_name"] = name.capitalize()
            break
    if choice := _cancel_or_delete(lowered):
        found["cancel_or_delete"] = choice
    return found


def _cancel_or_delete(lowered: str) -> str:
    """Seed 003 §6: cancel the subscription only, delete the account, or remove a saved card."""
    if re.search(
        r"\b(?:remove|delete|forget) (?:my |the )?(?:saved )?(?:credit |debit )?card\b", lowered
    ):
        return "remove the saved card"
    if re.search(r"\b(?:delete?|erase|remove (?:all|my data)|gdpr)", lowered):
        return "delete the account and its data"
    if re.search(
        r"\b(?:subscription only|just (?:the )?(?:subscription|plan)|cancel (?:the |my )?(?:subscription|plan)|"
        r"cancel (?:it|that)|(?:stop|end) (?:the |my )?(?:monthly|subscription|plan)|plan only)\b",
        lowered,
    ):
        return "cancel the subscription only"
    return ""
