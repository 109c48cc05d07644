"""No network attempt: building the dense index (the project's embedder and chromadb)
in a real network namespace, where every IPv4/IPv6 address is routed to loopback and a
packet socket sees any packet sent, including a DNS query."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

# Runs inside the namespace: watch loopback, run the child, count what was sent.
SNIFF = """
import socket, subprocess, sys, time
watch = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))  # ETH_P_ALL
watch.bind(("lo", 0))
watch.setblocking(False)
rc = subprocess.run([sys.executable, "-c", sys.argv[1]]).returncode
time.sleep(0.5)
packets = 0
while True:
    try:
        watch.recv(65535)
        packets += 1
    except BlockingIOError:
        break
print(f"child exit {rc}, packets {packets}")
"""
INDEX = """
import sys
from safescale.retrieval.chunking import Chunk
from safescale.retrieval.dense import build_dense_index
chunks = [Chunk(f"p{i}#0", f"p{i}", "", text, 5) for i, text in enumerate(
    ["Non-contrast CT first for thunderclap headache.", "Ultrasound first in children.",
     "MR-conditional devices follow the manufacturer's conditions."])]
build_dense_index(chunks, sys.argv[1] if len(sys.argv) > 1 else "index")
print("indexed")
"""
CONTROL = """
import socket
try:
    socket.create_connection(("93.184.216.34", 443), timeout=1)
except OSError:
    pass
"""
SETUP = (
    "ip link set lo up && ip route add local 0.0.0.0/0 dev lo && "
    'ip -6 route add local ::/0 dev lo 2>/dev/null; exec "$0" "$@"'
)


# Root makes a network namespace directly; anyone else through a user namespace.
UNSHARE = (
    ["unshare", "--net"] if os.geteuid() == 0 else ["unshare", "--user", "--map-root-user", "--net"]
)


def in_namespace(code: str, home, cwd) -> str:
    env = {
        **os.environ,
        "HOME": str(home),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("ORT_DISABLE_TELEMETRY", None)  # the code under test must set it itself
    res = subprocess.run(
        [*UNSHARE, "sh", "-c", SETUP, sys.executable, "-c", SNIFF, code],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.fixture(scope="module")
def namespace_ok(tmp_path_factory):
    if not (shutil.which("unshare") and shutil.which("ip")):
        pytest.skip("needs unshare and ip (util-linux, iproute2)")
    probe = subprocess.run([*UNSHARE, "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot create a network namespace here: {probe.stderr.decode()[:200]}")


def test_the_detector_sees_a_connection_attempt(namespace_ok, tmp_path):
    out = in_namespace(CONTROL, tmp_path, tmp_path)
    assert "child exit 0" in out and "packets 0" not in out, out


def test_dense_index_makes_no_network_attempt_and_writes_no_device_id(namespace_ok, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    out = in_namespace(INDEX, home, tmp_path)
    assert "indexed" in out and "child exit 0, packets 0" in out, out
    assert (tmp_path / "index").is_dir()
    assert not (home / ".cache" / "Microsoft").exists()
    assert list(home.rglob("*")) == [], list(home.rglob("*"))
