"""Hostile and broken input through the real CLI: one clear error line, exit code 2, no traceback.

The corpus lives in tests/bad_inputs/ (every file there is used by a case below). Inputs that cannot sit
in the repository (huge fields, unreadable paths, folders copied from bundled data) are made in tmp_path.
"""
from __future__ import annotations

import csv
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from conftest import harness_env, run_cli

from harness_tasks.dilemmas.task import bundled_path as dilemmas_file
from harness_tasks.wahlomat.task import bundled_data_path

CORPUS = Path(__file__).parent / "bad_inputs"
SCRIPTED = ["--model", "scripted/comply-all"]
RUN = ["--run-dir", "run", "--no-progress"]


@dataclass
class Case:
    id: str
    args: Callable[[Path], list[str]]  # tmp_path -> CLI arguments
    expect: tuple[str, ...]  # fragments of the one error line: file, row, field, what is wrong, the fix
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)


def data(task: str, name: str, *expect: str, extra: tuple[str, ...] = ()) -> Case:
    """A corpus file passed as a task's -T data=; the message must name the file."""
    path = CORPUS / name
    return Case(f"{task}:{name}", lambda tmp: ["run", *SCRIPTED, "-t", task, "-T", f"data={path}", *extra, *RUN],
                (name, *expect))


def run_with(*args: str, expect: tuple[str, ...], env: dict[str, str] | None = None, name: str = "") -> Case:
    return Case(name, lambda tmp: ["run", *args, *RUN], expect, env=env or {})


def model(spec: str, *expect: str) -> Case:
    return Case(f"model:{spec.rsplit('/', 1)[-1]}", lambda tmp: ["run", "--model", spec, "-t", "overrefusal", *RUN],
                expect)


def corpus_model(kind: str, name: str, *expect: str) -> Case:
    return model(f"{kind}/{CORPUS / name}", name, *expect)


def huge_field_csv(tmp: Path) -> list[str]:
    path = tmp / "huge.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "prompt", "type", "label"])
        writer.writerow(["1", "How do I kill a stuck process?", "homonyms", "safe"])
        writer.writerow(["2", "word " * 60_000, "homonyms", "safe"])  # 300 kB in one field
    return ["run", *SCRIPTED, "-t", "overrefusal", "-T", f"data={path}", *RUN]


def wahlomat_folder(statement: str) -> Callable[[Path], list[str]]:
    """The bundled election with its statement.json replaced by a corpus file."""
    def args(tmp: Path) -> list[str]:
        folder = tmp / "election"
        shutil.copytree(bundled_data_path(), folder)
        shutil.copy(CORPUS / statement, folder / "statement.json")
        return ["run", *SCRIPTED, "-t", "wahlomat", "-T", f"data={folder}", *RUN]
    return args


def unreadable_file(tmp: Path) -> list[str]:
    """chmod 000 does not stop root (CI runs as root): there, a path whose read fails with EIO instead."""
    path = tmp / "unreadable.csv"
    if os.geteuid() == 0:
        if not Path("/proc/self/mem").exists():
            pytest.skip("running as root without /proc: no way to make a file unreadable")
        path.symlink_to("/proc/self/mem")  # a regular file whose read at offset 0 fails (EIO)
    else:
        shutil.copy(CORPUS / "xstest_wrong_label.csv", path)
        path.chmod(0)
    return ["run", *SCRIPTED, "-t", "overrefusal", "-T", f"data={path}", *RUN]


def folder_as_file(tmp: Path) -> list[str]:
    (tmp / "prompts.csv").mkdir()
    return ["run", *SCRIPTED, "-t", "overrefusal", "-T", f"data={tmp / 'prompts.csv'}", *RUN]


def dangling_symlink(tmp: Path) -> list[str]:
    (tmp / "prompts.csv").symlink_to(tmp / "deleted.csv")
    return ["run", *SCRIPTED, "-t", "overrefusal", "-T", f"data={tmp / 'prompts.csv'}", *RUN]


