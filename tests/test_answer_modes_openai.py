"""Answer modes on OpenAI-compatible servers, end to end through the CLI: the request fields each server
dialect expects (tests/fake_openai_server.py checks them as the real servers do), the fallback on 400, and
option scores from `logprobs.content[].top_logprobs`."""
from __future__ import annotations

import json
import math

import pytest
from fake_openai_server import FakeOpenAIServer

from conftest import metric, read_records, read_summary

VERBOSE = "Well, weighing both sides, I would probably go with Action 2 in the end."


def dilemmas_args(srv: FakeOpenAIServer, *extra: str, run_dir: str = "run") -> list[str]:
    return ["run", "--model", "openai/fake-model", "--base-url", srv.base_url, "--tasks", "dilemmas", "--limit", "2",
            "-T", "swap=false", "--run-dir", run_dir, "--no-progress", "--max-connections", "1", *extra]


def chat_bodies(srv: FakeOpenAIServer) -> list[dict]:
    return [r["body"] for r in srv.requests if r["path"].endswith("/chat/completions")]


def model_role(run_dir) -> dict:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    return next(r for r in manifest["roles"] if r["role"] == "model")


def test_free_mode_sends_no_choice_fields_and_verbose_answers_are_invalid(cli, tmp_path):
    with FakeOpenAIServer(lambda messages: VERBOSE, dialect="openai") as srv:
        out = cli(dilemmas_args(srv))
        bodies = chat_bodies(srv)
    assert out.returncode == 0, out.stderr
    assert not any({"response_format", "logprobs", "structured_outputs"} & set(body) for body in bodies)
    assert metric(read_summary(tmp_path / "run"), "dilemmas", "dilemmas.invalid_rate")["value"] == 100.0


def test_constrained_on_openai_sends_a_strict_json_schema_and_reads_the_answer_object(cli, tmp_path):
    with FakeOpenAIServer(lambda messages: VERBOSE, dialect="openai") as srv:
        out = cli(dilemmas_args(srv, "--answer-mode", "constrained"))
        bodies = chat_bodies(srv)
    assert out.returncode == 0, out.stderr
    assert len(bodies) == 2  # accepted at once: no fallback
    schema_format = bodies[0]["response_format"]
    assert schema_format["type"] == "json_schema"
    assert schema_format["json_schema"]["name"] == "answer" and schema_format["json_schema"]["strict"] is True
    assert schema_format["json_schema"]["schema"]["properties"]["answer"]["enum"] == ["Action 1", "Action 2"]
    completions = [r["exchanges"][0]["completion"] for r in read_records(tmp_path / "run")]
    assert [c["text"] for c in completions] == ["Action 1", "Action 1"]  # the server's constrained answer, unwrapped
    assert {c["answer_mode"] for c in completions} == {"constrained"}
    summary = read_summary(tmp_path / "run")
    invalid = metric(summary, "dilemmas", "dilemmas.invalid_rate")
    assert invalid["value"] == 0.0 and "constrained" in invalid["note"]
    role = model_role(tmp_path / "run")
    assert role["answer_mode"] == "constrained" and role["answer_forms"] == {"constrained": "json_schema"}


def test_llama_cpp_server_rejects_json_schema_once_then_json_object_with_schema_is_remembered(cli, tmp_path):
    with FakeOpenAIServer(lambda messages: "Action 2", dialect="llama.cpp") as srv:
        out = cli(dilemmas_args(srv, "--answer-mode", "constrained"))
        bodies = chat_bodies(srv)
    assert out.returncode == 0, out.stderr
    assert [b["response_format"]["type"] for b in bodies] == ["json_schema", "json_object", "json_object"]
    assert bodies[1]["response_format"]["schema"]["properties"]["answer"]["enum"] == ["Action 1", "Action 2"]
    records = read_records(tmp_path / "run")
    assert all(r["error"] is None for r in records)
    assert [r["exchanges"][0]["completion"]["text"] for r in records] == ["Action 2", "Action 2"]
    assert model_role(tmp_path / "run")["answer_forms"] == {"constrained": "json_object"}


def test_vllm_server_gets_its_structured_outputs_choice_first(cli, tmp_path):
    with FakeOpenAIServer(lambda messages: VERBOSE, dialect="vllm") as srv:
        out = cli(dilemmas_args(srv, "--answer-mode", "constrained", "--server", "vllm"))
        bodies = chat_bodies(srv)
    assert out.returncode == 0, out.stderr
    assert [b.get("structured_outputs") for b in bodies] == [{"choice": ["Action 1", "Action 2"]}] * 2
    assert not any("response_format" in b for b in bodies)
    records = read_records(tmp_path / "run")
    assert [r["exchanges"][0]["completion"]["text"] for r in records] == ["Action 1", "Action 1"]
    assert model_role(tmp_path / "run")["answer_forms"] == {"constrained": "structured_outputs"}


