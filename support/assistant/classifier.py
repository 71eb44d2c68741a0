"""Classify a support message into a seed-003 topic, offline, from a model file kept in the repo.

Pure: no Django. A message becomes features: its words (lower-cased, lightly stemmed, each unknown
word corrected to the nearest known one so typos land), word pairs, concept tags from a hand-built
lexicon (so "38 dollars" and "50 euros" are both @money, "fob" and "badge" both @card), and
character 4-grams of longer words. A multinomial naive Bayes model over these features is trained
from support/assistant/data/labelled.tsv (`manage.py assistant_accuracy --write` writes the
weights to model.json); it was chosen over a library model because 300 short sentences need no
more, it trains in a second, and the weights are a small readable JSON file (docs/support.md).
"""

from __future__ import annotations

import difflib
import json
import math
import re
from collections import Counter, defaultdict
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
    "@money": ("dollar", "euro", "pound", "buck", "usd", "eur", "gbp", "cent", "<money>", "amount",
               "price", "pay", "paid", "payment", "cost", "fee", "bill", "charg_money"),
    "@refund": ("refund", "reimburs", "chargeback", "disput", "money_back", "overcharg", "twice",
                "double", "mistak", "wrong", "unfair"),
    "@card": ("card", "rfid", "fob", "badge", "tag", "keycard", "key_card", "chip", "reader", "swipe",
              "tap"),
    "@denied": ("allow", "permiss", "permision", "denied", "deni", "refus", "reject", "unauthor",
                "authoris", "authoriz", "restrict", "access", "locked", "block", "invalid", "declin"),
    "@dead": ("offline", "ofline", "dead", "down", "dark", "unrespons", "unreach", "disconnect",
              "outag", "kaput", "breaker", "boot", "wifi", "internet", "network", "unavail", "respond",
              "order"),
    "@plugged": ("plug", "plugged", "cable", "connector", "connect", "batteri", "energi", "juic",
                 "kwh_zero", "stop", "quit", "interrupt", "interupt", "cut", "beep", "flash"),
    "@account": ("account", "profil", "subscript", "subscripton", "plan", "membership", "member",
                 "data", "gdpr", "personal", "recurr", "monthli", "close", "delet", "eras",
                 "cancel", "cancl", "unsubscrib", "terminat", "deactivat", "lease", "move", "moved"),
    "@email": ("email", "emial", "mail", "gmail", "address", "login", "username", "contact",
               "inbox", "transfer", "hand"),
    "@setup": ("install", "assign", "pms", "guesti", "guesty", "hospit", "hospitable", "track",
               "sync", "integr", "onboard", "regist", "list", "appear", "link", "unit", "rental",
               "booking", "reserv", "airbnb", "electrician", "new"),
    "@qr": ("qr", "scan", "code", "sticker", "page", "link", "app", "website", "web", "browser",
            "load", "button", "checkout", "spin", "crash", "frozen", "froze", "camera"),
    "@payout": ("payout", "payot", "earn", "revenu", "statement", "report", "csv", "export", "paid_me",
                "deposit", "bank", "transfer", "dashboard", "metric", "accountant", "tax", "annual"),
    "@breakdown": ("breakdown", "calcul", "explain", "itemiz", "line", "receipt", "rate", "per",
                   "expens", "pricey", "much", "understand", "detail", "total", "kwh"),
}
_CONCEPT_OF: dict[str, list[str]] = defaultdict(list)
for _concept, _words in LEXICON.items():
    for _word in _words:
        _CONCEPT_OF[_word].append(_concept)

_MONEY = re.compile(r"(?:[$€£]\s*\d+(?:[.,]\d+)?|\d+(?:[.,]\d+)?\s*(?:dollars?|euros?|eur|usd|gbp|bucks|pounds?))")
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


# Feature weights, chosen by 5-fold cross-validation on the labelled set (docs/support.md).
CONCEPT_WEIGHT = 2.0
CHAR_WEIGHT = 0.25
BIGRAM_WEIGHT = 0.5


