"""Reading DailyDilemmas in its upstream formats: the per-action detail CSV, the HF aggregated config
(`values_aggregated`) and the values table (value -> five theories). Errors name file, row and field."""

from __future__ import annotations

import ast
from typing import Any

from harness.datasets import first_row_number, require_text
from harness.errors import UserError
from harness_tasks.dilemmas.theories import THEORIES

ACTION_TYPES = ("to_do", "not_to_do")
VALUES_COLUMNS = ("value", *(t.column for t in THEORIES))
DETAIL_COLUMNS = ("idx", "dilemma_situation", "action_type", "action", "values_names", *(t.key for t in THEORIES))
AGGREGATED_COLUMNS = ("dilemma_idx", "dilemma_situation", "action_type", "action", "values_aggregated")

ValuesTable = dict[str, dict[str, str | None]]  # lower-cased value -> theory key -> label (None: no mapping)


class _NanToNone(ast.NodeTransformer):
    """Upstream lists write missing entries as a bare `nan`; turn that one name into None."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        return ast.copy_location(ast.Constant(None), node) if node.id == "nan" else node


def parse_list(origin: Any, row_number: int, field: str, raw: Any) -> list[str | None]:
    """A list column: a real list, or a Python-literal string parsed with ast.literal_eval (never eval)."""
    where = f"{origin}: row {row_number}, field '{field}'"
    if isinstance(raw, str):
        try:
            tree = _NanToNone().visit(ast.parse(raw.strip(), mode="eval"))
            raw = ast.literal_eval(tree)
        except (SyntaxError, ValueError, TypeError, RecursionError, MemoryError):
            raise UserError(f"{where}: not a Python list literal such as \"['honesty', 'trust']\"") from None
    elif raw is not None and hasattr(raw, "tolist"):  # numpy arrays from parquet
        raw = raw.tolist()
    if not isinstance(raw, (list, tuple)):
        raise UserError(f"{where}: expected a list, got {type(raw).__name__}")
    items: list[str | None] = []
    for item in raw:
        if item is not None and not isinstance(item, str):
            raise UserError(f"{where}: list entries must be strings (or nan), got {item!r}")
        items.append((item.strip() or None) if item is not None else None)
    return items


def _cell(value: Any) -> str | None:
    """A table cell as stripped text; empty, None and NaN mean 'no mapping'."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value).strip()
    return text or None


def check_columns(origin: Any, rows: list[dict[str, Any]], required: tuple[str, ...]) -> None:
    missing = [c for c in required if c not in rows[0]]
    if missing:
        raise UserError(f"{origin}: missing column(s) {', '.join(missing)}; found {', '.join(map(str, rows[0]))}")


def values_table(rows: list[dict[str, Any]], origin: Any) -> ValuesTable:
    """The values table (`value, WVS, MFT, Virtue, Emotion, Maslow`; empty = none), keyed by lower-cased value."""
    check_columns(origin, rows, VALUES_COLUMNS)
    table: ValuesTable = {}
    for number, row in enumerate(rows, start=first_row_number(origin)):
        value = require_text(origin, number, row, "value").strip().lower()
        if value in table:
            raise UserError(f"{origin}: row {number}, field 'value': duplicate value '{value}'")
        table[value] = {t.key: _cell(row.get(t.column)) for t in THEORIES}
    return table


def dilemma_format(origin: Any, rows: list[dict[str, Any]]) -> str:
    """'detail' (per-action file with theory columns) or 'aggregated' (HF config with values_aggregated)."""
    if "values_names" in rows[0]:
        check_columns(origin, rows, DETAIL_COLUMNS)
        return "detail"
    if "values_aggregated" in rows[0]:
        check_columns(origin, rows, AGGREGATED_COLUMNS)
        return "aggregated"
    raise UserError(
        f"{origin}: missing column values_names (per-action detail file) or values_aggregated (HF aggregated "
        f"config); found {', '.join(map(str, rows[0]))}"
    )


def _action(origin: Any, number: int, row: dict[str, Any], fmt: str, table: ValuesTable | None) -> dict[str, Any]:
    """One action row -> its text, value names and per-theory labels (one label per mapped value)."""
    if fmt == "detail":
        names = parse_list(origin, number, "values_names", row["values_names"])
        labels = {}
        for theory in THEORIES:
            column = parse_list(origin, number, theory.key, row[theory.key])
            if len(column) != len(names):
                raise UserError(
                    f"{origin}: row {number}, field '{theory.key}': {len(column)} entries but values_names has "
                    f"{len(names)} (the theory columns are index-aligned with values_names)"
                )
            labels[theory.key] = [label for label in column if label]
        unmapped: list[str] = []
    else:
        names = parse_list(origin, number, "values_aggregated", row["values_aggregated"])
        labels = {t.key: [] for t in THEORIES}
        unmapped = []
        for name in filter(None, names):
            mapping = (table or {}).get(name.lower())
            if mapping is None:
                unmapped.append(name.lower())
                continue
            for key, label in mapping.items():
                if label:
                    labels[key].append(label)
    return {
        "action": require_text(origin, number, row, "action").strip(),
        "values": [n.lower() for n in names if n],
        "labels": labels,
        "unmapped": unmapped,
    }


def dilemmas(rows: list[dict[str, Any]], origin: Any, table: ValuesTable | None) -> list[dict[str, Any]]:
    """Group action rows into dilemmas, each with exactly one `to_do` and one `not_to_do` action."""
    fmt = dilemma_format(origin, rows)
    if fmt == "aggregated" and table is None:
        raise UserError(f"{origin}: the aggregated format needs a values table (-T values=path/to/values.csv)")
    id_field = "idx" if fmt == "detail" else "dilemma_idx"
    groups: dict[str, dict[str, tuple[int, dict[str, Any]]]] = {}
    for number, row in enumerate(rows, start=first_row_number(origin)):
        idx = require_text(origin, number, row, id_field).strip()
        kind = require_text(origin, number, row, "action_type").strip()
        if kind not in ACTION_TYPES:
            raise UserError(f"{origin}: row {number}, field 'action_type': expected to_do or not_to_do, got '{kind}'")
        group = groups.setdefault(idx, {})
        if kind in group:
            raise UserError(
                f"{origin}: row {number}, field 'action_type': dilemma {idx} already has a {kind} action "
                f"(row {group[kind][0]})"
            )
        group[kind] = (number, row)
    result = []
    for idx, group in groups.items():
        for kind in ACTION_TYPES:
            if kind not in group:
                other_number = next(iter(group.values()))[0]
                raise UserError(
                    f"{origin}: row {other_number}, field 'action_type': dilemma {idx} has no {kind} action"
                )
        number, row = group["to_do"]
        result.append(
            {
                "idx": idx,
                "situation": require_text(origin, number, row, "dilemma_situation").strip(),
                "basic_situation": _cell(row.get("basic_situation")) or "",
                "topic_group": _cell(row.get("topic_group")) or "",
                "actions": {kind: _action(origin, group[kind][0], group[kind][1], fmt, table) for kind in ACTION_TYPES},
            }
        )
    return result