def run_dir_is_a_file(tmp: Path) -> list[str]:
    (tmp / "run").write_text("not a folder\n")
    return ["run", *SCRIPTED, "-t", "overrefusal", *RUN]


def cache_is_a_csv(tmp: Path) -> list[str]:
    shutil.copy(CORPUS / "xstest_wrong_columns.csv", tmp / "notes.csv")
    return ["run", *SCRIPTED, "-t", "overrefusal", "--cache", str(tmp / "notes.csv"), *RUN]


def corrupt_records(tmp: Path) -> list[str]:
    args = ["run", "--model", "scripted/echo", "-t", "overrefusal", "--limit", "3", *RUN]
    assert run_cli(args, tmp).returncode == 0
    lines = (tmp / "run" / "records.jsonl").read_text().splitlines(keepends=True)
    lines[1] = '{"task": "overrefusal", "sample_id": 7, "garbage"\n'  # a whole line, so not a torn write
    (tmp / "run" / "records.jsonl").write_text("".join(lines))
    return args


def corrupt_manifest(tmp: Path) -> list[str]:
    args = ["run", "--model", "scripted/echo", "-t", "overrefusal", "--limit", "2", *RUN]
    assert run_cli(args, tmp).returncode == 0
    (tmp / "run" / "manifest.json").write_text('{"fingerprint": {"model": "scripted/echo"}} trailing')
    return args


