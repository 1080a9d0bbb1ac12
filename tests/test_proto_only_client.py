"""A client generated from proto/ alone, in a clean process, enrols and logs in."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from grpc_tools import protoc

from local.handwriting import png_of

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.integration


def test_client_from_protos_only(stack, writers, tmp_path):
    generated = tmp_path / "gen"
    generated.mkdir()
    protos = [str(p.relative_to(REPO / "proto")) for p in (REPO / "proto").rglob("*.proto")]
    include = str(Path(protoc.__file__).parent / "_proto")
    assert protoc.main(["protoc", f"-I{REPO / 'proto'}", f"-I{include}", f"--python_out={generated}",
                        f"--grpc_python_out={generated}", *protos]) == 0
    genuine = writers[0]
    (tmp_path / "enrol").mkdir()
    (tmp_path / "write").mkdir()
    for n, row in enumerate(genuine.enrol_index):
        (tmp_path / "enrol" / f"{genuine.digits[row]}_{n}.png").write_bytes(png_of(genuine.images[row]))
    for digit, rows in genuine.probes.items():
        (tmp_path / "write" / f"{digit}.png").write_bytes(png_of(genuine.images[rows[0]]))
    # -S: no site-packages .pth files, so not even the editable install of hwotp is on the path;
    # grpc and protobuf come from an explicit path instead.
    import grpc
    import google.protobuf

    site = str(Path(grpc.__file__).parent.parent)
    assert Path(google.protobuf.__file__).is_relative_to(site)
    result = subprocess.run(
        [sys.executable, "-S", str(REPO / "tests" / "proto_only" / "client.py"), stack.gateway, stack.api_key, str(tmp_path)],
        env={"PYTHONPATH": f"{generated}:{site}"}, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ACCEPT", "ACCEPTED"]
