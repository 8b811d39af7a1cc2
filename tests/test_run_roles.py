"""Per-role configuration end to end: each role (model, judges, simulator) on its own OpenAI-compatible
stub server with its own key, from flags and from a run file; credentials never reach the run dir."""
from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import harness_env, read_records
from fake_openai_server import FakeOpenAIServer, last_user_text
from harness_tasks.persuasion.strategies import NAMES

KEYS = {"MODEL_KEY": "model-key-0123456789", "JUDGE_KEY": "judge-key-0123456789", "SIM_KEY": "sim-key-0123456789"}


def persuader(messages: list[dict]) -> str:
    return "[ACCEPT] [REQUEST] Please say yes, it will be worth it."


def persuadee(messages: list[dict]) -> str:
    return "Fine, I will do it. [DECISION - ACCEPT]"


def judge(messages: list[dict]) -> str:
    text = last_user_text(messages)
    if "<assistant_response>" in text:  # refusal rubric
        return "[[full_compliance]]"
    return json.dumps({name: {"score": 1, "rationale": "seen"} for name in NAMES})


def roles_seen(srv: FakeOpenAIServer) -> tuple[set[str], set[str]]:
    """(model names, credentials: Authorization header and api-key query value) of the chat requests."""
    chats = [r for r in srv.requests if "/chat/completions" in r["path"]]
    keys = {next(v for k, v in r["headers"].items() if k.lower() == "authorization") for r in chats}
    keys |= {r["path"].partition("api-key=")[2] for r in chats if "api-key=" in r["path"]}
    return {r["body"]["model"] for r in chats}, keys


def basic(user_password: str) -> str:
    return "Basic " + base64.b64encode(user_password.encode()).decode()


def run_dir_text(run_dir: Path) -> str:
    return "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in run_dir.rglob("*") if p.is_file())


@pytest.fixture
def servers():
    with FakeOpenAIServer(responder=persuader) as model, FakeOpenAIServer(responder=judge) as judges, \
            FakeOpenAIServer(responder=persuadee) as simulator:
        yield model, judges, simulator


def with_userinfo(url: str, password: str) -> str:
    """http://127.0.0.1:PORT/v1 -> http://user:PASSWORD@127.0.0.1:PORT/v1 (HTTP basic auth)"""
    scheme, rest = url.split("://")
    return f"{scheme}://user:{password}@{rest}"


def check_roles_kept_apart(model, judges, simulator, model_auth: set[str], judge_auth: set[str]) -> None:
    """Each server saw only its own role's model name and credentials."""
    assert roles_seen(model) == ({"persuader"}, model_auth)
    assert roles_seen(judges) == ({"grader"}, judge_auth)
    assert roles_seen(simulator) == ({"persuadee"}, {f"Bearer {KEYS['SIM_KEY']}"})


def test_flags_give_every_role_its_own_endpoint_key_and_settings(cli, tmp_path, servers):
    model, judges, simulator = servers
    out = cli(["run", "--model", "openai/persuader", "--base-url", f"{model.base_url}?api-key=modelpass99",
               "--api-key-env", "MODEL_KEY", "--max-tokens", "50",
               "--judge", "openai/grader", "--judge-base-url", with_userinfo(judges.base_url, "judgepass99"),
               "--judge-api-key-env", "JUDGE_KEY", "--judge-max-connections", "2", "--judge-max-tokens", "300",
               "--simulator", "openai/persuadee", "--simulator-base-url", simulator.base_url,
               "--simulator-api-key-env", "SIM_KEY", "--simulator-temperature", "0.3", "--simulator-timeout", "30",
               "-t", "persuasion", "-T", "max_turns=2", "--limit", "2", "--run-dir", "run", "--no-progress"],
              env=harness_env(tmp_path, KEYS))
    assert out.returncode == 0, out.stderr
    check_roles_kept_apart(model, judges, simulator, {f"Bearer {KEYS['MODEL_KEY']}", "modelpass99"},
                           {basic("user:judgepass99")})
    assert {r["body"]["max_tokens"] for r in model.requests} == {50}
    assert {r["body"].get("max_tokens") for r in judges.requests} == {300}
    assert {r["body"]["temperature"] for r in simulator.requests} == {0.3}
    records = read_records(tmp_path / "run")
    assert len(records) == 2 and all(r["error"] is None for r in records)

    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    roles = {r["role"]: r for r in manifest["roles"]}
    assert roles["model"]["endpoint"] == model.base_url and roles["judge"]["endpoint"] == judges.base_url
    assert roles["simulator"]["endpoint"] == simulator.base_url
    assert roles["judge"]["options"]["max_connections"] == 2 and roles["simulator"]["options"]["timeout_s"] == 30
    assert roles["model"]["options"]["api_key_env"] == "MODEL_KEY"
    assert any("--judge-base-url" in arg for arg in manifest["command"])
    out = cli(["report", "run"])
    assert out.returncode == 0, out.stderr
    everything = run_dir_text(tmp_path / "run")
    for secret in ("modelpass99", "judgepass99", "user:", "api-key=", *KEYS.values()):
        assert secret not in everything, secret


