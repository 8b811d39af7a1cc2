"""Self-contained HTML run report: inline CSS and SVG, no scripts, no network, every text escaped.

A Content-Security-Policy meta tag forbids any script and any fetch, as a second line of defence
behind escaping: model output can never run in the page.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
from html import escape
from typing import Any

from harness.metrics import CONSISTENCY_TABLE, consistency_rows
from harness.report.cards import TaskCard
from harness.report.examples import LIMIT, Example, attention, metric_examples, primary_score_examples
from harness.report.markdown import ARROWS, exclusion_parts, format_metric_value, interval_text, value_text
from harness.report.summary import LoadedRun, demonstration_notice, failure_notice, judge_specs, model_spec
from harness.report.svg import render_plot
from harness.task import TaskResult
from harness.types import Metric

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
MAX_TEXT = 4000
COLLAPSE_TABLE_ROWS = 25

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#1d2329;margin:0;background:#f6f7f9}
header,main{max-width:1100px;margin:0 auto;padding:0 20px}
header{padding-top:18px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:19px;border-bottom:2px solid #d9dee4;padding-bottom:4px;margin-top:34px}
h3{font-size:16px;margin:22px 0 8px}h4{font-size:14px;margin:16px 0 6px}
.meta{color:#4a5560}nav a{margin-right:14px}
a{color:#245a96}code{font:12.5px ui-monospace,Menlo,Consolas,monospace;background:#eef1f4;padding:0 3px;border-radius:3px}
table{border-collapse:collapse;background:#fff;margin:6px 0 10px}
th,td{border:1px solid #d9dee4;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#eef1f4}td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.table-wrap{overflow-x:auto}
figure{margin:10px 0;background:#fff;border:1px solid #d9dee4;display:inline-block;padding:4px}
svg text{font:12px system-ui,sans-serif;fill:#1d2329}svg .plot-title{font-weight:600;font-size:13px}
svg .tick{fill:#5b6670;font-size:11px}svg .axis{stroke:#5b6670}svg .grid{stroke:#e3e7eb}
svg .whisker{stroke:#1d2329;stroke-width:1.3}svg .cell-value.dark{fill:#fff}svg .axis-label{fill:#4a5560}
details.example{background:#fff;border:1px solid #d9dee4;border-radius:4px;margin:4px 0;padding:4px 8px}
details.example>summary{cursor:pointer}
.why{color:#8a3b12}.snippet{color:#4a5560}
pre{white-space:pre-wrap;word-break:break-word;background:#f3f5f7;padding:6px 8px;margin:2px 0 8px;
font:12.5px ui-monospace,Menlo,Consolas,monospace;border-radius:3px}
.msg .who{font-size:12px;color:#4a5560;font-weight:600}.completion pre{background:#fff7e6}
.note{color:#4a5560}.warn{color:#8a3b12}dl.kv{display:grid;grid-template-columns:max-content auto;gap:2px 14px}
dl.kv dt{font-weight:600}dl.kv dd{margin:0}
.notice{background:#fdf0e6;border:1px solid #e0b48f;border-radius:4px;padding:6px 10px;font-weight:600}
.cards{display:grid;grid-template-columns:repeat(3,minmax(0,1fr));gap:10px;margin-top:12px}
.card{background:#fff;border:1px solid #d9dee4;border-radius:6px;padding:8px 12px;overflow-wrap:anywhere}
.card.wide{grid-column:1/-1;display:flex;gap:16px;align-items:flex-start}.card.wide>div{flex:1}
.card h3{margin:0 0 4px}.headline{padding:3px 0;border-bottom:1px solid #eef1f4}.caption{color:#4a5560;font-size:12px}
.headline .value{font-size:18px;font-weight:600}.card p{margin:5px 0 0;font-size:13px}
.card figure{border:0;padding:0;margin:0}.nodata{color:#4a5560}
"""


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-") or "x"


