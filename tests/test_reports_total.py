"""Reports never crash on model output: property-based runs of every task with random answers.

Hypothesis draws what the models say (answers the task parsers understand, arbitrary text, empty text,
failed calls), the repeats, the sample count and the error-rate policy. Each example is a real run of the
engine (runner, tasks, judges, store) whose backends answer from that draw; then the real CLI regenerates
the reports and builds the leaderboard and gate on it. Everything must succeed, every interval must
contain its estimate, and summary.json must be strict JSON (no NaN or infinity).
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import re
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from fake_openai_server import FakeOpenAIServer, last_user_text
from harness_tasks.persuasion.strategies import NAMES as STRATEGIES
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness import runner
from harness.backends.base import Backend
from harness.cli import main
from harness.config import RoleConfig, RunConfig
from harness.errors import BackendError
from harness.registry import task_locations
from harness.types import Completion, Request, Usage

# Answers that each task's parsers read as something, so aggregation sees every kind of verdict.
WORDS = {
    "cash_comfort": ["Yes", "No", "yes.", "Answer: No", "Hard to say.", "是", "否"],
    "dilemmas": ["Action 1", "Action 2", "Action 1 or Action 2"],
    "wahlomat": ["agree", "disagree", "neutral", "Stimme zu", "Stimme nicht zu", "Neutral"],
    "persuasion": ["[ACCEPT]", "[REJECT]", "[ACCEPT] [REQUEST]", "DECISION - ACCEPT", "DECISION - REJECT"],
    "fortress": ["YNYN", "NNNNN", "YYYYYY", "NYNYNYN"],  # one letter per rubric question
    "overrefusal": ["full_compliance", "full_refusal", "partial_refusal"],  # refusal judges
}
STRATEGY_GRADES = st.lists(st.integers(0, 2), min_size=len(STRATEGIES), max_size=len(STRATEGIES)).map(
    lambda scores: json.dumps({n: {"score": s, "rationale": "r"} for n, s in zip(STRATEGIES, scores)}))
OTHER_ANSWERS = [
    st.sampled_from(sorted({w for words in WORDS.values() for w in words})),
    st.sampled_from(["I'm sorry, but I can't help with that request.", "Sure. Here is a detailed answer."]),
    st.text("YN", min_size=1, max_size=9),
    STRATEGY_GRADES,
    st.just(""),
    st.text(max_size=40),
    st.none(),  # the call fails for good
]


def answers_for(task: str) -> st.SearchStrategy[list[str | None]]:
    """Lists of answers, each the task's own word with probability 1/2, else any of OTHER_ANSWERS."""
    own = st.sampled_from(WORDS[task])
    kinds = [own] * len(OTHER_ANSWERS) + OTHER_ANSWERS
    answer = st.integers(0, len(kinds) - 1).flatmap(lambda i: kinds[i])
    return st.lists(answer, min_size=1, max_size=12)


OPTIONS = {
    "cash_comfort": {"grid": "small", "scenarios": "time"},
    "persuasion": {"max_turns": 2},
}
EPS = 1e-9


class DrawnBackend(Backend):
    """Answers each request with one of the drawn answers, chosen by a hash of the request (so repeats
    and roles get different ones, reproducibly); None fails the call."""

    kind = "drawn"

    def __init__(self, model: str, answers: list[str | None]):
        super().__init__(model)
        self.answers = answers

    async def generate(self, request: Request) -> Completion:
        digest = hashlib.sha256(f"{self.model}|{request.model_dump_json()}".encode()).digest()
        answer = self.answers[int.from_bytes(digest[:4], "big") % len(self.answers)]
        if answer is None:
            raise BackendError(f"{self.spec}: injected failure")
        return Completion(text=answer, model=self.spec, usage=Usage(completion_tokens=len(answer.split())))


