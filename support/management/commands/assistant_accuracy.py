"""Measure the assistant's classifier on the held-out part of the labelled set (and retrain it)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from support.assistant import classifier
from support.assistant.service import MODEL_PATH

LABELLED = MODEL_PATH.parent / "labelled.tsv"


class Command(BaseCommand):
    help = (
        "Train on 3/4 of support/assistant/data/labelled.tsv, report accuracy on the other 1/4 (never "
        "seen in training) and 5-fold cross-validation; --write retrains on everything and writes model.json."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--write", action="store_true", help="Write model.json trained on the whole set.")
        parser.add_argument("--misses", action="store_true", help="List the held-out messages it got wrong.")

    def handle(self, *args: Any, **options: Any) -> None:
        examples = classifier.read_labelled(LABELLED)
        train = [e for e in examples if not classifier.held_out(e[1])]
        test = [e for e in examples if classifier.held_out(e[1])]
        score, misses = classifier.accuracy(classifier.train(train), test)
        self.stdout.write(f"labelled examples: {len(examples)} ({len(train)} train, {len(test)} held out)")
        self.stdout.write(f"held-out accuracy: {score:.1%} ({len(test) - len(misses)}/{len(test)})")
        right = 0
        for fold in range(5):
            fold_train = [e for i, e in enumerate(examples) if i % 5 != fold]
            fold_test = [e for i, e in enumerate(examples) if i % 5 == fold]
            fold_score, _ = classifier.accuracy(classifier.train(fold_train), fold_test)
            right += round(fold_score * len(fold_test))
        self.stdout.write(f"5-fold cross-validated accuracy: {right / len(examples):.1%}")
        by_topic = Counter(expected for expected, _got, _text in misses)
        if by_topic:
            self.stdout.write("held-out misses by topic: " + ", ".join(f"{t} {n}" for t, n in sorted(by_topic.items())))
        if options["misses"]:
            for expected, got, text in misses:
                self.stdout.write(f"  {expected:>18} -> {got:<18} {text}")
        if options["write"]:
            MODEL_PATH.write_text(classifier.train(examples).to_json(), encoding="utf-8")
            self.stdout.write(f"wrote {MODEL_PATH} (trained on all {len(examples)} examples)")