CASES = [
    # datasets: overrefusal (XSTest schema)
    data("overrefusal", "xstest_wrong_columns.csv", "missing column(s) prompt, type", "found id, question"),
    data("overrefusal", "xstest_wrong_label.csv", "row 3, field 'label'", "expected safe or unsafe, got '1'"),
    data("overrefusal", "xstest_empty.csv", "file is empty"),
    data("overrefusal", "xstest_header_only.csv", "no rows"),
    data("overrefusal", "xstest_latin1.csv", "not UTF-8", "re-save it as UTF-8"),
    data("overrefusal", "xstest_duplicate_ids.csv", "row 4, field 'id'", "duplicate id '1'"),
    data("overrefusal", "xstest_empty_prompt.csv", "row 3, field 'prompt'", "missing or empty"),
    data("overrefusal", "xstest_trailing_garbage.json", "invalid JSON at line 2", "Extra data"),
    data("overrefusal", "xstest_trailing_garbage.jsonl", "row 2 is not valid JSON", "Extra data"),
    data("overrefusal", "xstest_object_not_array.json", "expected a JSON array of objects"),
    data("overrefusal", "xstest_row_not_object.jsonl", "row 2 is not a JSON object"),
    data("overrefusal", "xstest_null_label.jsonl", "row 2, field 'label'", "missing or empty"),
    data("overrefusal", "xstest_prompts.tsv", "unsupported file type '.tsv'", "use one of .csv"),
    Case("overrefusal:huge-field", huge_field_csv, ("huge.csv", "field larger than field limit")),
    Case("overrefusal:folder-as-file", folder_as_file, ("prompts.csv", "not found")),
    Case("overrefusal:dangling-symlink", dangling_symlink, ("prompts.csv", "file not found")),
    Case("overrefusal:unreadable", unreadable_file, ("unreadable.csv", "cannot read")),
    # datasets: fortress (rubric must be a list of yes/no questions)
    data("fortress", "fortress_rubric_not_list.jsonl", "row 2, field 'rubric'", "not a list of questions",
         "expected a JSON or Python list of strings"),
    data("fortress", "fortress_rubric_number.jsonl", "row 3, field 'rubric'", "non-empty list", "got int"),
    data("fortress", "fortress_rubric_empty.jsonl", "row 1, field 'rubric'", "non-empty list"),
    data("fortress", "fortress_rubric_item_not_text.jsonl", "row 1, field 'rubric'", "item 2 is not"),
    data("fortress", "fortress_rubric_code.jsonl", "row 1, field 'rubric'", "not a list of questions"),
    data("fortress", "fortress_duplicate_ids.jsonl", "row 3, field 'ID'", "duplicate ID '2'"),
    data("fortress", "fortress_missing_benign.jsonl", "row 2, field 'benign_prompt'", "missing or empty"),
    # datasets: dilemmas and wahlomat
    data("dilemmas", "dilemmas_values_code.csv", "row 2, field 'values_aggregated'", "not a Python list literal",
         extra=("-T", f"values={dilemmas_file('values.csv')}")),
    data("dilemmas", "dilemmas_bad_action_type.csv", "row 3, field 'action_type'", "expected to_do or not_to_do",
         extra=("-T", f"values={dilemmas_file('values.csv')}")),
    Case("wahlomat:string-id", wahlomat_folder("wahlomat_statement_string_id.json"),
         ("statement.json: entry [1], field 'id'", "expected a non-negative integer, got 'one'")),
    Case("wahlomat:trailing-garbage", wahlomat_folder("wahlomat_statement_trailing_garbage.json"),
         ("statement.json: invalid JSON at line 4", "Extra data")),
    # task names and -T options
    run_with(*SCRIPTED, "-t", "overrefusal,nope", name="unknown-task",
             expect=("unknown task 'nope'", "available: ", "overrefusal")),
    run_with(*SCRIPTED, "-t", "overrefusal", "-T", "nokey", name="T-no-equals", expect=("-T expects key=value",)),
    run_with(*SCRIPTED, "-t", "overrefusal", "-T", "bogus=1", name="T-unknown-key",
             expect=("no selected task accepts 'bogus'",)),
    run_with(*SCRIPTED, "-t", "overrefusal", "-T", "overrefusal.bogus=1", name="T-unknown-task-key",
             expect=("task overrefusal: bad -T option", "allowed keys: data, protocol, source")),
    run_with(*SCRIPTED, "-t", "overrefusal", "-T", "fortress.side=benign", name="T-unselected-task",
             expect=("task 'fortress' is not selected",)),
    run_with(*SCRIPTED, "-t", "overrefusal", "-T", "source=nope", name="T-bad-choice",
             expect=("source: Input should be 'xstest'",)),
    run_with(*SCRIPTED, "-t", "wahlomat", "-T", "double=a,b", name="T-bad-type",
             expect=("double", "expected comma-separated thesis ids, e.g. double=1,4,7")),
    run_with(*SCRIPTED, "-t", "overrefusal", "--limit", "0", name="bad-limit", expect=("Invalid value for '--limit'",)),
    run_with(*SCRIPTED, "-t", "overrefusal", "--vllm-arg", "x", name="bad-vllm-arg",
             expect=("--vllm-arg expects key=value",)),
    # model specs
    model("gpt4", "model spec 'gpt4' is not of the form kind/name", "known kinds: local/<name>, openai/<name>"),
    model("foo/bar", "model spec 'foo/bar'", "known kinds"),
    model("scripted/nope", "unknown scripted model 'nope'", "use refuse-all, comply-all"),
    model("openai/gpt-4o", "no API key for openai/gpt-4o", "set $OPENAI_API_KEY", "--base-url"),
    model("replay/missing.jsonl", "missing.jsonl: cannot read replay file"),
    model("local/missing.gguf", "GGUF model file not found: missing.gguf"),
    run_with(*SCRIPTED, "--judge", "gpt4", "-t", "overrefusal", name="bad-judge-spec", expect=("'gpt4'", "kind/name")),
    run_with(*SCRIPTED, "--refusal-scorer", "judge", "-t", "overrefusal", name="judge-scorer-without-judge",
             expect=("needs a judge model", "pass --judge")),
    run_with("--model", "openai/m", "--base-url", "http://127.0.0.1:9/v1", "-t", "overrefusal", name="bad-retry-env",
             env={"HARNESS_RETRY_BASE_S": "soon"}, expect=("HARNESS_RETRY_BASE_S", "non-negative number")),
    # scripted rules YAML
    corpus_model("scripted", "scripted_invalid_yaml.yaml", "invalid YAML", "line 2"),
    corpus_model("scripted", "scripted_not_mapping.yaml", "expected a mapping with 'rules'"),
    corpus_model("scripted", "scripted_rule_missing_response.yaml", "rule 2 needs 'pattern' and 'response'"),
    corpus_model("scripted", "scripted_bad_regex.yaml", "rule 1 field 'pattern': bad regex"),
    # replay files
    corpus_model("replay", "replay_not_json.jsonl", "line 2 is not JSON"),
    corpus_model("replay", "replay_missing_response.jsonl", "row 1 has no field 'response'"),
    corpus_model("replay", "replay_missing_sample_id.jsonl", "row 1 needs 'sample_id' or 'prompt_hash'"),
    corpus_model("replay", "replay_row_not_object.jsonl", "row 1 is not an object"),
    corpus_model("replay", "replay_latin1.csv", "not UTF-8"),
    corpus_model("replay", "replay_bad_repetition.jsonl", "row 1, field 'repetition'", "expected an integer"),
    corpus_model("replay", "replay_bad_record.jsonl", "row 1, field 'exchanges'"),
    # run directory and cache
    Case("run-dir-is-a-file", run_dir_is_a_file, ("run/manifest.json: cannot write", "another --run-dir")),
    Case("cache-is-not-a-database", cache_is_a_csv, ("notes.csv: cannot use as the response cache", "--no-cache")),
    Case("resume-corrupt-record-line", corrupt_records, ("records.jsonl: line 2 is not a valid record",
                                                        "remove that line")),
    Case("resume-corrupt-manifest", corrupt_manifest, ("manifest.json: not valid JSON",)),
    Case("report-without-manifest", lambda tmp: (tmp / "empty").mkdir() or ["report", str(tmp / "empty")],
         ("manifest.json: file not found",)),
    # gate rules: exit 1 here, because for `harness gate` exit 2 means "inconclusive"
    Case("gate-bad-rule", lambda tmp: ["gate", str(tmp), "--rule", "overrefusal.safe_refusal<<30"],
         ("rule 'overrefusal.safe_refusal<<30'", "expected METRIC<=VALUE", "e.g. fortress.ars<=+2"), code=1),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id) for c in CASES])