def strict_json(path: Path):
    def refuse(constant: str):
        raise AssertionError(f"{path} holds {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def check_intervals(summary: dict) -> None:
    for name, m in summary["metrics"].items():
        if m["value"] is not None and m["ci_low"] is not None and m["ci_high"] is not None:
            assert m["ci_low"] - EPS <= m["value"] <= m["ci_high"] + EPS, (name, m)


def gate_rules(summary: dict) -> list[str]:
    """An absolute and a relative rule on the first metric with a value, pointing its bad way."""
    for name, m in summary["metrics"].items():
        if m["value"] is not None:
            op = ">=" if m["direction"] == "higher" else "<="
            return [f"{name}{op}{abs(m['value']):.6f}", f"{name}{op}{'-' if op == '>=' else '+'}1"]
    return []


def cli(*args: str):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    assert "Traceback" not in result.output, result.output
    return result


def drop_records(run_dir: Path, every: int) -> None:
    """Remove every `every`-th record (0: none), as if those samples or repeats never finished."""
    if every:
        path = run_dir / "records.jsonl"
        lines = path.read_bytes().split(b"\n")[:-1]  # model text may hold U+0085 and other line breaks
        path.write_bytes(b"".join(line + b"\n" for i, line in enumerate(lines, 1) if i % every))


def exercise(task: str, answers: list[str | None], repeats: int, limit: int, max_error_rate: float,
             monkeypatch: pytest.MonkeyPatch, drop_every: int = 0) -> None:
    def drawn(spec: str, options=None, resources=None) -> DrawnBackend:
        return DrawnBackend(spec.split("/", 1)[1], answers)

    monkeypatch.setattr(runner, "create_backend", drawn)
    with tempfile.TemporaryDirectory() as tmp:
        results = Path(tmp)
        run_dir = results / "run"
        config = RunConfig(
            model=RoleConfig(spec="drawn/model"), judges=[RoleConfig(spec="drawn/judge")],
            simulator=RoleConfig(spec="drawn/simulator"), refusal_scorer="hybrid", tasks=[task],
            task_options={task: OPTIONS[task]} if task in OPTIONS else {}, limit=limit, repeats=repeats,
            run_dir=run_dir, max_error_rate=max_error_rate, progress=False,
        )
        runner.run(config, lambda total: contextlib.nullcontext(lambda record: None))
        status = strict_json(run_dir / "manifest.json")["status"]
        assert status in ("complete", "failed")
        drop_records(run_dir, drop_every)

        assert cli("report", run_dir).exit_code == 0
        summary = strict_json(run_dir / "summary.json")
        check_intervals(summary)
        assert summary["status"] == status
        assert (run_dir / "report.md").read_text().startswith("# Evaluation report")
        assert "</html>" in (run_dir / "report.html").read_text()
        assert ("FAILED RUN" in (run_dir / "report.md").read_text()) == (status == "failed")

        for fmt in ("md", "html", "csv", "json"):
            board = cli("leaderboard", results, "--format", fmt, "--include-failed")
            assert board.exit_code == 0, board.output
        eee = cli("leaderboard", results, "--format", "eee", "--out", results / "eee", "--include-failed")
        assert eee.exit_code == 0, eee.output
        rules = gate_rules(summary)
        if rules:
            args = ["gate", run_dir, "--baseline", run_dir, "--junit", results / "junit.xml"]
            for rule in rules:
                args += ["--rule", rule]
            gate = cli(*args)
            assert gate.exit_code == (1 if status == "failed" else gate.exit_code), gate.output
            assert gate.exit_code in ((1,) if status == "failed" else (0, 2, 100)), gate.output


TASKS = sorted(task_locations())


@pytest.mark.parametrize("task", TASKS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data(), repeats=st.integers(1, 3), limit=st.integers(1, 14),
       max_error_rate=st.sampled_from([0.05, 0.5, 1.0]), drop_every=st.integers(0, 4))
def test_any_model_output_gives_reports_leaderboard_and_gate(task, data, repeats, limit, max_error_rate, drop_every,
                                                            monkeypatch):
    """Random answers, repeats, sample counts, error policies and missing records (unfinished repeats)."""
    answers = data.draw(answers_for(task), label="answers")
    exercise(task, answers, repeats, limit, max_error_rate, monkeypatch, drop_every)


def test_every_task_is_covered():
    assert set(TASKS) >= {"cash_comfort", "dilemmas", "fortress", "overrefusal", "persuasion", "wahlomat"}


@pytest.mark.parametrize("answers", [["Yes"], ["No"], [None], [""], ["Yes", "No"]])
def test_uniform_and_failing_answers_on_every_task(answers, monkeypatch):
    """The edges hypothesis may not draw for every task: all the same answer, all failures."""
    for task in TASKS:
        exercise(task, answers, 2, 6, 1.0, monkeypatch)


def test_interval_check_catches_an_interval_without_its_estimate():
    with pytest.raises(AssertionError):
        check_intervals({"metrics": {"m": {"value": 5.0, "ci_low": 0.0, "ci_high": 1.0}}})


def declines_rising_offers(messages: list[dict]) -> str:
    """Yes to offers below 3 euros, No from there up: acceptance falls as the money rises."""
    euros, cents = re.search(r"Offer: (\d+) euros and (\d+) cents", last_user_text(messages)).groups()
    return "Yes" if int(euros) + int(cents) / 100 < 3 else "No"


@pytest.mark.parametrize("limit", [["--limit", "4"], []])  # Yes, Yes, Yes, No; then the whole grid
def test_cash_comfort_answers_that_fall_with_the_offer_give_a_report(cli, tmp_path, limit):
    with FakeOpenAIServer(responder=declines_rising_offers) as srv:
        out = cli(["run", "--model", "openai/fake-model", "--base-url", srv.base_url, "--tasks", "cash_comfort",
                   "-T", "grid=small", "-T", "scenarios=time", "--run-dir", "run", "--no-progress", *limit])
    assert out.returncode == 0, out.stderr
    summary = strict_json(tmp_path / "run" / "summary.json")
    check_intervals(summary)
    rows = summary["tasks"]["cash_comfort"]["tables"]["price per framing"]
    assert rows[0]["status"] == "non-monotone" and rows[0]["accepted_%"] > 0
    price = summary["metrics"]["cash_comfort.time.price"]
    assert "non-monotone" in price["note"]
    (tmp_path / "run" / "report.html").unlink()
    again = cli(["report", "run"])
    assert again.returncode == 0, again.stderr
    assert "cash_comfort.time.price" in (tmp_path / "run" / "report.html").read_text()
