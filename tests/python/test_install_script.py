"""scripts/install-test-deps.sh: a second run is a no-op, and a broken step names itself."""

import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "install-test-deps.sh"


def run(env_extra):
    env = dict(os.environ, **env_extra)
    return subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=300)


def test_second_run_is_a_no_op():
    # The suite is running, so the install already happened: nothing is left to install.
    done = run({})
    assert done.returncode == 0, done.stderr
    assert "already installed" in done.stdout, done.stdout
    assert "Successfully installed" not in done.stdout


def test_an_unknown_pin_fails_naming_the_step(tmp_path):
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("pytest==0.0.999\n")
    broken = run({"CLOUDPG_TEST_VENV": str(tmp_path / "venv"), "CLOUDPG_TEST_REQUIREMENTS": str(requirements)})
    assert broken.returncode != 0
    assert "step 'Python test packages from" in broken.stderr, broken.stderr
    assert "pytest==0.0.999" in broken.stderr, broken.stderr
    assert "how to fix: check the versions pinned in" in broken.stderr, broken.stderr
