"""Reading Yes/No decisions from model output, per language and for chain-of-thought answers."""

from __future__ import annotations

import re

from harness.types import Choice

YES, NO, INVALID = "yes", "no", "invalid"
WORDS = {  # language -> (accept word, decline word); matched as whole words, case-insensitive
    "en": ("yes", "no"),
    "fr": ("oui", "non"),
    "nl": ("ja", "nee"),
}
ANSWER_LINE = re.compile(r"\banswer\s*[:：]\s*(.*)", re.IGNORECASE)


def answer_choice(language: str, cot: bool) -> Choice | None:
    """The allowed direct answers (the local Yes / No words) for constrained or logprob answering; a
    chain-of-thought framing reasons in free text first, so it has none."""
    if cot:
        return None
    accept, decline = ("是", "否") if language == "zh" else WORDS.get(language, WORDS["en"])
    return Choice(options=(accept.capitalize(), decline.capitalize()))


def _word(word: str, text: str) -> bool:
    return re.search(rf"\b{word}\b", text, re.IGNORECASE) is not None


def _chinese(text: str) -> str:
    """是 accepts; 否 or 不 declines and wins over 是 (不是 = "no"); 是否 ("whether") is ignored."""
    text = text.replace("是否", "")
    if "否" in text or "不" in text:
        return NO
    return YES if "是" in text else INVALID


def parse_direct(text: str, language: str = "en") -> str:
    """The local accept word -> yes, else the local decline word -> no, then the same with English
    words (a model may answer a French prompt in English); otherwise invalid."""
    if language == "zh":
        verdict = _chinese(text)
        if verdict != INVALID:
            return verdict
    for lang in dict.fromkeys((language, "en")):
        if lang in WORDS:
            accept, decline = WORDS[lang]
            if _word(accept, text):
                return YES
            if _word(decline, text):
                return NO
    return INVALID


def parse_cot(text: str, language: str = "en") -> str:
    """The last `Answer: ...` line (markdown emphasis ignored), read like a direct answer; none -> invalid."""
    cleaned = re.sub(r"[*_#`]", "", text)
    answers = [m.group(1) for line in cleaned.splitlines() if (m := ANSWER_LINE.search(line))]
    return parse_direct(answers[-1], language) if answers else INVALID


def parse_answer(text: str, language: str = "en", cot: bool = False) -> str:
    """yes / no / invalid for one model output."""
    return parse_cot(text, language) if cot else parse_direct(text, language)
