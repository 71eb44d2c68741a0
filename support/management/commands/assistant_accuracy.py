"""Measure the assistant: the conversation test set (first answers, follow-ups, hand-offs) and its
topic classifier on held-out messages (and retrain it)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from support.assistant import classifier, evaluation
from support.assistant.service import MODEL_PATH

DATA = MODEL_PATH.parent
LABELLED = DATA / "labelled.tsv"
# Written apart from labelled.tsv and never trained on (docs/support.md): fresh.tsv before any
# tuning of the linear model, sealed.tsv before tuning and measured only once tuning was over.
UNTOUCHED = (DATA / "fresh.tsv", DATA / "sealed.tsv")


class Command(BaseCommand):
    help = (
        "Report first-answer accuracy, follow-up accuracy and hand-off completeness over the "
        "conversation test set (data/conversations.toml, each run against its live situation and "
        "rolled back), then the classifier's accuracy: on 1/4 of labelled.tsv held out from training, 5-fold "
        "cross-validated, and with the shipped model on fresh.tsv and sealed.tsv (never trained on); "
        "--write retrains on all of labelled.tsv and writes model.json."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--write", action="store_true", help="Write model.json trained on labelled.tsv."
        )
        parser.add_argument(
            "--misses", action="store_true", help="List the held-out messages it got wrong."
        )
        parser.add_argument(
            "--no-cv", action="store_true", help="Skip the (slow) 5-fold cross-validation."
        )
        parser.add_argument(
            "--conversations",
            action="store_true",
            help="Only the conversation test set (skip the classifier figures).",
        )

    def _conversations(self, show: bool) -> None:
        report = evaluation.evaluate()
        for name, (right, total) in (
            ("first-answer accuracy", report.first),
            ("follow-up accuracy", report.followup),
            ("hand-off completeness", report.handoff),
        ):
            self.stdout.write(f"{name}: {right / max(total, 1):.1%} ({right}/{total})")
        if show:
            for result in report.results:
                for problem in result.problems:
                    self.stdout.write(f"  {result.conversation}: {problem}")

    def _report(
        self, name: str, score: float, total: int, misses: list[tuple[str, str, str]], show: bool
    ) -> None:
        self.stdout.write(f"{name}: {score:.1%} ({total - len(misses)}/{total})")
        by_topic = Counter(expected for expected, _got, _text in misses)
        if by_topic:
            self.stdout.write(
                "  misses by topic: " + ", ".join(f"{t} {n}" for t, n in sorted(by_topic.items()))
            )
        if show:
            for expected, got, text in misses:
                self.stdout.write(f"  {expected:>18} -> {got:<18} {text}")

    def handle(self, *args: Any, **options: Any) -> None:
        self._conversations(options["misses"])
        if options["conversations"]:
            return
        examples = classifier.read_labelled(LABELLED)
        train = [e for e in examples if not classifier.held_out(e[1])]
        test = [e for e in examples if classifier.held_out(e[1])]
        self.stdout.write(
            f"labelled examples: {len(examples)} ({len(train)} train, {len(test)} held out)"
        )
        score, misses = classifier.accuracy(classifier.train(train), test)
        self._report(
            "held-out accuracy (labelled.tsv, 1 in 4)", score, len(test), misses, options["misses"]
        )
        if not options["no_cv"]:
            right = 0
            for fold in range(5):
                fold_train = [e for i, e in enumerate(examples) if i % 5 != fold]
                fold_test = [e for i, e in enumerate(examples) if i % 5 == fold]
                _score, fold_misses = classifier.accuracy(classifier.train(fold_train), fold_test)
                right += len(fold_test) - len(fold_misses)
            self.stdout.write(
                f"5-fold cross-validated accuracy: {right / len(examples):.1%} ({right}/{len(examples)})"
            )
        if options["write"]:
            MODEL_PATH.write_text(classifier.train(examples).to_json(), encoding="utf-8")
            self.stdout.write(f"wrote {MODEL_PATH} (trained on all {len(examples)} examples)")
        shipped = classifier.Model.from_json(MODEL_PATH.read_text(encoding="utf-8"))
        texts = {text for _topic, text in examples}
        for path in UNTOUCHED:
            untouched = classifier.read_labelled(Path(path))
            leaked = [text for _topic, text in untouched if text in texts]
            if leaked:
                self.stderr.write(
                    f"{path.name}: {len(leaked)} messages also in labelled.tsv: {leaked[:3]}"
                )
            score, misses = classifier.accuracy(shipped, untouched)
            self._report(
                f"shipped model on {path.name} (never trained on)",
                score,
                len(untouched),
                misses,
                options["misses"],
            )
