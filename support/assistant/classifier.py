"""Classify a support message into a seed-003 topic, offline, from a model file kept in the repo.

Pure: no Django. A message becomes features: its words (lower-cased, lightly stemmed, each unknown
word corrected to the nearest known one so typos land), word pairs, negated words ("won't let me"),
concept tags from a hand-built lexicon (so "38 dollars" and "50 euros" are both @money, "fob" and
"badge" both @card), and character 3- to 5-grams of every word; each vector is scaled to unit
length. A multinomial logistic regression (softmax; AdaGrad, L2, fixed seed) over these features is
trained from support/assistant/data/labelled.tsv, about 600 sentences (`manage.py
assistant_accuracy --write` writes the weights to model.json). Pure Python was chosen over a
library model because that many short sentences need no more, and the weights are a readable JSON
file (docs/support.md). A best topic below MIN_CONFIDENCE is `other`.
"""

from __future__ import annotations

import difflib
import json
import math
import random
import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

OTHER = "other"

# Words that say nothing about the topic.
STOPWORDS = frozenset(
    "a an the i me my we our us you your it its it's is are was were be been am to of in on at for "
    "and or but so this that these there here with by from as do does did have has had can could "
    "would should will just please pls hi hello hey im i'm ive i've what why how when where which "
    "who all any some then than too very really also again".split()
)

# Concept lexicon: words (after stemming) that mean the same thing to support.
LEXICON: dict[str, tuple[str, ...]] = {
    "@money": (
        "dollar",
        "euro",
        "pound",
        "buck",
        "usd",
        "eur",
        "gbp",
        "cent",
        "<money>",
        "amount",
        "price",
        "pay",
        "paid",
        "payment",
        "cost",
        "fee",
        "bill",
        "charg_money",
    ),
    "@refund": (
        "refund",
        "reimburs",
        "chargeback",
        "disput",
        "money_back",
        "overcharg",
        "twice",
        "double",
        "mistak",
        "wrong",
        "unfair",
        "revers",
        "ripoff",
        "rip",
        "scam",
        "correct",
        "difference",
        "back",
        "took",
        "stole",
        "unrecogn",
    ),
    "@card": (
        "card",
        "rfid",
        "fob",
        "badge",
        "tag",
        "keycard",
        "key_card",
        "chip",
        "reader",
        "swipe",
        "tap",
    ),
    "@denied": (
        "allow",
        "permiss",
        "permision",
        "denied",
        "deni",
        "refus",
        "reject",
        "unauthor",
        "authoris",
        "authoriz",
        "restrict",
        "access",
        "locked",
        "block",
        "invalid",
        "declin",
    ),
    "@dead": (
        "offline",
        "ofline",
        "dead",
        "down",
        "dark",
        "unrespons",
        "unreach",
        "disconnect",
        "outag",
        "kaput",
        "breaker",
        "boot",
        "wifi",
        "internet",
        "network",
        "unavail",
        "respond",
        "order",
        "die",
        "died",
        "dies",
        "dying",
        "broken",
        "broke",
        "storm",
        "power",
        "router",
        "blank",
        "grey",
        "gray",
        "greyed",
        "light",
        "lights",
        "led",
        "switch",
    ),
    "@plugged": (
        "plug",
        "plugged",
        "cable",
        "connector",
        "connect",
        "batteri",
        "energi",
        "juic",
        "kwh_zero",
        "stop",
        "quit",
        "interrupt",
        "interupt",
        "cut",
        "beep",
        "flash",
        "prepar",
        "percent",
        "flow",
        "flowing",
        "drop",
        "paus",
        "resum",
        "vehicl",
        "car",
        "tesla",
        "hook",
        "hooked",
        "click",
        "lock",
        "kw",
        "halfway",
        "overnight",
    ),
    "@account": (
        "account",
        "profil",
        "subscript",
        "subscripton",
        "plan",
        "membership",
        "member",
        "data",
        "gdpr",
        "personal",
        "recurr",
        "monthli",
        "close",
        "delet",
        "eras",
        "cancel",
        "cancl",
        "unsubscrib",
        "terminat",
        "deactivat",
        "lease",
        "move",
        "moved",
    ),
    "@email": (
        "email",
        "emial",
        "mail",
        "gmail",
        "address",
        "login",
        "username",
        "contact",
        "inbox",
        "transfer",
        "hand",
        "sign",
        "signin",
        "log",
        "hotmail",
        "outlook",
        "yahoo",
        "notif",
        "handov",
        "colleagu",
        "partner",
        "manag",
    ),
    "@setup": (
        "install",
        "assign",
        "pms",
        "guesti",
        "guesty",
        "hospit",
        "hospitable",
        "track",
        "sync",
        "integr",
        "onboard",
        "regist",
        "list",
        "appear",
        "link",
        "unit",
        "rental",
        "booking",
        "reserv",
        "airbnb",
        "electrician",
        "new",
        "installer",
        "serial",
        "add",
        "second",
        "another",
        "admin",
        "properti",
    ),
    "@qr": (
        "qr",
        "scan",
        "code",
        "sticker",
        "page",
        "link",
        "app",
        "website",
        "web",
        "browser",
        "load",
        "button",
        "checkout",
        "spin",
        "crash",
        "frozen",
        "froze",
        "camera",
        "freez",
        "stuck",
        "error",
        "pressed",
        "press",
        "start",
    ),
    "@payout": (
        "payout",
        "payot",
        "earn",
        "revenu",
        "statement",
        "report",
        "csv",
        "export",
        "paid_me",
        "deposit",
        "bank",
        "transfer",
        "dashboard",
        "metric",
        "accountant",
        "tax",
        "annual",
        "yearli",
        "quarter",
        "utiliz",
        "utilis",
        "host",
        "sustainab",
        "histori",
        "usag",
        "arriv",
        "received",
        "net",
    ),
    "@breakdown": (
        "breakdown",
        "calcul",
        "explain",
        "itemiz",
        "line",
        "receipt",
        "rate",
        "per",
        "expens",
        "pricey",
        "much",
        "understand",
        "detail",
        "total",
        "kwh",
        "consist",
        "includ",
        "compos",
        "made",
        "kilowatt",
        "unit",
        "worked",
        "come",
        "part",
    ),
}
_CONCEPT_OF: dict[str, list[str]] = defaultdict(list)
for _concept, _words in LEXICON.items():
    for _word in _words:
        _CONCEPT_OF[_word].append(_concept)

