"""The report's first screen (one card per task, in the top 1000 px of report.html; report.md opens with the
same cards) and the end-of-run terminal output (headline metrics only, and where the report is)."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from scripted_judges import sensible_judge
from test_report_html import chromium_binary

from conftest import read_summary, run_cli

TASKS = ["cash_comfort", "dilemmas", "fortress", "overrefusal", "persuasion", "wahlomat"]
SCREEN = (1280, 1000)
# Written into a copy of the page (the report itself allows no script): each element's box, after layout.
MEASURE = """<script>
const box = e => { const r = e.getBoundingClientRect(); return {top: r.top, bottom: r.bottom}; };
const out = {cards: {}, notices: [...document.querySelectorAll('header .notice')].map(box)};
for (const card of document.querySelectorAll('article.card')) {
  out.cards[card.id] = {...box(card), headline: [...card.querySelectorAll('.headline')].map(box),
                        excluded: box(card.querySelector('.excluded')),
                        figure: [...card.querySelectorAll('figure')].map(box)};
}
const pre = document.createElement('pre'); pre.id = 'measured'; pre.textContent = JSON.stringify(out);
document.body.appendChild(pre);
</script>"""


@pytest.fixture(scope="module")
def all_tasks_run(tmp_path_factory):
    """One scripted run over every task: persuasion's judge fails every strategy verdict (judge errors),
    the other tasks get sensible answers."""
    tmp_path = tmp_path_factory.mktemp("cards")
    (tmp_path / "model.yaml").write_text(
        "rules:\n"
        "  - {pattern: 'Action 2', response: 'Action 1'}\n"
        "  - {pattern: 'stimme nicht zu', response: 'stimme zu'}\n"
        "  - {pattern: '\\[ACCEPT\\]', response: '[ACCEPT]'}\n"
        "  - {pattern: '(?i)(euro|€|\\bcents?\\b)', response: 'Yes'}\n"
        "default: 'Sure, here are the steps. [REQUEST] Will you do it?'\n", encoding="utf-8")
    (tmp_path / "sim.yaml").write_text("default: '[DECISION - ACCEPT] Fine, I agree.'\n", encoding="utf-8")
    out = run_cli(["run", "--model", f"scripted/{tmp_path / 'model.yaml'}", "--judge", sensible_judge(tmp_path / "j.yaml"),
                   "--simulator", f"scripted/{tmp_path / 'sim.yaml'}", "--tasks", "all", "--limit", "4",
                   "--run-dir", "run", "--no-progress"], tmp_path)
    assert out.returncode == 0, out.stderr
    return tmp_path / "run", out.stdout


def measure(page: Path, work: Path) -> dict:
    """Element boxes of report.html laid out in headless Chromium at SCREEN size."""
    html = page.read_text(encoding="utf-8")
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", html).replace("</body>", MEASURE + "</body>")
    copy = work / "measure.html"
    copy.write_text(html, encoding="utf-8")
    proc = subprocess.run(
        [chromium_binary(), "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-extensions", "--no-first-run",
         f"--user-data-dir={work / 'profile'}", f"--window-size={SCREEN[0]},{SCREEN[1]}", "--hide-scrollbars",
         "--dump-dom", copy.resolve().as_uri()],
        capture_output=True, text=True, timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'<pre id="measured">(.*?)</pre>', proc.stdout, re.S)
    assert found, proc.stdout[-2000:]
    return json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))


def test_cards_fill_the_first_screen_with_notices_above(all_tasks_run, tmp_path, cli):
    run = tmp_path / "run"
    shutil.copytree(all_tasks_run[0], run)
    manifest = json.loads((run / "manifest.json").read_text())
    manifest.update(status="failed", failure="3 of 24 samples ended in errors (12.5% > 10%)")
    for role in manifest["roles"]:  # a judge on a local model: the report must say it is a demonstration
        if role["role"].startswith("judge"):
            role["spec"] = "local/smollm2"
    (run / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    assert cli(["report", str(run)]).returncode == 0

    boxes = measure(run / "report.html", tmp_path)
    assert set(boxes["cards"]) == {f"card-{task}" for task in TASKS}
    assert len(boxes["notices"]) == 2  # failed run, demonstration judge
    first_card = min(card["top"] for card in boxes["cards"].values())
    assert all(notice["bottom"] <= first_card for notice in boxes["notices"])
    for name, card in boxes["cards"].items():
        assert card["top"] < SCREEN[1], name
        assert card["excluded"]["bottom"] <= SCREEN[1], name  # after the headline metrics and their no-data line
    assert len(boxes["cards"]["card-dilemmas"]["headline"]) == 2  # the most favoured and most neglected values
    assert boxes["cards"]["card-fortress"]["figure"][0]["top"] < SCREEN[1] - 200  # the risk vs over-refusal plot
    html = (run / "report.html").read_text(encoding="utf-8")
    assert html.index("FAILED RUN: 3 of 24 samples") < html.index('id="cards"')
    assert html.index("Demonstration only") < html.index('id="cards"')
    report = (run / "report.md").read_text(encoding="utf-8")
    assert report.index("FAILED RUN") < report.index("Demonstration only") < report.index("### cash_comfort")


def test_cards_show_headlines_exclusions_and_fold_metrics_without_data(all_tasks_run):
    run, _ = all_tasks_run
    summary = read_summary(run)
    cards = {task: summary["tasks"][task]["card"] for task in TASKS}
    values = summary["metrics"]
    # families show their extremes: the most favoured and the most neglected value, the closest and farthest party
    labels = {n: m["value"] for n, m in values.items() if n.count(".") == 2 and n.startswith("dilemmas.")
              and m["value"] is not None}
    top, bottom = cards["dilemmas"]["headline"]
    assert labels[top] == max(labels.values()) and labels[bottom] == min(labels.values())
    parties = {n: m["value"] for n, m in values.items() if m["task"] == "wahlomat" and n != "wahlomat.skip_rate"
               and n != "wahlomat.answer_stability"}
    assert cards["wahlomat"]["headline"] == [max(parties, key=parties.get), min(parties, key=parties.get)]
    assert cards["fortress"]["headline"] == ["fortress.ars", "fortress.ors"]
    # the model accepts every offer: the price is only bounded ('<min'), shown as that bound with the reason
    assert cards["cash_comfort"]["headline"] == ["cash_comfort.time.price"]
    price = values["cash_comfort.time.price"]
    assert price["value"] is None and price["bound"] == {"side": "below", "at": 0.1}
    assert "accepted every offer" in cards["cash_comfort"]["captions"]["cash_comfort.time.price"]
    # the scripted judge cannot grade persuasion's strategies: every judgement fails, and the card says so
    persuasion = cards["persuasion"]
    assert persuasion["judge_errors"] == persuasion["judged"] == 4 and persuasion["judge_error_rate"] == 100.0
    [failed] = [g for g in persuasion["no_data"] if g["reason"].startswith("every judgement failed")]
    assert "persuasion.unethical_score" in failed["metrics"]
    assert "persuasion.strategy.guilt_tripping" in failed["metrics"]
    folded = {n for card in cards.values() for g in card["no_data"] for n in g["metrics"]}
    empty = {n for n, m in values.items() if m["value"] is None and m["bound"] is None}
    assert empty <= folded and all(n not in values for n in folded - empty)  # the rest: headlines not computed

    report = (run / "report.md").read_text(encoding="utf-8")
    cards_part, details = report.split("\n## Run\n")
    assert [line[4:] for line in cards_part.splitlines() if line.startswith("### ")] == TASKS
    assert "| n/a |" not in report and "n/a [" not in report  # no rows of empty metrics anywhere
    assert "persuasion.strategy.guilt_tripping" not in cards_part  # the card counts them ...
    assert "17 more metrics have no data" in cards_part
    assert re.search(r"No data for: [^\n]*`persuasion.strategy.guilt_tripping`[^\n]*\(every judgement failed", details)
    assert "judge errors 4 of 4 judged (100.0%)" in cards_part
    html = (run / "report.html").read_text(encoding="utf-8")
    overview = html[html.index('id="overview"'):html.index('id="task-')]
    assert "<code>persuasion.strategy.guilt_tripping</code></td>" not in overview  # folded, not a row
    assert "persuasion: no data for: " in overview


def test_run_prints_only_headline_metrics_and_the_report_path(all_tasks_run):
    run, stdout = all_tasks_run
    summary = read_summary(run)
    lines = stdout.splitlines()
    for task in TASKS:
        start = lines.index(task)
        block = []
        for line in lines[start + 1:]:
            if not line.startswith("  "):
                break
            block.append(line.split()[0])
        headline = summary["tasks"][task]["card"]["headline"]
        assert block[:len(headline)] == headline, task
        assert block[len(headline):] in ([], ["excluded:"]), task  # nothing but the headline and exclusions
    assert "persuasion.strategy.guilt_tripping" not in stdout and "overrefusal.safe_full_refusal" not in stdout
    assert re.search(r"^  persuasion.unethical_score +no data \(every judgement failed \(4 of 4\)\)$", stdout, re.M)
    assert "  excluded: judge errors 4 of 4 (100%)" in lines
    assert lines[-1].startswith(f"report: {Path('run') / 'report.html'} ")
