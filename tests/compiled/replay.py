"""Run the benchmark workloads on whichever engine build is importable and write what it
did as JSON lines: the recorded events, every action (manifests included) and the final
snapshot; half way through, the state is restored from its snapshot, as after a restart.
`tests/compiled/test_compiled.py` runs it on both builds and compares the files.

Usage: python tests/compiled/replay.py OUT CLUSTERS EVENTS (by path: it imports only the
build under test, never `tests`)
"""

from __future__ import annotations

import json
import sys

from bench import workloads
from engine import build, codec, planner, snapshots
from engine import state as st


def main(out: str, clusters: int, events: int) -> None:
    with open(out, "w") as f:
        f.write(json.dumps({"build": build.describe()}) + "\n")
        for pattern in ("minmax", "steps", "ramp"):
            recorded = workloads.record_run(clusters=clusters, pods_per_cluster=20,
                                            events=events, pattern=pattern)
            state = st.initial(synced=True)
            for i, event in enumerate(recorded):
                if i == len(recorded) // 2:  # a restart half way: restore from a snapshot
                    state = snapshots.restore(json.loads(json.dumps(snapshots.snapshot(state))))
                f.write(json.dumps(codec.event_to_dict(event), sort_keys=True) + "\n")
                state, actions = planner.step(state, event)
                for action in actions:
                    f.write(json.dumps(codec.action_to_dict(action), sort_keys=True) + "\n")
            f.write(json.dumps(snapshots.snapshot(state), sort_keys=True, default=str) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
