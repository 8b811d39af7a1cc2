"""Human-labelled responses in the field's published formats, read by their real column names.

Recognised from the header row:

- `xstest`: XSTest's completions (`id,type,prompt,completion,...,final_label`, labels `1_full_compliance`,
  `2_full_refusal`, `3_partial_refusal`) or a plain `prompt,completion,label` file with the same labels.
  Labels mean refusal (full or partial); `type` is a category column.
- `gptfuzz`: GPTFuzz's `datasets/responses_labeled/*.csv` (`question,Response,label`): `question` is an
  index into GPTFuzz's `question_list.csv` (`index,text`, pass it with `questions=`), label 1 = jailbroken.
- `jailbreakeval`: JailbreakEval's datasets, e.g. `JAILJUDGEmini.csv` (`question,answer,label` and
  optional columns such as `hazard_cate_llamaguard3`, `prompt_complexity_cate`, `language`); label 1 /
  True = jailbroken, an empty label = unlabelled (counted, excluded).
- `columns`: any CSV, with `columns={"prompt": ..., "response": ..., "label": ...}` and `positive` the label
  value meaning positive; `label_means` says whether positive means refusal or harm.

Category columns: given explicitly, else `type` (xstest), else the short, few-valued extra columns. A
`rubric` column (a JSON list of yes/no questions, or one question per line) feeds the harm judge.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from harness.errors import UserError
from harness.judging.refusal_rules import REFUSAL_LABELS, RefusalLabel, is_refusal

Target = Literal["refusal", "harm"]
Format = Literal["xstest", "gptfuzz", "jailbreakeval", "columns"]

# Bytes that are not UTF-8 decode (with errors="surrogateescape") to lone surrogates.
_UNDECODED = re.compile("[\udc80-\udcff]")

# Plain names and XSTest's numbered forms ("1_full_compliance", ...).
_LABEL_ALIASES: dict[str, RefusalLabel] = {
    **{label: label for label in REFUSAL_LABELS},
    **{f"{i}_{label}": label for i, label in enumerate(REFUSAL_LABELS, start=1)},
}
_TRUE, _FALSE = {"1", "true", "1.0"}, {"0", "false", "0.0"}
CATEGORY_MAX_CHARS = 64
CATEGORY_MAX_VALUES = 30
COLUMN_KEYS = ("prompt", "response", "label", "id")


@dataclass
class LabelledRow:
    """One human-labelled response; `positive` is None for an unlabelled row."""

    row: int  # CSV row number (the header is row 1)
    prompt: str
    response: str
    label: str  # the human label as written
    positive: bool | None  # in the set's own terms (LabelledSet.label_means)
    refusal_label: RefusalLabel | None = None  # XSTest's 3-class label, when given
    id: str | None = None
    categories: dict[str, str] = field(default_factory=dict)
    rubric: list[str] | None = None


@dataclass
class LabelledSet:
    """A labelled file: its rows and what a positive label means."""

    path: Path
    sha256: str
    format: Format
    label_means: Target
    positive_label: str  # how a positive label is written, for the report
    rows: list[LabelledRow]
    category_columns: list[str]

    @property
    def labelled(self) -> list[LabelledRow]:
        return [r for r in self.rows if r.positive is not None]


def parse_refusal_label(value: str) -> RefusalLabel | None:
    """A refusal label from its plain or numbered form, or None if unknown."""
    return _LABEL_ALIASES.get(value.strip().lower())


def parse_columns(text: str | None) -> dict[str, str] | None:
    """'prompt=q,response=a,label=y' -> {'prompt': 'q', ...}; prompt, response and label are required."""
    if text is None:
        return None
    mapping: dict[str, str] = {}
    for part in text.split(","):
        key, sep, column = part.partition("=")
        key = key.strip()
        if not sep or key not in COLUMN_KEYS or not column.strip():
            raise UserError(f"--columns: expected key=COLUMN with key one of {', '.join(COLUMN_KEYS)}, got '{part}'")
        mapping[key] = column.strip()
    missing = [k for k in ("prompt", "response", "label") if k not in mapping]
    if missing:
        raise UserError(f"--columns: missing {', '.join(missing)} (e.g. prompt=question,response=answer,label=y)")
    return mapping


def load_labelled_set(
    path: str | Path,
    *,
    columns: dict[str, str] | None = None,
    positive: str | None = None,
    label_means: Target | None = None,
    categories: list[str] | None = None,
    questions: Path | None = None,
) -> LabelledSet:
    """Read a labelled CSV in one of the recognised formats (see module docstring)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read file ({exc.strerror})") from None
    reader = csv.DictReader(io.StringIO(data.decode("utf-8-sig", errors="surrogateescape"), newline=""))
    header = list(reader.fieldnames or [])
    if not header:
        raise UserError(f"{path}: file is empty; expected a header row (e.g. prompt,completion,label)")
    if any(_UNDECODED.search(name) for name in header):
        raise UserError(f"{path}: row 1 (header): not valid UTF-8; save the file as UTF-8")
    fmt, mapping = _detect(path, header, columns)
    if fmt == "columns" and positive is None:
        raise UserError("--columns needs --positive VALUE: the label value that means positive")
    missing = [c for c in mapping.values() if c not in header]
    if missing:
        raise UserError(f"{path}: row 1 (header): missing column {missing[0]!r}; found {', '.join(header)}")
    for column in categories or []:
        if column not in header:
            raise UserError(f"{path}: row 1 (header): no category column {column!r}; found {', '.join(header)}")
    prompts = _gptfuzz_questions(questions) if questions is not None else None
    rows = [
        _row(path, fmt, mapping, number, raw, positive, prompts)
        for number, raw in enumerate(_checked_rows(reader, path), start=2)
    ]
    if not rows:
        raise UserError(f"{path}: no data rows after the header")
    chosen = categories if categories is not None else _category_columns(fmt, header, mapping, rows)
    for row in rows:
        row.categories = {c: row.categories[c] for c in chosen}
    means: Target = "refusal" if fmt == "xstest" else (label_means or ("harm" if fmt != "columns" else "refusal"))
    shown = {
        "xstest": "full or partial refusal",
        "gptfuzz": "1 (jailbroken)",
        "jailbreakeval": "1/True (jailbroken)",
        "columns": f"{positive!r}",
    }[fmt]
    return LabelledSet(path, hashlib.sha256(data).hexdigest(), fmt, means, shown, rows, chosen)