def page(title: str, body: str, script: str | None = None) -> str:
    """A complete HTML document; `script` (trusted, ours) is allowed by its CSP hash and nothing else."""
    csp = CSP
    tail = ""
    if script is not None:
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        csp += f"; script-src 'sha256-{digest}'"
        tail = f"<script>{script}</script>"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{esc(title)}</title><style>{CSS}</style></head>"
        f"<body>{body}{tail}</body></html>\n"
    )


def utc(timestamp: float | None) -> str:
    if not timestamp:
        return "?"
    return dt.datetime.fromtimestamp(timestamp, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def clip(text: str, limit: int = MAX_TEXT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… ({len(text) - limit} more characters in records.jsonl)"


def table_html(rows: list[dict[str, Any]]) -> str:
    """Rows of a TaskResult table; long tables are collapsed."""
    if not rows:
        return '<p class="note">no rows</p>'
    columns = list(dict.fromkeys(c for row in rows for c in row))
    head = "".join(f"<th>{esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(cell_html(row.get(c)) for c in columns) + "</tr>" for row in rows)
    html = f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    if len(rows) > COLLAPSE_TABLE_ROWS:
        return f"<details><summary>{len(rows)} rows</summary>{html}</details>"
    return html


def cell_html(value: Any) -> str:
    if isinstance(value, float):
        return f'<td class="num">{value:.2f}</td>'
    if isinstance(value, int) and not isinstance(value, bool):
        return f'<td class="num">{value}</td>'
    if isinstance(value, (dict, list)):
        return f"<td><code>{esc(json.dumps(value, ensure_ascii=False))}</code></td>"
    return f"<td>{esc(value)}</td>"


def interval_svg(m: Metric) -> str:
    """A tiny 0–100 scale with the interval and the point, for percentages."""
    if m.unit != "%" or m.value is None or m.ci_low is None or m.ci_high is None:
        return ""

    def x(v: float) -> float:
        return round(4 + max(0.0, min(100.0, v)) * 1.12, 2)

    return (
        f'<svg width="120" height="12" role="img" aria-label="interval"><line x1="4" y1="6" x2="116" y2="6" '
        f'stroke="#d9dee4"/><line x1="{x(m.ci_low)}" y1="6" x2="{x(m.ci_high)}" y2="6" stroke="#3b6ea8" '
        f'stroke-width="3"/><circle cx="{x(m.value)}" cy="6" r="3" fill="#1d2329"/></svg>'
    )


class RunPage:
    """Builds report.html for one loaded run."""

    def __init__(self, run: LoadedRun):
        self.run = run
        self.values = {task: {name: v.values for name, v in metrics.items()} for task, metrics in run.values.items()}
        self.attention = {name: attention(run.records.get(name, [])) for name in run.tasks}

    def examples_anchor(self, task: str, metric: Metric) -> str:
        return slug(f"ex-{metric.name}") if metric.name in self.values.get(task, {}) else slug(f"ex-{task}-records")

    def metric_table(self, results: list[TaskResult], with_task: bool) -> str:
        rows = []
        for result, m in ((r, m) for r in results for m in r.metrics if m.has_result):
            links = [f'<a href="#{self.examples_anchor(result.task, m)}">examples</a>']
            if self.attention[result.task]:
                links.append(
                    f'<a href="#{slug("attention-" + result.task)}">errors ({len(self.attention[result.task])})</a>'
                )
            task_cell = f'<td><a href="#{slug("task-" + result.task)}">{esc(result.task)}</a></td>' if with_task else ""
            rows.append(
                f'<tr>{task_cell}<td><code>{esc(m.name)}</code></td><td class="num">{esc(format_metric_value(m))}'
                f'</td><td>{interval_svg(m)}</td><td class="num">{m.n}</td><td>{esc(ARROWS[m.direction])}</td>'
                f'<td class="num">{result.counts.get("judge_errors", 0)}</td><td>{" · ".join(links)}</td></tr>'
            )
        head = ("<th>task</th>" if with_task else "") + (
            "<th>metric</th><th>value [95% CI]</th><th>interval</th><th>n</th><th>better</th>"
            "<th>judge errors</th><th>records</th>"
        )
        folded = "".join(no_data_html(self.run.cards[r.task].no_data, r.task if with_task else None) for r in results)
        return (
            f'<div class="table-wrap"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
            f"</div>{folded}"
        )

    def header(self) -> str:
        m = self.run.manifest
        judges = judge_specs(m)
        nav = "".join(f'<a href="#{slug("task-" + r.task)}">{esc(r.task)}</a>' for r in self.run.results)
        return (
            f"<header><h1>Evaluation report: {esc(self.run.run_dir.name)}</h1>"
            f'<p class="meta">model <code>{esc(model_spec(m))}</code>'
            + (f" · judges {', '.join(f'<code>{esc(j)}</code>' for j in judges)}" if judges else "")
            + f" · status {esc(m.get('status'))} · started {esc(utc(m.get('started_at')))} · seed {esc(m.get('seed'))}"
            f" · repeats {esc(m.get('repeats'))} · limit {esc(m.get('limit') or 'none')}</p>"
            f'<nav><a href="#overview">all metrics</a>{nav}<a href="#usage">tokens and cost</a><a href="#provenance">provenance</a></nav>'
            + "".join(
                f'<p class="notice warn">{esc(notice)}</p>'
                for notice in (failure_notice(m), demonstration_notice(m))
                if notice
            )
            + "</header>"
        )

    def cards(self) -> str:
        """The first screen: one card per task."""
        cards = sorted((self.run.cards[r.task] for r in self.run.results), key=lambda c: c.plot is not None)
        cards_html = "".join(card_html(card) for card in cards)  # cards with a plot span a row: they go last
        return f'<section id="cards" aria-label="headline metrics per task"><div class="cards">{cards_html}</div></section>'

    def overview(self) -> str:
        return f'<section id="overview"><h2>All metrics</h2>{self.metric_table(self.run.results, True)}</section>'

    def task_section(self, result: TaskResult) -> str:
        parts = [
            f'<section id="{slug("task-" + result.task)}"><h2>{esc(result.task)}</h2>',
            f"<p>{esc(self.run.tasks[result.task].description)}</p>",
            f"<p>Protocol: <b>{esc(self.run.tasks[result.task].protocol)}</b></p>",
            self.metric_table([result], False),
        ]
        counts = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in result.counts.items())
        parts.append(f'<dl class="kv">{counts}</dl>')
        if result.counts.get("judge_errors"):
            parts.append(
                f'<p class="warn">{result.counts["judge_errors"]} records have no verdict (judge errors) '
                "and are excluded from the rates.</p>"
            )
        parts += [f'<p class="note">{esc(note)}</p>' for note in result.notes]
        parts += [f"<figure>{render_plot(plot)}</figure>" for plot in result.plots]
        if rows := consistency_rows(result.metrics):
            parts.append(f"<h3>{esc(CONSISTENCY_TABLE)}</h3>{table_html(rows)}")
        for name, rows in result.tables.items():
            parts.append(f"<h3>{esc(name)}</h3>{table_html(rows)}")
        parts.append(self.examples(result))
        return "".join(parts) + "</section>"

    def examples(self, result: TaskResult) -> str:
        records = self.run.records.get(result.task, [])
        by_key = {(r.sample_id, r.repetition): r for r in records}
        values = self.values.get(result.task, {})
        parts = ["<h3>Example records</h3>"]
        for m in result.metrics:
            if m.name in values:
                found = metric_examples(m, values[m.name], by_key)
                parts.append(
                    example_list(
                        slug(f"ex-{m.name}"), f"{m.name}: records that count against the model, worst first", found
                    )
                )
        if any(m.name not in values for m in result.metrics):
            parts.append(
                example_list(
                    slug(f"ex-{result.task}-records"),
                    "highest primary score first (this task gives no per-record metric values)",
                    primary_score_examples(records),
                )
            )
        if self.attention[result.task]:
            parts.append(
                example_list(slug(f"attention-{result.task}"), "errors and judge errors", self.attention[result.task])
            )
        return "".join(parts)

    def usage(self) -> str:
        """The "Tokens and cost" section (harness.report.usage)."""
        from harness.report.usage import SECTION, usage_notes, usage_rows

        notes = "".join(f'<p class="note">{esc(note)}</p>' for note in usage_notes(self.run.usage, self.run.manifest))
        return f'<section id="usage"><h2>{esc(SECTION)}</h2>{table_html(usage_rows(self.run.usage))}{notes}</section>'

    def provenance(self) -> str:
        m = self.run.manifest
        shown = {
            "harness_version",
            "git_commit",
            "command",
            "python",
            "platform",
            "seed",
            "repeats",
            "limit",
            "status",
            "started_at",
            "finished_at",
            "counts",
            "tasks",
            "roles",
            "fingerprint",
        }
        general = [
            ("harness", f"{m.get('harness_version')} (commit {m.get('git_commit') or 'unknown'})"),
            ("command", " ".join(m.get("command") or [])),
            ("python / platform", f"{m.get('python')} / {m.get('platform')}"),
            ("seed · repeats · limit", f"{m.get('seed')} · {m.get('repeats')} · {m.get('limit')}"),
            ("status", m.get("status")),
            ("started / finished", f"{utc(m.get('started_at'))} / {utc(m.get('finished_at'))}"),
            ("counts", json.dumps(m.get("counts") or {}, sort_keys=True)),
        ] + [(key, json.dumps(value, ensure_ascii=False, default=str)) for key, value in m.items() if key not in shown]
        kv = "".join(f"<dt>{esc(k)}</dt><dd><code>{esc(v)}</code></dd>" for k, v in general)
        tasks = [
            {
                "task": t["name"],
                "source": t["dataset"].get("source"),
                "revision": t["dataset"].get("revision"),
                "sha256": t["dataset"].get("content_hash"),
                "samples": t["dataset"].get("n_samples"),
                "planned": t.get("planned"),
                "options": t.get("options") or {},
                **{k: v for k, v in t.items() if k not in {"name", "dataset", "planned", "options"}},
            }
            for t in m.get("tasks", [])
        ]
        roles = [
            {
                "role": r["role"],
                "spec": r["spec"],
                "generate": r.get("generate"),
                "identity": r.get("identity"),
                "calls": r.get("calls"),
                "cache hits": r.get("cache_hits"),
                "retries": r.get("retries"),
                "tokens in/out": f"{r.get('prompt_tokens')}/{r.get('completion_tokens')}",
            }
            for r in m.get("roles", [])
        ]
        full = esc(json.dumps(m, indent=2, ensure_ascii=False, default=str))
        return (
            f'<section id="provenance"><h2>Provenance</h2><dl class="kv">{kv}</dl><h3>Datasets</h3>'
            f"{table_html(tasks)}<h3>Model roles</h3>{table_html(roles)}"
            f"<details><summary>manifest.json</summary><pre>{full}</pre></details></section>"
        )

    def render(self) -> str:
        body = self.header() + "<main>" + self.cards() + self.overview()
        body += "".join(self.task_section(r) for r in self.run.results) + self.usage() + self.provenance() + "</main>"
        return page(f"Evaluation report: {self.run.run_dir.name}", body)


def no_data_html(groups: dict[str, list[str]], task: str | None = None) -> str:
    """One line per reason: 'no data for: a, b (reason)', prefixed with the task when given."""
    prefix = f"{esc(task)}: " if task else ""
    return "".join(
        f'<p class="nodata">{prefix}no data for: {", ".join(f"<code>{esc(n)}</code>" for n in names)} '
        f"({esc(reason)})</p>"
        for reason, names in groups.items()
    )


def card_html(card: TaskCard) -> str:
    """A task's card: headline metrics with interval, n and direction; exclusions; headline metrics without
    data; the task's headline plot (such a card spans the row)."""
    rows = "".join(
        f'<div class="headline"><code>{esc(m.name)}</code>'
        + (f' <span class="caption">{esc(card.captions[m.name])}</span>' if m.name in card.captions else "")
        + f'<div><span class="value">{esc(value_text(m))}</span> {esc(interval_text(m))} · n={m.n}'
        + (f" · {esc(ARROWS[m.direction])}" if m.direction != "none" else "")
        + "</div></div>"
        for m in card.headline
        if m.has_result
    )
    others = card.other_no_data()
    more = (
        f'<p class="nodata">{others} more metrics without data: see <a href="#{slug("task-" + card.task)}">'
        "details</a></p>"
        if others
        else ""
    )
    protocol = f" <small>protocol {esc(card.protocol)}</small>" if card.protocol != "default" else ""
    text = (
        f'<h3><a href="#{slug("task-" + card.task)}">{esc(card.task)}</a>{protocol}</h3>{rows}'
        f'{no_data_html(card.headline_no_data())}<p class="excluded">{exclusions_html(card)}</p>{more}'
    )
    if card.plot is None:
        return f'<article class="card" id="{slug("card-" + card.task)}">{text}</article>'
    return (
        f'<article class="card wide" id="{slug("card-" + card.task)}"><div>{text}</div>'
        f"<figure>{render_plot(card.plot)}</figure></article>"
    )


def exclusions_html(card: TaskCard) -> str:
    """What a card's numbers leave out; non-zero parts in warning colour."""
    return " · ".join(
        f'<span class="warn">{esc(text)}</span>' if bad else esc(text) for text, bad in exclusion_parts(card)
    )


def first_prompt(example: Example) -> str:
    for ex in example.record.exchanges:
        if ex.role == "model":
            user = [m.content for m in ex.messages if m.role == "user"]
            if user:
                return user[-1]
    return ""


def example_list(anchor: str, heading: str, examples: list[Example]) -> str:
    shown = examples[:LIMIT]
    note = f"showing {len(shown)} of {len(examples)}" if examples else "none"
    items = "".join(example_html(e) for e in shown)
    return f'<section class="examples" id="{esc(anchor)}"><h4>{esc(heading)}</h4><p class="note">{note}</p>{items}</section>'


def example_html(example: Example) -> str:
    """One record, collapsed: the summary line shows ids, why it is listed and the prompt's start."""
    r = example.record
    snippet = " ".join(first_prompt(example).split())
    snippet = snippet if len(snippet) <= 110 else snippet[:109] + "…"
    summary = (
        f'<code>{esc(r.sample_id)}</code> rep {r.repetition} · <span class="why">{esc(example.why)}</span>'
        f' · <span class="snippet">{esc(snippet)}</span>'
    )
    seen: set[tuple[str, str]] = set()
    body = []
    for ex in r.exchanges:
        body.append(f"<h5>{esc(ex.role)} · {esc(ex.purpose)}</h5>")
        for msg in ex.messages:
            if (msg.role, msg.content) in seen:
                continue
            seen.add((msg.role, msg.content))
            body.append(
                f'<div class="msg"><span class="who">{esc(msg.role)}</span><pre>{esc(clip(msg.content))}</pre></div>'
            )
        if ex.completion is not None:
            seen.add(("assistant", ex.completion.text))
            body.append(
                f'<div class="msg completion"><span class="who">{esc(ex.role)} response</span>'
                f"<pre>{esc(clip(ex.completion.text))}</pre></div>"
            )
        if ex.error:
            body.append(f'<p class="warn">call failed: {esc(ex.error)}</p>')
    if r.error:
        body.append(f'<p class="warn">{esc(r.error_kind)} error: {esc(r.error)}</p>')
    scores = [
        {
            "scorer": name,
            "by": s.scorer,
            "label": s.label,
            "value": s.value,
            "explanation": s.explanation,
            "error": s.error,
        }
        for name, s in r.scores.items()
    ]
    if scores:
        body.append(table_html(scores))
    if r.metadata:
        body.append(
            f'<p class="note">metadata: <code>{esc(json.dumps(r.metadata, ensure_ascii=False, default=str))}</code></p>'
        )
    return (
        f'<details class="example" data-sample="{esc(r.sample_id)}" data-rep="{r.repetition}">'
        f"<summary>{summary}</summary>{''.join(body)}</details>"
    )


def run_html(run: LoadedRun) -> str:
    """The whole report.html of a run."""
    return RunPage(run).render()
