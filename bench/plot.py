"""How cost grows with scale: B2 decision latency and B3 wall time against pods tracked, as
one PNG or SVG (`python -m bench --plot FILE`). A flat B2 line is the claim that a decision
costs the same at 1,000 and 100,000 pods; B3 should grow linearly with pods."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from bench import engine as be
from bench import sim as bs

B2_POINTS = {"small": [(1, 1_000), (10, 1_000), (200, 100)],
             "full": [(1, 1_000), (10, 1_000), (1_000, 100)]}
B3_POINTS = {"small": [(10, 100), (10, 1_000)],
             "full": [(10, 100), (10, 1_000), (100, 1_000)]}


def measure(scale: str, samples: int) -> dict[str, list[tuple[int, float]]]:
    """Per pods tracked: B2 p50/p99 in µs (3 seeds, median) and B3 wall seconds (median of 3)."""
    out: dict[str, list[tuple[int, float]]] = {"p50": [], "p99": [], "b3": []}
    for clusters, pods in B2_POINTS[scale]:
        state, tracked = be.steady_state(clusters=clusters, pods_per_cluster=pods)
        runs = [be.decision_latency(state, tracked, samples=samples, seed=i) for i in range(3)]
        for key, name in (("p50_us", "p50"), ("p99_us", "p99")):
            out[name].append((clusters * pods, sorted(r[key] for r in runs)[1]))
    for clusters, workers in B3_POINTS[scale]:
        walls = sorted(bs.burst(clusters=clusters, workers=workers)["wall_seconds"]
                       for _ in range(3))
        out["b3"].append((clusters * workers, walls[1]))
    return out


def render(data: dict[str, list[tuple[int, float]]], path: Path, title: str) -> None:
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, style in (("p50", "o-"), ("p99", "s-")):
        xs, ys = zip(*data[name], strict=True)
        left.plot(xs, ys, style, label=f"B2 {name}")
    left.axhline(10, color="grey", linestyle="--", label="p99 target 10 µs")
    left.set(xscale="log", xlabel="pods tracked", ylabel="µs per pod event",
             title="Decision latency (fold + plan)")
    left.set_ylim(bottom=0)
    left.legend()
    xs, ys = zip(*data["b3"], strict=True)
    right.plot(xs, ys, "o-", label="B3 wall time")
    right.set(xscale="log", yscale="log", xlabel="pods up and down",
              ylabel="seconds (wall)", title="Burst 0 → N → 0 in the simulator")
    right.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot(path: Path, scale: str, head: dict[str, Any]) -> None:
    data = measure(scale, samples=20_000 if scale == "small" else 100_000)
    render(data, path, f"ray-operator {head['commit']}, {head['machine']}, "
                       f"Python {head['python']}")