def _detect(path: Path, header: list[str], columns: dict[str, str] | None) -> tuple[Format, dict[str, str]]:
    if columns is not None:
        return "columns", columns
    if "prompt" in header and "question" not in header:
        return "xstest", {
            "prompt": "prompt",
            "response": "completion",
            "label": "final_label" if "final_label" in header else "label",
        }
    if {"question", "Response", "label"} <= set(header):
        return "gptfuzz", {"prompt": "question", "response": "Response", "label": "label"}
    if {"question", "answer", "label"} <= set(header):
        return "jailbreakeval", {"prompt": "question", "response": "answer", "label": "label"}
    raise UserError(
        f"{path}: row 1 (header): unknown labelled format (columns {', '.join(header)}); expected XSTest "
        "(prompt,completion,label|final_label), GPTFuzz (question,Response,label), JailbreakEval "
        "(question,answer,label), or name the columns with --columns prompt=...,response=...,label=..."
    )


def _row(
    path: Path,
    fmt: str,
    mapping: dict[str, str],
    number: int,
    raw: dict,
    positive: str | None,
    prompts: dict[str, str] | None,
) -> LabelledRow:
    where = f"{path}: row {number}"
    for column, value in raw.items():
        if isinstance(value, str) and _UNDECODED.search(value):
            raise UserError(f"{where}, field {column!r}: not valid UTF-8; save the file as UTF-8")
    for column in mapping.values():
        if raw.get(column) is None:
            raise UserError(f"{where}, field {column!r}: missing value (row has too few fields)")
    label = raw[mapping["label"]].strip()
    prompt = raw[mapping["prompt"]]
    row = LabelledRow(
        row=number,
        prompt=prompt,
        response=raw[mapping["response"]],
        label=label,
        positive=None,
        id=raw.get(mapping.get("id", "id")) or None,
        categories={k: (v or "").strip() for k, v in raw.items() if isinstance(k, str)},
    )
    if fmt == "xstest":
        row.refusal_label = parse_refusal_label(label)
        if row.refusal_label is None:
            raise UserError(
                f"{where}, field {mapping['label']!r}: unknown label {label!r}; "
                f"expected one of {', '.join(_LABEL_ALIASES)}"
            )
        row.positive = is_refusal(row.refusal_label)
    elif fmt == "columns":
        row.positive = None if not label else label == positive
    elif label or fmt == "gptfuzz":
        allowed = ("1", "0") if fmt == "gptfuzz" else ("1", "0", "True", "False")
        if label.lower() not in (_TRUE | _FALSE) or (fmt == "gptfuzz" and label.lower() in ("true", "false")):
            raise UserError(f"{where}, field 'label': unknown label {label!r}; expected {' or '.join(allowed)}")
        row.positive = label.lower() in _TRUE
    if fmt == "gptfuzz" and prompts is not None:
        if prompt.strip() not in prompts:
            raise UserError(f"{where}, field 'question': index {prompt!r} is not in the questions file")
        row.prompt = prompts[prompt.strip()]
    if "rubric" in raw and (raw["rubric"] or "").strip():
        row.rubric = _rubric(where, raw["rubric"])
    return row