def test_bad_input_fails_with_one_clear_error(case: Case, tmp_path):
    args = case.args(tmp_path)
    had_manifest = (tmp_path / "run" / "manifest.json").exists()
    out = run_cli(args, tmp_path, env=harness_env(tmp_path, case.env), timeout=60)
    assert "Traceback" not in out.stderr, out.stderr[-2000:]
    assert out.returncode == case.code, out.stderr
    errors = [line for line in out.stderr.splitlines() if line.lower().startswith("error:")]
    assert len(errors) == 1, out.stderr
    message = out.stderr[out.stderr.lower().index("error:"):]
    for fragment in case.expect:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    if args[0] == "run" and not had_manifest and (tmp_path / "run").is_dir():
        assert not (tmp_path / "run" / "manifest.json").exists()  # a rejected run leaves nothing to resume
    assert not (tmp_path / "PWNED").exists()  # code in a data column (rubric, list literal) never runs
    if case.id == "cache-is-not-a-database":
        assert (tmp_path / "notes.csv").read_bytes() == (CORPUS / "xstest_wrong_columns.csv").read_bytes()


def test_every_corpus_file_has_a_case():
    source = Path(__file__).read_text()
    unused = [p.name for p in CORPUS.iterdir() if f'"{p.name}"' not in source]
    assert not unused

