"""What the container image ships is enough for the tools it documents."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from local.stack import REPO

pytestmark = pytest.mark.integration  # starts processes

# Every package of the project the image does not ship (Dockerfile): importing one fails.
_NOT_SHIPPED = ("local", "bench", "training", "tests")
_RUN_WITH_ONLY_THE_IMAGE = (
    "import runpy, sys\n"
    f"for name in {_NOT_SHIPPED!r}: sys.modules[name] = None\n"
    "import gateway; assert gateway.__file__.startswith(sys.argv[1]), gateway.__file__\n"
    "sys.argv = ['gateway.admin', '--help']\n"
    "runpy.run_module('gateway.admin', run_name='__main__', alter_sys=True)\n"
)


def test_the_admin_command_runs_with_only_what_the_image_ships(tmp_path):
    for package in ("hwotp", "services", "gateway"):  # hwotp/v1: the generated stubs
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    result = subprocess.run([sys.executable, "-c", _RUN_WITH_ONLY_THE_IMAGE, str(tmp_path)], cwd=tmp_path,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "reset-lockout" in result.stdout and "HWOTP_ADMIN_CALLERS" in result.stdout
