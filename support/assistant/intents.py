"""What a message asks for beyond its seed-003 section (issue 47 item 3). Pure: no Django.

The classifier picks one of the ten sections; these few patterns say which thing within it the
person means, so the assistant answers from the right live state: a fault rather than an offline
charger, a refused card, a card charged twice (the hold), or a request the portal answers with a
path (remove a card, export a CSV, connect or disconnect a PMS, where a charger's logs are read).
Each pattern allows the usual typos; they are checked on lower-cased text.
"""

from __future__ import annotations

import re
from collections.abc import Set as AbstractSet
from enum import StrEnum


class Intent(StrEnum):
    FAULT = "fault"
    OFFLINE = "offline"
    REFUSED = "refused"
    CHARGED_TWICE = "charged_twice"
    REMOVE_CARD = "remove_card"
    EXPORT_CSV = "export_csv"
    LOGS = "logs"  # where a charger's OCPP messages are read (seed 001: Chargers > View > Logs)
    PROXY = "proxy"  # whether other backoffices take part, and which leads (seed 001: > Proxy)
    PMS_CONNECT = "pms_connect"
    PMS_DISCONNECT = "pms_disconnect"
    MISSING_CHARGER = "missing_charger"
    PMS_SYNC = "pms_sync"
    FIRMWARE = "firmware"  # how chargers' firmware is updated (Fleet › Firmware campaigns)
    # How a host does a task the portal has a page for (answered with its path).
    PRICES = "prices"
    ADD_CHARGER = "add_charger"
    POWER = "power"
    FREE_CHARGING = "free_charging"
    CONFIGURATION = "configuration"
    QR_LABEL = "qr_label"
    ALERTS = "alerts"
    REFUND = "refund"  # a host refunding a guest (a guest asking for one is a billing dispute)
    PERSON = "person"
    RESOLVED = "resolved"
    # A command the portal said was not sent (the charger still owed an earlier answer).
    NOT_SENT = "not_sent"
    # "What do I do about it?": the steps again, not "you have tried what I suggested".
    WHAT_TO_DO = "what_to_do"
    # The charger's clock or the times it sends are wrong ("clock shows 1970"): its own section.
    CLOCK = "clock"


