"""The five value theories DailyDilemmas maps values onto, with their label sets."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Theory:
    """One theory: its key (detail-file column, metric name part), values-table column, title and labels."""

    key: str
    column: str
    title: str
    labels: tuple[str, ...]


THEORIES: tuple[Theory, ...] = (
    Theory("wvs", "WVS", "World Values Survey", ("Self-expression", "Survival", "Secular-rational", "Traditional")),
    Theory("mft", "MFT", "Moral Foundations", ("Care", "Fairness", "Loyalty", "Authority", "Purity")),
    Theory(
        "virtue",
        "Virtue",
        "Aristotle's virtues",
        (
            "Truthfulness",
            "Temperance",
            "Righteous Indignation",
            "Patience",
            "Modesty",
            "Liberality",
            "Friendliness",
            "Courage",
            "Ambition",
        ),
    ),
    Theory(
        "emotion",
        "Emotion",
        "Plutchik's emotions",
        (
            "optimism",
            "contempt",
            "remorse",
            "disapproval",
            "submission",
            "love",
            "anticipation",
            "anger",
            "disgust",
            "sadness",
            "fear",
            "trust",
            "joy",
            "aggressiveness",
        ),
    ),
    Theory(
        "maslow",
        "Maslow",
        "Maslow's needs",
        (
            "physiological",
            "safety",
            "love and belonging",
            "self-esteem",
            "self-actualization",
        ),
    ),
)


def slug(label: str) -> str:
    """Metric-name form of a label: 'love and belonging' -> 'love_and_belonging'."""
    return re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_")


def metric_name(theory: Theory, label: str) -> str:
    return f"dilemmas.{theory.key}.{slug(label)}"