# An amount: "$38", "50 euros", "41 bucks", or a bare number with cents ("14.20").
_MONEY = re.compile(
    r"(?:[$€£]\s*\d+(?:[.,]\d+)?|\d+(?:[.,]\d+)?\s*(?:dollars?|euros?|eur|usd|gbp|bucks|pounds?)"
    r"|\b\d+[.,]\d\d\b)"
)
_WORD = re.compile(r"[a-z<>_']+|\d+")
_SUFFIXES = ("ations", "ation", "ingly", "ings", "ing", "edly", "ed", "ies", "es", "ly", "s")


def stem(word: str) -> str:
    """Return a crude stem: enough for "charged/charging/charges" to meet."""
    if word.startswith("<") or len(word) <= 4:
        return word
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            word = word[: -len(suffix)]
            break
    if word.endswith("y") and len(word) > 4:
        word = word[:-1] + "i"
    return word


def words(text: str) -> list[str]:
    """Return the message's meaningful words, stemmed, money amounts as <money>."""
    text = text.lower().replace("’", "'")
    text = _MONEY.sub(" <money> ", text)
    text = text.replace("money back", "money_back").replace("key card", "key_card")
    text = re.sub(r"\b0\s*kwh\b", " kwh_zero ", text)
    out = []
    for token in _WORD.findall(text):
        token = token.strip("'")
        if not token or token in STOPWORDS:
            continue
        if token.isdigit():
            continue
        out.append(stem(token))
    return out


def _correct(word: str, vocabulary: frozenset[str], cache: dict[str, str]) -> str:
    if word in vocabulary or word in _CONCEPT_OF or len(word) < 4 or word.startswith("<"):
        return word
    if word not in cache:
        close = difflib.get_close_matches(word, vocabulary | _CONCEPT_OF.keys(), n=1, cutoff=0.8)
        cache[word] = close[0] if close else word
    return cache[word]


def _concepts(word: str) -> list[str]:
    found = list(_CONCEPT_OF.get(word, ()))
    if not found:
        for key, concepts in _CONCEPT_OF.items():
            # Stems of lexicon words that are prefixes (e.g. "unrespons" in "unresponsive").
            if len(key) >= 5 and word.startswith(key):
                found.extend(concepts)
    return found