_CARD = r"(?:card|cc|credit ?card|debit ?card|visa|master ?card|amex|payment method|fob|badge)"
_PMS = r"(?:pms|guesty|hospitable|track|hostaway|lodgify|cloudbeds|mews|smoobu|property management)"
# A person, as typed (common slips included).
_WHO = (
    r"(?:person|persn|pesron|human|humans|humna|hooman|somebody|sombody|someone|somone|some one|"
    r"agent|staff|operator|rep|representative)"
)
# What a host sends a charger from the portal (Commands), as typed.
_COMMAND = (
    r"(?:reset|reboot|restart|unlock\w*|clear ?cache|remote ?(?:start|stop)|change availability|"
    r"trigger\w*|commands?)"
)
# Words that say a time or date is not right, as typed.
_WRONG = (
    r"(?:wrong|incorrect|off|bogus|impossible|strange|weird|odd|crazy|funny|not set|behind|ahead)"
)
_PATTERNS: dict[Intent, re.Pattern[str]] = {
    # The charger's clock (not "9 o'clock"), its time server, a year a clock that was never set
    # shows (1970 …), a time or date that is wrong; never "every time", "session time" alone.
    Intent.CLOCK: re.compile(
        r"(?<!o')\bclocks?\b|\bntp\b|\btime ?(?:servers?|sync\w*)\b|\b19[789]\d\b|\btimestamps?\b|"
        r"\b(?:wrong|incorrect|bogus|impossible|strange|weird|odd|crazy|funny) (?:times?|dates?|years?)\b|"
        rf"\b(?:dates?|years?) (?:is |are |was |were |looks? |seems? |shows? |showing )?(?:all )?{_WRONG}\b|"
        rf"\b(?:charger|station|charge ?point|wall ?box|its)'?s? (?:time|date)s?\b[^.!?]{{0,20}}\b{_WRONG}\b|"
        r"\b(?:time|date)s? (?:on|of|in) (?:the |its )?(?:charger|station|display|screen)\b"
    ),
    Intent.NOT_SENT: re.compile(
        rf"\b{_COMMAND}\b[^.!?]{{0,40}}\b(?:not|wasn'?t|weren'?t|isn'?t|never) (?:been |being )?sent\b|"
        rf"\b{_COMMAND}\b[^.!?]{{0,40}}\b(?:didn'?t|did not|doesn'?t|does not|won'?t|never|not)"
        r" (?:go(?:ing|es)? through|reach\w*|get (?:to|through))\b|"
        r"\b(?:says?|said|saying|shows?|showing) (?:it was |it's |its |it is )?not sent\b|"
        r"\bnot (?:yet )?answered an earlier request\b"
    ),
    Intent.FAULT: re.compile(
        r"\b(?:fault\w*|faul?t|falt\w*|faulty|error (?:code|light|state|status)|warnings?|alarms?|"
        r"(?:has|have|with|shows?|showing|reports?|reporting|throws?|throwing|in) (?:an? |some )?errors?|"
        r"red (?:light|led)s?|"
        r"(?:blink|flash)(?:s|es|ing)? red|red (?:blink|flash)\w*|ground ?fail\w*|in error)\b"
    ),
    Intent.OFFLINE: re.compile(
        r"\b(?:off ?line|ofline|offlne|ofline|disconnected|not connected|no connection|"
        r"lost connection|unreachable|not online|went dark|(?:is|went|gone) dead)\b"
    ),
    Intent.REFUSED: re.compile(
        r"\b(?:declin\w*|refus\w*|reject\w*|denied|bounced|not accepted|wasn'?t accepted|"
        r"didn'?t (?:accept|take)|won'?t (?:accept|take)|"
        r"(?:didn'?t|did not|wasn'?t|was not|not|never)\s+(?:get |be |been )?(?:accepted|approved|go through))\b"
    ),
    Intent.CHARGED_TWICE: re.compile(
        r"\b(?:(?:charged|billed|debited|taken|pulled|hit)\s+(?:me\s+|us\s+|him\s+|her\s+|them\s+)?"
        r"(?:twice|two times|2 ?x|2 times|double)|double[- ]?(?:charg\w*|bill\w*|payment)|"
        r"two (?:charges|payments|transactions)|2 (?:charges|payments|transactions)|"
        r"duplicate (?:charge|payment|transaction)s?|charged (?:again|a second time))\b"
    ),
    Intent.REMOVE_CARD: re.compile(
        rf"\b(?:remove|delete|take off|get rid of|unlink|forget|erase|drop)\b[^.!?]{{0,30}}\b{_CARD}"
        rf"|\b{_CARD}\b[^.!?]{{0,20}}\b(?:removed|deleted|off (?:my|the) account)\b"
    ),
    Intent.EXPORT_CSV: re.compile(
        r"\b(?:csv|export\w*|spreadsheet|excel|download (?:the |my |all )?(?:sessions|data|history|report|statement)s?|"
        r"(?:annual|yearly|monthly) statement)s?\b"
    ),
    # "logs", "the log", "OCPP messages"; never "log in", "log out" or "logged".
    Intent.LOGS: re.compile(
        r"\blogs\b|\blog\b(?!\s*(?:in|on|out|into|off)\b)|"
        r"\bocpp (?:messages?|frames?|traffic)\b|\bmessage (?:log|history)\b"
    ),
    Intent.PROXY: re.compile(
        r"\bprox(?:y|ies)\b|\bleader\b|"
        r"\b(?:other|another|third[- ]party|3rd[- ]party|second) (?:back ?office|csms|server)s?\b"
    ),
    Intent.PMS_DISCONNECT: re.compile(
        rf"\b(?:disconnect|unlink|remove|turn off|switch off|stop syncing|cancel)\b[^.!?]{{0,25}}\b{_PMS}\b"
        rf"|\b{_PMS}\b[^.!?]{{0,20}}\b(?:disconnected|removed|unlinked)\b"
    ),
    Intent.PMS_CONNECT: re.compile(
        rf"\b(?:connect|link|hook up|integrate|set up|setup|add|sync)\b[^.!?]{{0,25}}\b{_PMS}\b"
        rf"|\b{_PMS}\b[^.!?]{{0,25}}\b(?:connect(?:ing|ion)?|integrat(?:e|ing|ion)|set ?up|hook(?:ing)? up|link(?:ing)?)\b"
    ),
    Intent.PMS_SYNC: re.compile(rf"\b(?:{_PMS}|bookings?|reservations?|sync\w*|calendar)\b"),
    Intent.FIRMWARE: re.compile(
        r"\b(?:firm ?wares?|firmwear|fw (?:update|upgrade|version)s?|maintenance windows?|"
        r"(?:software|os) (?:update|upgrade|version)s?|"
        r"(?:update|upgrade|flash)(?:s|d|ing)? (?:the |my |our |all (?:the |my |our )?)?"
        r"(?:chargers?'? |stations?'? )?software)\b"
    ),
    Intent.PRICES: re.compile(
        r"\b(?:set|setting|change|changing|edit|update|adjust|raise|lower|put|add)\b[^.!?]{0,30}"
        r"\b(?:prices?|pricing|rates?|tariffs?|(?:idle |connection |parking )?fees?|price per kwh)\b|"
        r"\bhow (?:do|can|should) (?:i|we) (?:charge|bill) (?:guests|drivers|people|visitors|users)\b"
    ),
    Intent.ADD_CHARGER: re.compile(
        r"\b(?:add|adding|install|set ?up|setup|register|onboard|hook up)\b[^.!?]{0,20}"
        r"\b(?:charger|charging station|station|wall ?box|charge ?point)s?\b"
    ),
    Intent.POWER: re.compile(
        r"\b(?:power|load|current|amps?|ampere|kw) (?:limits?|budget|management|sharing|balancing|cap)\b|"
        r"\blimit\w*\b[^.!?]{0,20}\b(?:power|load|current|amps?|kw)\b|\bload ?balanc\w*|"
        r"\b(?:main )?fuse\b|\bgrid connection\b"
    ),
    Intent.FREE_CHARGING: re.compile(
        r"\bfree (?:charging|charge|of charge)\b|\bcharge (?:for )?free\b|"
        r"\bwithout (?:paying|payment|a payment)\b|"
        r"\b(?:staff|employees?|residents?|tenants?|family|colleagues|owners?)\b[^.!?]{0,30}"
        r"\b(?:free|not pay|no cost|no charge|without pay\w*)\b"
    ),
    Intent.CONFIGURATION: re.compile(
        r"\b(?:configuration|config) (?:keys?|settings?|values?|baselines?|profiles?)\b|"
        r"\bbaselines?\b|\bheartbeat ?interval\b|\bmeter ?values? ?(?:sample )?interval\b|"
        r"\b(?:change|set|push)\b[^.!?]{0,25}\b(?:configuration|config|ocpp settings?)\b"
    ),
    Intent.QR_LABEL: re.compile(
        r"\bqr(?:[- ]?codes?)?\b[^.!?]{0,20}\b(?:labels?|stickers?|print\w*|signs?)\b|"
        r"\b(?:print|order|download|new)\w*\b[^.!?]{0,20}\b(?:qr(?:[- ]?codes?)?|labels?|stickers?)\b"
    ),
    Intent.ALERTS: re.compile(
        r"\b(?:alert|notif\w*|e-?mail|text|sms|warn) (?:me|us)\b[^.!?]{0,30}\b(?:when|if)\b|"
        r"\b(?:set ?up|add|create|get)\b[^.!?]{0,10}\b(?:alerts?|notifications?)\b|\balert rules?\b"
    ),
    Intent.REFUND: re.compile(
        r"\bhow (?:do|can|should) (?:i|we) refund\b|"
        r"\b(?:give|issue|make|send) (?:a |the )?(?:partial |full )?refunds?\b|"
        r"\brefund (?:a|the|this|that|my|our) (?:guest|driver|customer|user|visitor|session|payment)s?\b"
    ),
    Intent.MISSING_CHARGER: re.compile(
        r"\b(?:missing|not (?:showing|shown|listed|there|appearing|visible)|doesn'?t (?:show|appear)|"
        r"isn'?t (?:showing|there|listed|on)|can'?t (?:see|find)|not (?:on|in) (?:the |my )?(?:network|list))\b"
    ),
    Intent.WHAT_TO_DO: re.compile(
        r"\bwhat (?:do|should|can|must|shall) (?:i|we) do\b|"
        r"\bhow (?:do|can|should|would) (?:i|we) (?:fix|solve|sort|resolve|correct)\b|"
        r"\bhow (?:to|can it be) (?:fix|solv|sort|resolv)\w*|\bwhat(?:'s| is) the fix\b|"
        r"\bwhat now\b|\bnext steps?\b|\bwhat (?:can|should) be done\b"
    ),
    Intent.PERSON: re.compile(
        rf"\b(?:(?:want|need|like|get|have|give)\b[^.!?]{{0,15}}\b(?:a |an |some |real )?{_WHO}|"
        rf"(?:talk|speak|spk|tlak|chat|connect me)\b[^.!?]{{0,12}}\b(?:{_WHO}|support|team)|"
        r"real (?:person|human|persn|humna)|human being|"
        r"escalate|open a ticket|create a ticket|file a ticket|raise a ticket|live (?:agent|chat|support)|"
        r"(?:person|human|somebody|someone|agent) (?:to |should |please )?(?:look|check|call|contact|help)|"
        r"call me|ring me)\b"
    ),
}