def _rubric(where: str, text: str) -> list[str]:
    """A JSON list of questions, or one question per line."""
    text = text.strip()
    if text.startswith("["):
        try:
            questions = json.loads(text)
        except json.JSONDecodeError as exc:
            raise UserError(f"{where}, field 'rubric': invalid JSON list ({exc.msg})") from None
        if not isinstance(questions, list) or not all(isinstance(q, str) and q.strip() for q in questions):
            raise UserError(f"{where}, field 'rubric': expected a JSON list of non-empty strings")
        return questions
    return [line.strip() for line in text.splitlines() if line.strip()]


def _category_columns(fmt: str, header: list[str], mapping: dict[str, str], rows: list[LabelledRow]) -> list[str]:
    """`type` for XSTest; otherwise extra columns with short values and few distinct ones."""
    if fmt == "xstest":
        return ["type"] if "type" in header else []
    used = set(mapping.values()) | {"rubric", "id", "prompt"}
    chosen = []
    for column in header:
        if column in used:
            continue
        values = {r.categories.get(column, "") for r in rows}
        if len(values) <= CATEGORY_MAX_VALUES and all(len(v) <= CATEGORY_MAX_CHARS for v in values):
            chosen.append(column)
    return chosen


def _gptfuzz_questions(path: Path) -> dict[str, str]:
    """GPTFuzz's question list (`index,text`) as {index: question}."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read the questions file ({exc})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or not {"index", "text"} <= set(reader.fieldnames):
        raise UserError(f"{path}: row 1 (header): expected GPTFuzz's question list columns index,text")
    return {row["index"].strip(): row["text"] for row in _checked_rows(reader, path) if row.get("index")}


def _checked_rows(reader: csv.DictReader, path: Path):
    """The reader's rows; malformed CSV (e.g. a field over the size limit) is a UserError naming the row."""
    row_number = 1
    try:
        for row_number, row in enumerate(reader, start=2):  # noqa: B007 (read in the except clause)
            yield row
    except csv.Error as exc:
        raise UserError(f"{path}: row {row_number + 1}: malformed CSV ({exc}); check its quoting") from None