def features(text: str, vocabulary: frozenset[str] = frozenset(), cache: dict | None = None) -> dict[str, float]:
    """Return the weighted features of a message."""
    cache = {} if cache is None else cache
    ws = [_correct(w, vocabulary, cache) for w in words(text)]
    feats: defaultdict[str, float] = defaultdict(float)
    for w in ws:
        feats["w:" + w] += 1.0
        for concept in _concepts(w):
            feats[concept] += CONCEPT_WEIGHT
        if len(w) >= 5:
            padded = f"^{w}$"
            for i in range(len(padded) - 3):
                feats["c:" + padded[i : i + 4]] += CHAR_WEIGHT
    for a, b in zip(ws, ws[1:], strict=False):
        feats[f"b:{a}_{b}"] += BIGRAM_WEIGHT
    return feats


@dataclass
class Model:
    classes: list[str]
    log_prior: list[float]
    # feature -> log P(feature | class) per class; features unseen in training are ignored.
    log_likelihood: dict[str, list[float]]
    vocabulary: frozenset[str] = field(default_factory=frozenset)

    def to_json(self) -> str:
        return json.dumps({
            "classes": self.classes,
            "log_prior": [round(v, 4) for v in self.log_prior],
            "vocabulary": sorted(self.vocabulary),
            "log_likelihood": {f: [round(v, 4) for v in vs] for f, vs in sorted(self.log_likelihood.items())},
        }, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Model:
        data = json.loads(text)
        return cls(data["classes"], data["log_prior"], data["log_likelihood"], frozenset(data["vocabulary"]))


def train(examples: list[tuple[str, str]], *, alpha: float = 0.3) -> Model:
    """Return a naive Bayes model trained on (topic, text) pairs."""
    vocabulary = frozenset(w for _topic, text in examples for w in words(text))
    classes = sorted({topic for topic, _text in examples})
    counts: dict[str, defaultdict[str, float]] = {c: defaultdict(float) for c in classes}
    docs = Counter(topic for topic, _text in examples)
    for topic, text in examples:
        for name, weight in features(text, vocabulary).items():
            counts[topic][name] += weight
    all_features = sorted(set().union(*(set(c) for c in counts.values())))
    n = len(all_features)
    log_likelihood: dict[str, list[float]] = {f: [] for f in all_features}
    for c in classes:
        total = sum(counts[c].values())
        for f in all_features:
            log_likelihood[f].append(math.log((counts[c].get(f, 0.0) + alpha) / (total + alpha * n)))
    log_prior = [math.log(docs[c] / len(examples)) for c in classes]
    return Model(classes, log_prior, log_likelihood, vocabulary)


@dataclass(frozen=True)
class Prediction:
    topic: str
    confidence: float


# Below this posterior, or with no known feature at all, the message is "other".
MIN_CONFIDENCE = 0.35


def classify(model: Model, text: str) -> Prediction:
    """Return the most likely topic of `text` and its posterior probability."""
    feats = {f: v for f, v in features(text, model.vocabulary).items() if f in model.log_likelihood}
    if not any(f.startswith(("w:", "@")) for f in feats):
        return Prediction(OTHER, 1.0)
    scores = list(model.log_prior)
    for f, weight in feats.items():
        for i, value in enumerate(model.log_likelihood[f]):
            scores[i] += weight * value
    top = max(scores)
    exp = [math.exp(s - top) for s in scores]
    best = max(range(len(scores)), key=scores.__getitem__)
    confidence = exp[best] / sum(exp)
    if confidence < MIN_CONFIDENCE:
        return Prediction(OTHER, confidence)
    return Prediction(model.classes[best], confidence)


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


def accuracy(model: Model, examples: list[tuple[str, str]]) -> tuple[float, list[tuple[str, str, str]]]:
    """Return the share classified right and the misses as (expected, got, text)."""
    misses = []
    for topic, text in examples:
        got = classify(model, text).topic
        if got != topic:
            misses.append((topic, got, text))
    return (1 - len(misses) / len(examples)) if examples else 0.0, misses