# The section an intent belongs to when the classifier's pick is not one of its sections.
_HOME: dict[Intent, tuple[str, ...]] = {
    Intent.NOT_SENT: ("charger_offline",),  # the charger's link to us answers it
    Intent.FAULT: ("charger_offline", "not_charging", "guest_start_error"),
    Intent.REFUSED: ("no_permission", "guest_start_error", "not_charging"),
    Intent.CHARGED_TWICE: ("billing_dispute", "cost_breakdown"),
    Intent.REMOVE_CARD: ("account_cancel",),
    Intent.EXPORT_CSV: ("payouts_reporting",),
    Intent.LOGS: (
        "charger_offline",
        "not_charging",
        "no_permission",
        "guest_start_error",
        "charger_setup",
    ),
    Intent.PROXY: (
        "no_permission",
        "charger_offline",
        "not_charging",
        "guest_start_error",
        "charger_setup",
    ),
    Intent.PMS_CONNECT: ("charger_setup",),
    Intent.PMS_DISCONNECT: ("charger_setup",),
    Intent.FIRMWARE: ("charger_setup",),
    Intent.PRICES: ("cost_breakdown", "billing_dispute"),
    Intent.ADD_CHARGER: ("charger_setup",),
    Intent.POWER: ("not_charging", "charger_setup"),
    Intent.FREE_CHARGING: ("no_permission", "cost_breakdown"),
    Intent.CONFIGURATION: ("charger_setup",),
    Intent.QR_LABEL: ("charger_setup", "guest_start_error"),
    Intent.ALERTS: ("charger_offline",),
    Intent.REFUND: ("billing_dispute",),
    Intent.OFFLINE: ("charger_offline", "guest_start_error", "not_charging"),
    Intent.CLOCK: ("charger_clock",),  # the classifier knows no clock section: the words place it
}
# How-to questions about a task a portal page does (diagnosis.HOW_TO_HOST, the firmware path).
TASKS = (
    Intent.FIRMWARE,
    Intent.PRICES,
    Intent.ADD_CHARGER,
    Intent.POWER,
    Intent.FREE_CHARGING,
    Intent.CONFIGURATION,
    Intent.QR_LABEL,
    Intent.ALERTS,
    Intent.REFUND,
)
# The order in which an intent decides the section (a PMS request beats "offline" in its text).
_PRIORITY = (
    Intent.PMS_DISCONNECT,
    Intent.PMS_CONNECT,
    Intent.EXPORT_CSV,
    Intent.REMOVE_CARD,
    Intent.CHARGED_TWICE,
    Intent.NOT_SENT,  # "the reset didn't go through" is not a refused card
    Intent.FAULT,
    Intent.REFUSED,
    Intent.OFFLINE,
    Intent.CLOCK,  # "refused, and the clock shows 1970": the refusal places it
    Intent.LOGS,  # last: a problem that mentions the logs is placed by its problem
    Intent.PROXY,
    *TASKS,  # "offline since the firmware update": the problem places it
)
# Questions the portal answers with a page: the path alone, when no problem is in the message.
HOW_TO: frozenset[str] = frozenset({Intent.LOGS, Intent.PROXY, *TASKS})
_ASKS_A_PERSON = re.compile(
    r"\b(?:talk|speak|human|agent|person|somebody|someone|escalate|ticket|call me)\b"
)
# A how-to question never says something is broken: "the charger won't connect" is a problem.
_BROKEN = re.compile(
    r"\b(?:not|no longer|won'?t|can'?t|cannot|couldn'?t|doesn'?t|didn'?t|isn'?t|wasn'?t|"
    r"fail\w*|error\w*|broken|stuck|wrong|why)\b|n't\b"
)