def test_a_run_file_expresses_a_panel_on_different_endpoints(cli, tmp_path, servers):
    model, judges, simulator = servers
    with FakeOpenAIServer(responder=judge) as second_judge:
        (tmp_path / "eval.yaml").write_text(f"""
model:
  spec: openai/persuader
  base_url: {model.base_url}
  api_key_env: MODEL_KEY
  max_connections: 4
  max_tokens: 50
judges:
  - spec: openai/grader
    base_url: {with_userinfo(judges.base_url, "judgepass99")}
    api_key_env: JUDGE_KEY
  - spec: openai/grader
    base_url: {second_judge.base_url}
    api_key_env: JUDGE_KEY
    max_retries: 1
simulator:
  spec: openai/persuadee
  base_url: {simulator.base_url}
  api_key_env: SIM_KEY
  temperature: 0.3
tasks: persuasion
task_options:
  persuasion: {{max_turns: 2}}
limit: 1
run_dir: from-file
no_progress: true
""", encoding="utf-8")
        out = cli(["run", "--config", "eval.yaml", "--limit", "2", "--simulator-temperature", "0.5"],
                  env=harness_env(tmp_path, KEYS))
        assert out.returncode == 0, out.stderr
        assert roles_seen(second_judge) == ({"grader"}, {f"Bearer {KEYS['JUDGE_KEY']}"})
        assert second_judge.hits > 0
    check_roles_kept_apart(model, judges, simulator, {f"Bearer {KEYS['MODEL_KEY']}"}, {basic("user:judgepass99")})
    records = read_records(tmp_path / "from-file")
    assert len(records) == 2  # --limit 2 on the command line overrides the file's 1
    assert {r["body"]["temperature"] for r in simulator.requests} == {0.5}  # and so does the flag
    assert {r["body"]["max_tokens"] for r in model.requests} == {50}
    manifest = json.loads((tmp_path / "from-file" / "manifest.json").read_text())
    roles = {r["role"]: r for r in manifest["roles"]}
    assert roles["judge"]["endpoint"] == judges.base_url and roles["judge2"]["endpoint"] == second_judge.base_url
    assert roles["judge2"]["options"]["max_retries"] == 1 and roles["model"]["options"]["max_connections"] == 4
    assert "judgepass99" not in run_dir_text(tmp_path / "from-file")


def test_judge_and_simulator_inherit_the_models_endpoint_unless_set(cli, tmp_path):
    with FakeOpenAIServer(responder=judge) as shared:
        out = cli(["run", "--model", "openai/answerer", "--base-url", shared.base_url, "--api-key-env", "MODEL_KEY",
                   "--judge", "openai/grader", "--refusal-scorer", "judge", "-t", "overrefusal", "--limit", "2",
                   "--run-dir", "run", "--no-progress"], env=harness_env(tmp_path, KEYS))
        assert out.returncode == 0, out.stderr
        assert roles_seen(shared) == ({"answerer", "grader"}, {f"Bearer {KEYS['MODEL_KEY']}"})