# Words after which the next two words are negated ("not charging", "won't start", "no lights"):
# "n:charg" is a different feature from "w:charg", so "charging" and "not charging" can part.
NEGATORS = frozenset(
    "not no never nothing nobody none cannot cant can't dont don't doesnt doesn't didnt didn't wont "
    "won't isnt isn't arent aren't wasnt wasn't havent haven't hasnt hasn't aint ain't without "
    "neither nor zero".split()
)
_NEGATION_SPAN = 2
# What a negated word means to support: "won't let me" is a refusal, "not charging" a charge that
# does not flow, "doesn't load" a guest page that fails.
NEGATED_CONCEPTS: dict[str, str] = {
    "let": "@denied",
    "accept": "@denied",
    "recogn": "@denied",
    "work": "@dead",
    "charg": "@plugged",
    "go": "@plugged",
    "flow": "@plugged",
    "load": "@qr",
    "scan": "@qr",
    "start": "@qr",
    "open": "@qr",
    "respond": "@dead",
    "turn": "@dead",
    "light": "@dead",
    "arriv": "@payout",
    "paid": "@payout",
    "recognis": "@refund",
    "recogniz": "@refund",
    "need": "@account",
    "want": "@account",
    "live": "@account",
}

# Feature weights, chosen by 5-fold cross-validation on labelled.tsv (docs/support.md).
CONCEPT_WEIGHT = 1.0
CHAR_WEIGHT = 0.1
BIGRAM_WEIGHT = 0.6
NEGATION_WEIGHT = 0.8


def _tokens(text: str) -> list[str]:
    """Return the raw lower-cased tokens, negators kept (words() drops stopwords, not negators)."""
    text = text.lower().replace("’", "'")
    text = _MONEY.sub(" <money> ", text)
    text = text.replace("money back", "money_back").replace("key card", "key_card")
    text = re.sub(r"\b0\s*kwh\b", " kwh_zero ", text)
    return [
        t.strip("'") if t.strip("'") in NEGATORS or "'" not in t else t for t in _WORD.findall(text)
    ]


def features(
    text: str, vocabulary: frozenset[str] = frozenset(), cache: dict | None = None
) -> dict[str, float]:
    """Return the weighted features of a message: words, word pairs, negated words, concepts, char n-grams."""
    cache = {} if cache is None else cache
    ws: list[str] = []
    negated: list[str] = []
    pending = 0
    for token in _tokens(text):
        if token in NEGATORS or token.endswith("n't"):
            pending = _NEGATION_SPAN
            continue
        token = token.strip("'")
        if not token or token in STOPWORDS or token.isdigit():
            continue
        word = _correct(stem(token), vocabulary, cache)
        ws.append(word)
        if pending:
            negated.append(word)
            pending -= 1
    feats: defaultdict[str, float] = defaultdict(float)
    for w in ws:
        feats["w:" + w] += 1.0
        for concept in _concepts(w):
            feats[concept] += CONCEPT_WEIGHT
        padded = f"^{w}$"
        for n in (3, 4, 5):
            for i in range(len(padded) - n + 1):
                feats["c:" + padded[i : i + n]] += CHAR_WEIGHT
    for w in negated:
        feats["n:" + w] += NEGATION_WEIGHT
        if w in NEGATED_CONCEPTS:
            feats[NEGATED_CONCEPTS[w]] += CONCEPT_WEIGHT
    for a, b in zip(ws, ws[1:], strict=False):
        feats[f"b:{a}_{b}"] += BIGRAM_WEIGHT
    if not ws:
        feats["@empty"] = 1.0
    return feats