# "Thanks, found it", "ah ok that makes sense": the answer solved it. Not when the same message
# still has a problem or a question in it.
_THANKS = re.compile(
    r"\b(?:thanks?|thank (?:you|u)|thx|ty|cheers|makes sense|got it|gotcha|found it|that (?:worked|works|"
    r"did it|fixed it|helps|helped|explains it)|it works|working now|works now|all good|sorted|solved|"
    r"understood|perfect|great|brilliant|awesome)\b"
)
_STILL_A_PROBLEM = re.compile(
    r"\?|\b(?:not|no|never|still|but|refund|person|human|someone|agent|why|wrong|however)\b|n't\b|nt\b"
)


# What a message asks about when it has a problem in it, not only a question.
_PROBLEMS = frozenset(
    {
        Intent.FAULT,
        Intent.OFFLINE,
        Intent.REFUSED,
        Intent.CHARGED_TWICE,
        Intent.PERSON,
        Intent.NOT_SENT,
        Intent.CLOCK,  # "why does the log say charger clock wrong" asks about the clock
    }
)


def only_asks_where(found: AbstractSet[str]) -> bool:
    """Whether the message only asks where to read or do something (a charger's logs, its proxy,
    a firmware update, a price, a new charger …), with no problem in it: the answer is the path
    alone, without a section's steps or questions."""
    return not HOW_TO.isdisjoint(found) and not _PROBLEMS.intersection(found)


