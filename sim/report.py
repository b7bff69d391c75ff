"""What a run tells: the summary (table and `--json`), the plot, and trace replay."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from engine import claims, codec, planner
from engine import state as st
from sim import invariants
from sim.world import World


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(world: World, *, wall_seconds: float) -> dict[str, Any]:
    clusters = {}
    for (ns, name) in sorted(world.api.objects["rayclusters"]):
        seen = invariants.observe_cluster(world, f"{ns}/{name}")
        clusters[f"{ns}/{name}"] = {"phase": seen["phase"], "restarts": seen["restarts"],
                                    "pods": seen["pods"], "workers": seen["workers"],
                                    "managedBy": seen["managedBy"]}
    passed = all(r["ok"] for r in world.results) and not world.violations
    return {
        "scenario": world.scenario.name,
        "seed": world.scenario.seed,
        "passed": passed,
        "virtual_seconds": world.scenario.duration,
        "wall_seconds": round(wall_seconds, 3),
        "events": world.events,
        "expectations": world.results,
        "clusters": clusters,
        "actions": dict(sorted(world.actions.items())),
        "scale_up_latency": {"p50": percentile(world.latencies, 0.5),
                             "p99": percentile(world.latencies, 0.99),
                             "samples": len(world.latencies)},
        "api_calls": dict(sorted(world.api.calls.items())),
        "violations": world.violations,
    }


def show(result: dict[str, Any], console: Console) -> None:
    table = Table(title=f"{result['scenario']} (seed {result['seed']})")
    for column in ("cluster", "phase", "restarts", "pods", "workers by type", "managed by"):
        table.add_column(column, overflow="fold")  # names are never cut
    for name, c in result["clusters"].items():
        workers = ", ".join(f"{t}: {n}" for t, n in c["workers"].items()) or "-"
        table.add_row(name, c["phase"] or "-", str(c["restarts"]), str(c["pods"]), workers,
                      c.get("managedBy") or "-")
    console.print(table)
    actions = ", ".join(f"{k} {v}" for k, v in result["actions"].items())
    console.print(f"actions: {actions or 'none'}")
    lat = result["scale_up_latency"]
    if lat["samples"]:
        console.print(f"scale-up latency (demand seen -> create): p50 {lat['p50']:.1f} s, "
                      f"p99 {lat['p99']:.1f} s over {lat['samples']} scale-ups")
    rate = result["events"] / result["wall_seconds"] if result["wall_seconds"] else 0.0
    speedup = result["virtual_seconds"] / result["wall_seconds"] if result["wall_seconds"] else 0
    console.print(f"{result['events']} events in {result['wall_seconds']:.2f} s wall "
                  f"({rate:,.0f} events/s, {speedup:,.0f}x real time) for "
                  f"{result['virtual_seconds']:g} s virtual")
    ok = sum(1 for r in result["expectations"] if r["ok"])
    console.print(f"expectations: {ok}/{len(result['expectations'])} passed")
    for r in result["expectations"]:
        if not r["ok"]:
            console.print(f"  [red]FAILED[/red] t={r['at']:g} {r['cluster']} {r['check']}: "
                          f"expected {r['expected']}, got {r['actual']}")
    if result["violations"]:
        console.print(f"[red]violations: {len(result['violations'])}[/red]")
        for v in result["violations"][:20]:
            console.print(f"  {v}")
    else:
        console.print("violations: none")
    console.print("[green]PASSED[/green]" if result["passed"] else "[red]FAILED[/red]")


def plot(world: World, path: str) -> None:
    """Live workers vs desired workers over virtual time, one panel per cluster."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    by_cluster: dict[str, list[tuple[float, int, int]]] = defaultdict(list)
    for t, cluster, live, desired in world.series:
        by_cluster[cluster].append((t, live, desired))
    names = sorted(by_cluster) or ["(no clusters)"]
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.2 * len(names)), sharex=True,
                             squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        points = by_cluster.get(name, [])
        ax.step([p[0] for p in points], [p[1] for p in points], where="post", label="live")
        ax.step([p[0] for p in points], [p[2] for p in points], where="post", linestyle="--",
                label="desired")
        ax.set_ylabel("workers")
        ax.set_title(name, fontsize=9)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("virtual seconds")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def replay(lines: Iterable[str]) -> tuple[bool, str, int]:
    """Re-derive every action from the trace's events; report the first difference."""
    states: dict[str, st.State] = {}
    expected: dict[str, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    produced: dict[str, list[dict[str, Any]]] = defaultdict(list)
    events = 0
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except (ValueError, RecursionError):
            return False, f"line {number}: not JSON", events
        if not isinstance(item, dict):
            return False, f"line {number}: expected a JSON object", events
        kind, op = item.get("kind"), str(item.get("operator") or "")
        if kind == "restart":
            install = item.get("install")
            try:
                states[op] = st.initial(
                    install=None if install is None else claims.Install(**install))
            except (TypeError, ValueError) as exc:
                return False, f"line {number}: cannot decode the install: {exc}", events
        elif kind == "event":
            try:
                event = codec.event_from_dict(item)
            except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
                return False, f"line {number}: cannot decode the event: {exc}", events
            state = states.setdefault(op, st.initial())
            states[op], actions = planner.step(state, event)
            produced[op].extend(codec.action_to_dict(a) for a in actions)
            events += 1
        elif kind == "action":
            body = {k: v for k, v in item.items() if k not in ("t", "seq", "kind", "operator")}
            expected[op].append((number, body))
    for op in sorted(set(expected) | set(produced)):
        want, got = expected.get(op, []), produced.get(op, [])
        for i, (number, body) in enumerate(want):
            mine = got[i] if i < len(got) else None
            if mine is None or _canon(mine) != _canon(body):
                return False, (f"operator {op}: trace line {number}: recorded "
                               f"{body.get('type')} {_brief(body)}; replay gave "
                               f"{_difference(body, mine)}"), events
        if len(got) > len(want):
            return False, (f"operator {op}: replay gave {len(got) - len(want)} more actions "
                           f"than recorded, first {got[len(want)].get('type')}"), events
    return True, "identical", events


def _difference(recorded: dict[str, Any], mine: dict[str, Any] | None) -> str:
    if mine is None:
        return "nothing"
    if mine.get("type") != recorded.get("type"):
        return f"{mine.get('type')} {_brief(mine)}"
    keys = [k for k in sorted(set(recorded) | set(mine)) if recorded.get(k) != mine.get(k)]
    return ", ".join(f"{k}={mine.get(k)!r:.80} (recorded {recorded.get(k)!r:.80})"
                     for k in keys[:3])


def _canon(body: dict[str, Any]) -> str:
    return json.dumps(body, sort_keys=True)


def _brief(body: dict[str, Any]) -> str:
    for key in ("name", "reason", "message"):
        if key in body:
            return f"{key}={body[key]!r}"
    return ""


def write_json(path: str, result: dict[str, Any]) -> None:
    Path(path).write_text(json.dumps(result, indent=2) + "\n")
