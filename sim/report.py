"""What a run tells: the summary (table and `--json`), the plot, and trace replay."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from engine import claims, codec, errors, planner, snapshots
from engine import state as st
from sim import invariants, story
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
    waits = [(seconds, n) for rc in world.ray.values() for seconds, n in rc.waited]
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
        "task_wait": {"p50": weighted_percentile(waits, 0.5),
                      "p99": weighted_percentile(waits, 0.99),
                      "max": max((w for w, _ in waits), default=None),
                      "tasks": sum(n for _, n in waits)},
        "api_calls": dict(sorted(world.api.calls.items())),
        "violations": world.violations,
        "story": [{"at": line.at, "cluster": line.cluster, "text": line.text,
                   "kind": line.kind} for line in world.story],
        "story_untold": world.untold,
        "deleted": sorted({line.cluster for line in world.story if line.text == "deleted"}
                          - set(clusters)),
    }


def weighted_percentile(values: list[tuple[float, int]], q: float) -> float | None:
    """The `q` quantile of values each counted `n` times."""
    total = sum(n for _, n in values)
    if not total:
        return None
    rank = min(total - 1, int(q * total))
    for value, n in sorted(values):
        if rank < n:
            return value
        rank -= n
    return None  # unreachable: the ranks add up to `total`


WRITES = ("CreatePod", "DeletePod", "ApplyService", "PatchStatus", "EmitEvent", "WriteClaim")
STORY_LINES = 60
"""Lines of the story printed at most (the summary JSON has them all)."""


def show(result: dict[str, Any], console: Console) -> None:
    """The story of the run, the clusters at its end, and what was measured and checked."""
    _story(result, console)
    if result["clusters"]:
        table = Table(title=f"at the end ({result['virtual_seconds']:g} s)")
        for column in ("cluster", "phase", "restarts", "pods", "workers by type",
                       "managed by"):
            table.add_column(column, overflow="fold")  # names are never cut
        for name, c in result["clusters"].items():
            workers = ", ".join(f"{t}: {n}" for t, n in c["workers"].items()) or "-"
            table.add_row(name, c["phase"] or "-", str(c["restarts"]), str(c["pods"]),
                          workers, c.get("managedBy") or "-")
        console.print(table)
    else:
        deleted = ", ".join(result["deleted"]) or "none"
        console.print(f"at the end: no cluster is left (deleted: {deleted})")
    actions = result["actions"]
    writes = ", ".join(f"{k} {actions[k]}" for k in WRITES if actions.get(k))
    console.print(f"the operators wrote: {writes or 'nothing'}; renewed a lease "
                  f"{actions.get('RenewLease', 0)} times, set {actions.get('Requeue', 0)} "
                  f"timers and logged {actions.get('Log', 0)} lines")
    wait = result["task_wait"]
    if wait["tasks"]:
        console.print(f"tasks waited for a worker: p50 {wait['p50']:.1f} s, p99 "
                      f"{wait['p99']:.1f} s, max {wait['max']:.1f} s ({wait['tasks']} tasks; "
                      "0 when one was free)")
    lat = result["scale_up_latency"]
    if lat["samples"]:
        console.print(f"from new demand to the first worker created: p50 {lat['p50']:.1f} s "
                      f"over {lat['samples']} workloads (Ray reports load every 5 s)")
    rate = result["events"] / result["wall_seconds"] if result["wall_seconds"] else 0.0
    speedup = result["virtual_seconds"] / result["wall_seconds"] if result["wall_seconds"] else 0
    console.print(f"{result['events']} events in {result['wall_seconds']:.2f} s wall "
                  f"({rate:,.0f} events/s, {speedup:,.0f}x real time) for "
                  f"{result['virtual_seconds']:g} s virtual")
    console.print(f"expectations: {expectations_line(result['expectations'])}")
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


def expectations_line(results: list[dict[str, Any]]) -> str:
    """`7/7 met (17 checks)`: an expectation is met when all its checks pass."""
    met: dict[int, bool] = {}
    for r in results:
        met[r["expectation"]] = met.get(r["expectation"], True) and r["ok"]
    return f"{sum(met.values())}/{len(met)} met ({len(results)} checks)"


def _story(result: dict[str, Any], console: Console) -> None:
    lines = result["story"]
    if not lines:
        return
    console.print(f"what happened in {result['scenario']} (seed {result['seed']}):")
    width = max(len(line["cluster"]) for line in lines[:STORY_LINES])
    for line in lines[:STORY_LINES]:
        console.print(f"  {line['at']:>6.1f} s  {line['cluster'] or '-':<{width}}  "
                      f"{line['text']}",
                      markup=False, highlight=False)
    more = len(lines) - STORY_LINES + result["story_untold"]
    if more > 0:
        console.print(f"  ... and {more} more (all of them in --json)")


def plot(world: World, path: str) -> None:
    """Live workers (sampled every 5 s) and desired workers (as each decision set them)
    over virtual time, one panel per cluster, with the scenario's steps marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    live: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for t, cluster, workers, _ in world.series:
        live[cluster].append((t, workers))
    desired: dict[str, list[tuple[float, int]]] = defaultdict(list)
    for t, cluster, workers in world.decided:
        desired[cluster].append((t, workers))
    names = sorted(set(live) | set(desired)) or ["(no clusters)"]
    end = world.scenario.duration
    fig, axes = plt.subplots(len(names), 1, figsize=(9, 2.4 * len(names) + 0.6),
                             sharex=True, squeeze=False)
    for ax, name in zip(axes[:, 0], names, strict=True):
        points = live.get(name, [])
        ax.step([p[0] for p in points], [p[1] for p in points], where="post", label="live")
        wanted = desired.get(name, [])
        if wanted:
            gone = [line.at for line in world.story if line.cluster == name
                    and line.text == "deleted"]
            wanted = [*wanted, (gone[-1] if gone else end, wanted[-1][1])]
            ax.step([p[0] for p in wanted], [p[1] for p in wanted], where="post",
                    linestyle="--", label="desired (decided)")
        for line in world.story:
            if line.cluster != name or line.kind == story.STATUS:
                continue
            demand = line.kind == story.DEMAND
            ax.axvline(line.at, color="tab:red" if demand else "tab:gray", linewidth=0.8,
                       linestyle=":")
            ax.annotate(line.text.split(":")[0].split(" (")[0], (line.at, 1.0),
                        xycoords=("data", "axes fraction"), rotation=90, fontsize=6,
                        va="top", ha="right", color="tab:red" if demand else "tab:gray")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(bottom=0)
        ax.set_ylabel("workers")
        ax.set_title(name, fontsize=9)
        ax.legend(loc="upper right", fontsize=7)
    axes[-1, 0].set_xlabel("virtual seconds (red: demand; gray: other steps)")
    axes[-1, 0].set_xlim(0, end)
    fig.suptitle(f"{world.scenario.name} (seed {world.scenario.seed}): workers per cluster")
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
        elif kind == "snapshot":  # a live record's segment starts from the state it had
            problem = _resume(states, op, item)
            if problem:
                return False, f"line {number}: {problem}", events
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
            if mine is not None and "manifest" not in body:  # a live record leaves it out
                mine = {k: v for k, v in mine.items() if k != "manifest"}
            if mine is None or _canon(mine) != _canon(body):
                return False, (f"operator {op}: trace line {number}: recorded "
                               f"{body.get('type')} {_brief(body)}; replay gave "
                               f"{_difference(body, mine)}"), events
        if len(got) > len(want):
            return False, (f"operator {op}: replay gave {len(got) - len(want)} more actions "
                           f"than recorded, first {got[len(want)].get('type')}"), events
    return True, "identical", events


def _resume(states: dict[str, st.State], op: str, item: dict[str, Any]) -> str:
    """Take a recorded snapshot as `op`'s state; when the same process was folding already,
    the state it reached must be the snapshot (else say where they differ)."""
    recorded = item.get("state")
    try:
        restored = snapshots.restore(recorded)  # type: ignore[arg-type]
    except (TypeError, ValueError, KeyError, AttributeError, RecursionError) as exc:
        return f"cannot restore the snapshot: {errors.describe(exc)}"
    before = states.get(op)
    same = before is not None and restored.install is not None and before.install is not None \
        and before.install.instance == restored.install.instance
    if before is not None and same:
        folded = json.loads(json.dumps(snapshots.snapshot(before)))
        if folded != recorded:
            return (f"operator {op}: the state replay reached differs from the recorded "
                    f"snapshot at {_first_difference(folded, recorded)}")
    if before is None or not same:  # else the fold goes on from what it reached
        states[op] = restored
    return ""


def _first_difference(a: Any, b: Any, path: str = "state") -> str:
    """Where two JSON values first differ, as a path (`state.clusters[0].live`) and values."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b), key=str):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return f"{path}: replay has {a!r:.120}, the record {b!r:.120}"


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