def intents(text: str) -> set[Intent]:
    """Return the intents a message shows."""
    lowered = " ".join(text.lower().replace("’", "'").split())
    found = {intent for intent, pattern in _PATTERNS.items() if pattern.search(lowered)}
    if len(lowered) <= 80 and _THANKS.search(lowered) and not _STILL_A_PROBLEM.search(lowered):
        found.add(Intent.RESOLVED)
    if _BROKEN.search(lowered):
        # "I can't add the charger", "why did the price change": a problem, not a how-to.
        found -= HOW_TO - {Intent.LOGS, Intent.PROXY}
    if Intent.ALERTS in found:
        found -= {Intent.OFFLINE, Intent.FAULT}  # "email me when one goes offline": a condition
    if Intent.FREE_CHARGING in found and not _ASKS_A_PERSON.search(lowered):
        found.discard(Intent.PERSON)  # "give my staff free charging" asks for no person
    if Intent.PMS_DISCONNECT in found:
        found.discard(Intent.PMS_CONNECT)
    if Intent.PMS_CONNECT in found and re.search(
        r"\b(?:not|isn'?t|won'?t|stopped|fail\w*)\b", lowered
    ):
        found.discard(Intent.PMS_CONNECT)  # "Guesty isn't syncing": a sync problem, not a request
    return found


def section_for(found: set[Intent], predicted: str) -> str:
    """Return the section the intents put the message in (the prediction when it fits)."""
    for intent in _PRIORITY:
        if intent in found:
            home = _HOME[intent]
            return predicted if predicted in home else home[0]
    return predicted