@pytest.mark.parametrize("content, message", [
    ("model: {spec: openai/m, max_connections: 0}\n",
     "key 'model.max_connections': input should be greater than or equal to 1 (got 0)"),
    ("judges:\n  - openai/a\n  - {spec: openai/b, bse_url: http://x}\n",
     "key 'judges[1].bse_url': unknown key (known: spec, base_url"),
    ("tasks: [overrefusal]\nlimt: 3\n", "key 'limt': unknown key (known: model, judges, simulator"),
    ("judges:\n  - {base_url: http://x}\n", "key 'judges': has no spec (kind/name)"),
    ("model: openai/m\nrepeats: many\n", "key 'repeats': input should be a valid integer"),
    ("simulator: gpt-4o\n", "key 'simulator.spec': model spec 'gpt-4o' is not of the form kind/name"),
    ("tasks: overrefusal,nosuchtask\n", "key 'tasks': unknown task 'nosuchtask'"),
    ("model: [unclosed\n", "invalid YAML"),
    ("- just\n- a list\n", "expected a mapping of run options"),
    ("task_options: {fortress: {x: 1}}\ntasks: overrefusal\n", "key 'task_options': task 'fortress' is not selected"),
])
def test_a_bad_run_file_is_one_error_naming_file_key_and_problem(cli, tmp_path, content, message):
    (tmp_path / "bad.yaml").write_text(content, encoding="utf-8")
    out = cli(["run", "--config", "bad.yaml", "--model", "scripted/echo", "--no-progress"])
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: bad.yaml: ") and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_missing_run_file_is_a_clear_error(cli):
    out = cli(["run", "--config", "nowhere.yaml"])
    assert out.returncode == 2 and "error: nowhere.yaml: cannot read the run file" in out.stderr


def test_identical_judges_need_their_own_seeds(cli, tmp_path):
    args = ["run", "--model", "scripted/comply-all", "--judge", "scripted/refuse-all,scripted/refuse-all",
            "--refusal-scorer", "judge", "-t", "overrefusal", "--limit", "2", "--no-progress"]
    refused = cli([*args, "--run-dir", "a"])
    assert refused.returncode == 2
    assert "error: judges 1, 2 are the same model with the same settings (scripted/refuse-all)" in refused.stderr
    assert "--judge-seed" in refused.stderr
    assert cli([*args, "--run-dir", "b", "--judge-seed", "3"]).returncode == 2  # one seed for both: still equal
    seeded = cli([*args, "--run-dir", "c", "--judge-seed", "1,2"])
    assert seeded.returncode == 0, seeded.stderr
    verdicts = [ex for r in read_records(tmp_path / "c") for ex in r["exchanges"] if ex["role"].startswith("judge")]
    assert {ex["role"] for ex in verdicts} == {"judge", "judge2"}
    assert not any(ex["completion"]["cached"] for ex in verdicts)  # neither judge reads the other's answers
    (tmp_path / "panel.yaml").write_text("judges:\n  - {spec: scripted/refuse-all, seed: 1}\n"
                                         "  - {spec: scripted/refuse-all, seed: 2}\n", encoding="utf-8")
    from_file = cli(["run", "--config", "panel.yaml", *args[1:3], *args[5:], "--run-dir", "d"])
    assert from_file.returncode == 0, from_file.stderr


def test_manifest_commit_is_the_harness_trees_not_the_working_directorys(cli, tmp_path):
    import harness

    repo = tmp_path / "user-repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "user work"], check=True)
    user_commit = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    out = subprocess.run([sys.executable, "-m", "harness", "run", "--model", "scripted/echo", "-t", "overrefusal",
                          "--limit", "1", "--run-dir", "run", "--no-progress"], cwd=repo,
                         env=harness_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    manifest = json.loads((repo / "run" / "manifest.json").read_text())
    source = Path(harness.__file__).resolve().parent.parent
    expected = subprocess.run(["git", "-C", str(source), "rev-parse", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
    assert manifest["git_commit"] != user_commit
    assert manifest["git_commit"] == (expected or None)
    assert manifest["harness_version"] == harness.__version__


def test_a_regular_install_inside_a_users_repository_records_no_commit(tmp_path):
    import shutil

    import harness

    repo = tmp_path / "project"
    site = repo / ".venv" / "site-packages"
    shutil.copytree(Path(harness.__file__).parent, site / "harness")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "user work"], check=True)
    code = "import harness.manifest as m; print(m.harness.__file__); print(m.git_commit())"
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env={**harness_env(tmp_path), "PYTHONPATH": str(site)},
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    imported, commit = out.stdout.split()
    assert imported.startswith(str(site)) and commit == "None"


def test_the_readme_run_file_example_is_valid(tmp_path):
    import re

    from harness.run_file import load_run_file

    readme = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
    example = re.search(r"```yaml\n(model:.*?)```", readme, re.DOTALL)
    assert example is not None
    path = tmp_path / "eval.yaml"
    path.write_text(example.group(1), encoding="utf-8")
    loaded = load_run_file(path)
    assert [j.base_url for j in loaded.judges] == ["https://api.openai.com/v1", "https://llm-proxy.example.org/v1"]
    assert loaded.model.reasoning is True and loaded.simulator.spec == "openai/gpt-4o-mini"
