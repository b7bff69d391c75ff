"""A live run that replays: `ray-operator --record DIR` against `python -m sim serve`, a
cluster scaled up and down, then `python -m sim replay DIR` re-derives every action; small
segments make it rotate, so the replay starts from a snapshot and checks the next ones."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

from adapters.kube import KubeApi
from driver import record
from sim.clusters import cluster_object
from tests.e2e.test_process import NO_RAY, served  # noqa: F401  (the fixture)
from tests.helpers import free_port, until


def test_a_recorded_live_run_replays_with_identical_actions(
    served: tuple[Path, KubeApi], tmp_path: Path,  # noqa: F811
) -> None:
    config, api = served
    folder = tmp_path / "record"
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapters", "--kubeconfig", str(config), "--operator-name",
         "rec", "--metrics-port", str(free_port()), "--record", str(folder),
         "--record-segment-mib", "0.01", "--record-segments", "50", *NO_RAY],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        api.create("rayclusters", "ray", cluster_object("ray", "alpha", 2, 4))

        def workers(n: int) -> bool:
            status = api.get("rayclusters", "ray", "alpha").get("status") or {}
            return status.get("phase") == "Running" and status.get("workers", {}).get(
                "worker") == n
        until(lambda: workers(2))
        obj = api.get("rayclusters", "ray", "alpha")
        obj["spec"]["podTypes"][1]["minWorkers"] = 4
        api.patch("rayclusters", "ray", "alpha", {"spec": {"podTypes": obj["spec"]["podTypes"]}})
        until(lambda: workers(4))
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, output
    kept = record.segments(folder)
    assert len(kept) > 2  # it rotated
    first = json.loads(kept[0].open().readline())
    assert first["kind"] == "snapshot"
    replay = subprocess.run([sys.executable, "-m", "sim", "replay", str(folder)],
                            capture_output=True, text=True, timeout=300)
    assert replay.returncode == 0, replay.stdout + replay.stderr
    assert "every action identical" in replay.stdout
    events = sum(1 for line in record.lines(folder) if '"kind":"event"' in line)
    assert events > 20
    plan = subprocess.run([sys.executable, "-m", "sim", "plan", "ray/alpha", "--record",
                           str(folder)], capture_output=True, text=True, timeout=300)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert json.loads(plan.stdout)["launch"] == {}  # at its minimum of 4: nothing to do
    for old in kept[:len(kept) // 2]:  # as rotation drops them: replay from a snapshot
        old.unlink()
    again = subprocess.run([sys.executable, "-m", "sim", "replay", str(folder)],
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