@dataclass
class Model:
    """A multinomial logistic regression: one weight per (feature, topic) plus a bias per topic."""

    classes: list[str]
    bias: list[float]
    # feature -> weight per class; features unseen in training are ignored.
    weights: dict[str, list[float]]
    vocabulary: frozenset[str] = field(default_factory=frozenset)

    def to_json(self) -> str:
        return json.dumps(
            {
                "kind": "logistic-regression",
                "classes": self.classes,
                "bias": [round(v, 4) for v in self.bias],
                "vocabulary": sorted(self.vocabulary),
                "weights": {f: [round(v, 3) for v in vs] for f, vs in sorted(self.weights.items())},
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, text: str) -> Model:
        data = json.loads(text)
        return cls(data["classes"], data["bias"], data["weights"], frozenset(data["vocabulary"]))

    def probabilities(self, feats: dict[str, float]) -> list[float]:
        """Return P(topic | features) for each class (softmax of the linear scores)."""
        scores = list(self.bias)
        for f, value in feats.items():
            row = self.weights.get(f)
            if row is not None:
                for i, w in enumerate(row):
                    scores[i] += value * w
        top = max(scores)
        exp = [math.exp(s - top) for s in scores]
        total = sum(exp)
        return [e / total for e in exp]


# Training settings, chosen by 5-fold cross-validation on labelled.tsv.
EPOCHS = 40
LEARNING_RATE = 0.5
L2 = 1e-4


def _scaled(feats: dict[str, float]) -> dict[str, float]:
    # Unit length, so a long message does not out-shout a short one.
    norm = math.sqrt(sum(v * v for v in feats.values())) or 1.0
    return {f: v / norm for f, v in feats.items()}


def train(examples: list[tuple[str, str]], *, epochs: int = EPOCHS, l2: float = L2) -> Model:
    """Return a logistic regression trained on (topic, text) pairs (AdaGrad, L2, fixed seed)."""
    vocabulary = frozenset(w for _topic, text in examples for w in words(text))
    classes = sorted({topic for topic, _text in examples})
    index = {c: i for i, c in enumerate(classes)}
    data = [(index[topic], _scaled(features(text, vocabulary))) for topic, text in examples]
    k = len(classes)
    weights: dict[str, list[float]] = defaultdict(lambda: [0.0] * k)
    squares: dict[str, list[float]] = defaultdict(lambda: [1e-8] * k)
    bias = [0.0] * k
    bias_squares = [1e-8] * k
    model = Model(classes, bias, weights, vocabulary)
    order = list(range(len(data)))
    rng = random.Random(16)
    for _epoch in range(epochs):
        rng.shuffle(order)
        for j in order:
            target, feats = data[j]
            probs = model.probabilities(feats)
            for i in range(k):
                grad = probs[i] - (1.0 if i == target else 0.0)
                bias_squares[i] += grad * grad
                bias[i] -= LEARNING_RATE * grad / math.sqrt(bias_squares[i])
                for f, value in feats.items():
                    g = grad * value + l2 * weights[f][i]
                    squares[f][i] += g * g
                    weights[f][i] -= LEARNING_RATE * g / math.sqrt(squares[f][i])
    # Drop weights too small to matter, to keep model.json small.
    kept = {f: ws for f, ws in weights.items() if max(abs(w) for w in ws) >= 0.01}
    return Model(classes, bias, kept, vocabulary)


@dataclass(frozen=True)
class Prediction:
    topic: str
    confidence: float


# Below this probability, or with no known feature at all, the message is "other".
MIN_CONFIDENCE = 0.3


def classify(model: Model, text: str) -> Prediction:
    """Return the most likely topic of `text` and its probability."""
    feats = {
        f: v for f, v in _scaled(features(text, model.vocabulary)).items() if f in model.weights
    }
    if not any(f.startswith(("w:", "@")) for f in feats):
        return Prediction(OTHER, 1.0)
    probs = model.probabilities(feats)
    best = max(range(len(probs)), key=probs.__getitem__)
    if probs[best] < MIN_CONFIDENCE:
        return Prediction(OTHER, probs[best])
    return Prediction(model.classes[best], probs[best])


def read_labelled(path: Path) -> list[tuple[str, str]]:
    """Return (topic, text) pairs of a labelled TSV file (comment lines start with #)."""
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        topic, text = line.split("\t", 1)
        pairs.append((topic.strip(), text.strip()))
    return pairs


def held_out(text: str, *, every: int = 4) -> bool:
    """Return whether this example belongs to the held-out split (a stable hash, 1 in `every`)."""
    value = 0
    for ch in text:
        value = (value * 131 + ord(ch)) % 1_000_003
    return value % every == 0


def accuracy(
    model: Model, examples: list[tuple[str, str]]
) -> tuple[float, list[tuple[str, str, str]]]:
    """Return the share classified right and the misses as (expected, got, text)."""
    misses = []
    for topic, text in examples:
        got = classify(model, text).topic
        if got != topic:
            misses.append((topic, got, text))
    return (1 - len(misses) / len(examples)) if examples else 0.0, misses