def test_a_server_rejecting_every_form_fails_loudly(cli, tmp_path):
    def refuse_all(prompt, attempt):
        return "400"

    with FakeOpenAIServer(lambda messages: "Action 1", faults=refuse_all, dialect="openai") as srv:
        out = cli(dilemmas_args(srv, "--answer-mode", "constrained", "--limit", "1"))
        bodies = chat_bodies(srv)
    assert out.returncode == 1  # its only sample failed: the run failed (error-rate policy)
    assert len(bodies) == 4  # json_schema, json_object, structured_outputs, guided_choice: then it gives up
    assert "guided_choice" in bodies[-1]
    records = read_records(tmp_path / "run")
    assert records[0]["error"] and "400" in records[0]["error"]
    assert "1 samples ended in errors" in out.stderr


def test_logprob_mode_scores_options_at_the_first_diverging_token(cli, tmp_path):
    def answer(messages):
        return {"content": "Action 2", "top_logprobs": [{"Action": -0.01, "Option": -5.0}, {" 2": -0.2, " 1": -1.8}]}

    with FakeOpenAIServer(answer, dialect="openai") as srv:
        out = cli(dilemmas_args(srv, "--answer-mode", "logprob"))
        bodies = chat_bodies(srv)
    assert out.returncode == 0, out.stderr
    assert all(b["logprobs"] is True and b["top_logprobs"] == 20 for b in bodies)
    assert not any("response_format" in b for b in bodies)
    completion = read_records(tmp_path / "run")[0]["exchanges"][0]["completion"]
    assert completion["answer_mode"] == "logprob" and completion["text"] == "Action 2"
    assert completion["option_logprobs"] == pytest.approx({"Action 1": -1.81, "Action 2": -0.21})
    role = model_role(tmp_path / "run")
    assert role["answer_mode"] == "logprob" and "top_logprobs=20" in role["answer_forms"]["logprob"]
    probability = 1 / (1 + math.exp(-1.6))  # P(Action 2) renormalised over the two options
    assert completion["option_probs"]["Action 2"] == pytest.approx(probability)  # records keep the probabilities
    summary = read_summary(tmp_path / "run")
    expected = next(row for row in summary["tasks"]["dilemmas"]["tables"]["option_probabilities"])
    assert expected["p(Action 2)"] == pytest.approx(round(probability, 3))


def test_judge_answer_mode_is_per_role_and_scores_refusal_labels(cli, tmp_path):
    def answer(messages):
        text = messages[-1]["content"]
        if "full_compliance" in text:  # the refusal rubric
            return {"content": "full_refusal",
                    "top_logprobs": [{"full_refusal": -0.1, "full_compliance": -2.5, "partial_refusal": -4.0}]}
        return "I cannot help with that."

    with FakeOpenAIServer(answer, dialect="openai") as srv:
        out = cli(["run", "--model", "openai/fake-model", "--base-url", srv.base_url, "--tasks", "overrefusal",
                   "--limit", "2", "--judge", "openai/fake-judge", "--refusal-scorer", "judge",
                   "--judge-answer-mode", "logprob", "--run-dir", "run", "--no-progress"])
        bodies = chat_bodies(srv)
    assert out.returncode == 0, out.stderr
    judge_bodies = [b for b in bodies if b["model"] == "fake-judge"]
    model_bodies = [b for b in bodies if b["model"] == "fake-model"]
    assert judge_bodies and all(b.get("logprobs") is True for b in judge_bodies)
    assert model_bodies and not any("logprobs" in b for b in model_bodies)  # the model answers freely
    score = read_records(tmp_path / "run")[0]["scores"]["refusal"]
    verdict = score["raw"]["judges"][0]
    assert score["label"] == "full_refusal" and verdict["answer_mode"] == "logprob"
    probs = verdict["option_probs"]
    assert probs["partial_refusal"] == pytest.approx(math.exp(-4.0) / (math.exp(-0.1) + math.exp(-2.5) + math.exp(-4.0)))
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    modes = {r["role"]: r["answer_mode"] for r in manifest["roles"]}
    assert modes == {"model": "free", "judge": "logprob"}


def test_cash_comfort_logprob_gives_a_smooth_price_from_acceptance_probabilities(cli, tmp_path):
    """Every counted answer is No (P(Yes) < 0.5 at every offer), so the counted fit has no price; the
    probabilities still rise with the money, and the expected-acceptance fit finds where they would cross."""
    import re

    def answer(messages):
        found = re.search(r"Offer: (\d+) euros and (\d+) cents", messages[-1]["content"])
        amount = int(found[1]) + int(found[2]) / 100
        p_yes = 0.45 * amount / (amount + 10)  # below one half everywhere, rising with the amount
        return {"content": "No", "top_logprobs": [{"No": math.log(1 - p_yes), "Yes": math.log(p_yes)}]}

    with FakeOpenAIServer(answer, dialect="openai") as srv:
        out = cli(["run", "--model", "openai/fake-model", "--base-url", srv.base_url, "--tasks", "cash_comfort",
                   "-T", "grid=small", "-T", "scenarios=time", "--answer-mode", "logprob", "--run-dir", "run",
                   "--no-progress"])
    assert out.returncode == 0, out.stderr
    result = read_summary(tmp_path / "run")["tasks"]["cash_comfort"]
    counted = result["tables"]["price per framing"][0]
    assert counted["accepted_%"] == 0.0 and counted["price"] is None
    expected = result["tables"]["price from acceptance probabilities"]
    assert expected and all(row["slope_b1"] > 0 and 0 < row["mean_p_accept_%"] < 50 for row in expected)
    assert all(row["price_expected"] is not None and row["status"] == "fit" for row in expected)
    probs = result["tables"]["option_probabilities"]
    assert all(row["answer"] == "No" and row["p(Yes)"] < 0.5 for row in probs)
    assert any("acceptance probabilities" in note for note in result["notes"])


def test_run_file_sets_answer_modes_and_compare_shows_free_beside_constrained(cli, tmp_path):
    with FakeOpenAIServer(lambda messages: VERBOSE, dialect="openai") as srv:
        free = cli(dilemmas_args(srv, run_dir="free"))
        (tmp_path / "eval.yaml").write_text(
            f"model: {{spec: openai/fake-model, base_url: '{srv.base_url}', answer_mode: constrained}}\n"
            "tasks: dilemmas\nlimit: 2\ntask_options: {dilemmas: {swap: false}}\nrun_dir: constrained\n"
            "no_progress: true\n", encoding="utf-8")
        constrained = cli(["run", "--config", "eval.yaml"])
    assert free.returncode == 0, free.stderr
    assert constrained.returncode == 0, constrained.stderr
    assert model_role(tmp_path / "constrained")["answer_mode"] == "constrained"
    out = cli(["report", "--compare", "free", "constrained"])
    assert out.returncode == 0, out.stderr
    assert "- A answers: model (openai/fake-model) free" in out.stdout
    assert "- B answers: model (openai/fake-model) constrained [json_schema]" in out.stdout
    row = next(line for line in out.stdout.splitlines() if line.startswith("| dilemmas.invalid_rate "))
    assert "100" in row and "-100" in row  # free: every verbose answer invalid; constrained: none


def test_constrained_strategy_judges_get_the_verdict_json_schema(cli, tmp_path):
    from test_persuasion_cli import A, conversation_args, judge_json

    from harness_tasks.persuasion.strategies import NAMES

    with FakeOpenAIServer(lambda messages: judge_json(A), dialect="openai") as srv:
        args = conversation_args(tmp_path, "--judge-base-url", srv.base_url, "--judge-answer-mode", "constrained",
                                 "--limit", "1", judge="openai/fake-judge")
        out = cli(["run", "--model", *args, "-t", "persuasion", "--run-dir", "run", "--no-progress"])
        bodies = chat_bodies(srv)
    assert out.returncode == 0, out.stderr
    assert bodies and all(b["response_format"]["type"] == "json_schema" for b in bodies)
    schema = bodies[0]["response_format"]["json_schema"]["schema"]
    assert list(schema["properties"]) == list(NAMES) and schema["required"] == list(NAMES)
    assert schema["properties"][NAMES[0]]["properties"]["score"]["enum"] == [0, 1, 2]
    score = read_records(tmp_path / "run")[0]["scores"]["strategies"]
    assert score["raw"]["strategy_scores"] == dict(zip(NAMES, A))
    assert score["raw"]["judges"][0]["answer_mode"] == "constrained"


def test_a_backend_without_answer_modes_refuses_them_up_front(cli, tmp_path):
    out = cli(["run", "--model", "scripted/comply-all", "--tasks", "dilemmas", "--limit", "1",
               "--answer-mode", "logprob", "--run-dir", "run", "--no-progress"])
    assert out.returncode == 2
    assert out.stderr.strip().splitlines() == [
        "error: scripted/comply-all (model) cannot answer choice questions in logprob mode; it supports free "
        "(local/, vllm/ and openai/ models support all)"]
    assert not (tmp_path / "run" / "records.jsonl").exists()


def test_constrained_rubric_judges_get_a_y_n_pattern_of_the_rubric_length(cli, tmp_path):
    import re

    def answer(messages):
        text = messages[-1]["content"]
        found = re.search(r"Questions \((\d+)\)", text)
        if found:  # the fortress rubric: one letter per question
            return "Y" * int(found[1])
        return "Here is how you would do that, step by step."

    with FakeOpenAIServer(answer, dialect="openai") as srv:
        out = cli(["run", "--model", "openai/fake-model", "--base-url", srv.base_url, "--tasks", "fortress",
                   "--limit", "2", "--judge", "openai/fake-judge", "--judge-answer-mode", "constrained",
                   "--run-dir", "run", "--no-progress"])
        bodies = chat_bodies(srv)
    assert out.returncode == 0, out.stderr
    judged = [b for b in bodies if b["model"] == "fake-judge"]
    assert len(judged) == 2
    patterns = sorted(b["response_format"]["json_schema"]["schema"]["properties"]["answer"]["pattern"] for b in judged)
    lengths = [len(r["metadata"]["rubric"]) for r in read_records(tmp_path / "run")]
    assert patterns == sorted(f"^(?:[YN]{{{n}}})$" for n in lengths)
    harm = read_records(tmp_path / "run")[0]["scores"]["harm"]
    assert harm["value"] == 1.0 and harm["raw"]["judges"][0]["answer_mode"] == "constrained"
