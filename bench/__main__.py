"""`python -m bench [--scale small|full] [--json FILE] [--only B1,...,IN,B7] [--compiled]`: the
benchmarks.

Each figure is the median of several runs with min and max, printed next to its target.
The header names the machine, Python, the engine build (pure Python, or compiled with mypyc:
`--compiled` builds it and runs the benchmarks on it) and git commit so figures can be
compared. No test asserts timings (machines are noisy); CI runs `--scale small` as a smoke
test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench import apiserver as ba
from bench import engine as be
from bench import inputs as bi
from bench import peers as bp2
from bench import process as bp
from bench import sim as bs
from bench import workloads
from engine import build

SCALES = {
    "small": {"b1_events": 100_000, "b1_clusters": 1_000, "b1_pods": 100, "runs": 5,
              "b2_samples": 20_000, "b2_big": (200, 100), "b3": (10, 1_000), "b5": 200,
              "b4": (20, 50, 5), "b6": (100, 100, 60_000, 20_000),
              "p1": ((100, 5), (1_000, 3)), "p2": 20_000, "b7": (10, 10, 1)},
    "full": {"b1_events": 1_000_000, "b1_clusters": 1_000, "b1_pods": 100, "runs": 5,
             "b2_samples": 100_000, "b2_big": (1_000, 100), "b3": (100, 1_000), "b5": 1_000,
             "b4": (1_000, 100, 1), "b6": (1_000, 100, 500_000, 100_000),
             "p1": ((100, 5), (1_000, 5), (10_000, 1)), "p2": 100_000, "b7": (100, 100, 1)},
}


def header() -> dict[str, Any]:
    commit = os.environ.get(COMMIT_VARIABLE, "")
    try:
        commit = commit or subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False,
            cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = ""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"python": platform.python_version(), "implementation": platform.python_implementation(),
            "machine": f"{cpu}, {os.cpu_count()} cores", "commit": commit or "unknown",
            "date": time.strftime("%Y-%m-%d %H:%M:%S"), "engine": build.describe()}


def row(name: str, unit: str, stats: dict[str, Any], target: str, ok: bool | None,
        note: str = "") -> dict[str, Any]:
    return {"name": name, "unit": unit, **stats, "target": target, "meets_target": ok,
            "note": note}


def b1(scale: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    toy = be.toy_events()
    reference: list[float] = []
    for pattern, note in (
        ("minmax", "min/max only (no Ray load adapter): watch events and results"),
        ("steps", "Ray load every 5 s; demand jumps every 2 min (batch jobs)"),
        ("ramp", "Ray load every 5 s; demand grows on every report (worst case)"),
    ):
        events = workloads.record_run(clusters=scale["b1_clusters"],
                                      pods_per_cluster=scale["b1_pods"],
                                      events=scale["b1_events"], pattern=pattern)
        def timed(events: list[Any] = events) -> float:
            reference.append(be.toy_reducer(toy))  # the machine's speed just before this run
            return be.replay(events)[0]

        stats = be.measure(timed, scale["runs"])
        out.append(row(f"B1a replay in memory [{pattern}]", "events/s", stats, ">= 300k",
                       stats["median"] >= 300_000, note))
        if pattern == "steps":
            lines = be.encode_lines(events)
            stats = be.measure(lambda ls=lines: be.replay_jsonl(ls), 3)  # type: ignore[misc]
            out.append(row(f"B1b replay from JSON lines [{pattern}]", "events/s", stats,
                           ">= 300k", stats["median"] >= 300_000, "json.loads + decode + step"))
    reference.sort()
    stats = {"median": reference[len(reference) // 2], "min": reference[0],
             "max": reference[-1], "runs": len(reference)}
    out.append(row("B1 machine speed: a reference reducer loop before each B1a run",
                   "events/s", stats, "-", None,
                   "the same pure-Python loop every time: how fast the machine was then"))
    return out


def b2(scale: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    big_clusters, big_pods = scale["b2_big"]
    for clusters, pods in ((1, 10_000), (1_000, 10), (big_clusters, big_pods)):
        state, tracked = be.steady_state(clusters=clusters, pods_per_cluster=pods)
        runs = [be.decision_latency(state, tracked, samples=scale["b2_samples"], seed=i)
                for i in range(scale["runs"])]
        for key in ("p50_us", "p99_us", "p999_us"):
            values = sorted(r[key] for r in runs)
            stats = {"median": values[len(values) // 2], "min": values[0], "max": values[-1],
                     "runs": len(values)}
            target = {"p50_us": "-", "p99_us": "<= 10 us", "p999_us": "<= 50 us"}[key]
            ok = None if key == "p50_us" else stats["median"] <= (10 if key == "p99_us" else 50)
            out.append(row(f"B2 {key[:-3]} one pod event, {clusters} x {pods} pods", "us",
                           stats, target, ok, f"{clusters * pods:,} pods tracked"))
    return out


def memory(scale: dict[str, Any]) -> list[dict[str, Any]]:
    clusters, pods = scale["b2_big"]
    result = be.bytes_per_pod(clusters=clusters, pods_per_cluster=pods)
    stats = {"median": result["bytes_per_pod"], "min": result["bytes_per_pod"],
             "max": result["bytes_per_pod"], "runs": 1}
    return [row(f"Engine bytes per tracked pod ({clusters} x {pods})", "bytes", stats,
                "<= 1024", result["bytes_per_pod"] <= 1024,
                f"{result['base_bytes_per_cluster']:.0f} bytes per cluster besides")]


def _stats(values: list[float]) -> dict[str, Any]:
    values = sorted(values)
    return {"median": values[len(values) // 2], "min": values[0], "max": values[-1],
            "runs": len(values)}


def b3(scale: dict[str, Any]) -> list[dict[str, Any]]:
    clusters, workers = scale["b3"]
    runs = [bs.burst(clusters=clusters, workers=workers) for _ in range(scale["runs"])]
    pods = clusters * workers
    wall = _stats([r["wall_seconds"] for r in runs])
    return [
        row(f"B3 {clusters} x 0 -> {workers} -> 0 workers, wall", "s", wall,
            "<= 10 s at 100k pods", wall["median"] <= 10.0 if pods >= 100_000 else None,
            f"{pods:,} pods up and down, 1-5 s startup"),
        row("B3 simulated pods created + deleted per second", "pods/s",
            _stats([r["pods_per_second"] for r in runs]), "-", None,
            "kwok CI gate 167 pods/s, KubeRay ~50 pods/s"),
        row("B3 engine events per wall second", "events/s",
            _stats([r["events_per_second"] for r in runs]), "-", None, "whole world simulated"),
        row("B3 virtual time to all Running", "s", _stats([r["virtual_up_seconds"] for r in runs]),
            "<= startup + 2 loops", runs[0]["virtual_up_seconds"] <= 5.0 + 10.0,
            "pods start 1-5 s after creation"),
        row("B3 API calls per created pod", "calls", _stats([r["api_calls_per_pod"] for r in runs]),
            "-", None, "create + delete + status/events share"),
    ]


def b4(scale: dict[str, Any]) -> list[dict[str, Any]]:
    clusters, pods, repeat = scale["b4"]
    runs = [bp.operator_memory(clusters=clusters, pods_per_cluster=pods) for _ in range(repeat)]
    total = clusters * pods
    mb = 1024 * 1024
    rss = _stats([r["rss_bytes"] / mb for r in runs])
    created = _stats([r["bytes_per_pod"] for r in runs])
    adopted = _stats([r["adopted_bytes_per_pod"] for r in runs])
    full = total >= 100_000
    return [
        row(f"B4 ray-operator RSS managing {clusters} x {pods} pods", "MB", rss, "<= 150 MB",
            rss["max"] <= 150 if full else None,
            f"real process over HTTP (sim serve); {total:,} pods it created"),
        row("B4 RSS after a restarted operator adopted them", "MB",
            _stats([r["adopted_rss_bytes"] / mb for r in runs]), "<= 150 MB",
            None if not full else max(r["adopted_rss_bytes"] for r in runs) <= 150 * mb,
            "paged relist of every pod"),
        row("B4 RSS beyond the baseline per pod, after creating them", "bytes", created,
            "<= 1024", created["median"] <= 1024 if full else None,
            "includes what the burst left fragmented (judged at 100k pods)"),
        row("B4 RSS beyond the baseline per pod, after adopting them", "bytes", adopted,
            "<= 1024", adopted["median"] <= 1024 if full else None,
            "a restarted operator: paged relist (judged at 100k pods)"),
        row("B4 baseline RSS (no clusters)", "MB",
            _stats([r["baseline_bytes"] / mb for r in runs]), "-", None,
            "CPython + kubernetes client + prometheus-client"),
        row("B4 what importing Ray's GCS client adds", "MB",
            _stats([bp.ray_client_bytes() / mb]), "-", None,
            "paid once when the first head is read (not in the rows above)"),
        row("B4 API requests per created pod", "requests",
            _stats([r["requests_per_pod"] for r in runs]), "-", None,
            "all requests (lists, leases, status, events) / pods"),
        row("B4 seconds until all pods Running", "s", _stats([r["up_seconds"] for r in runs]),
            "-", None, "simulated pods start 1-3 s after creation"),
        row("B4 pods created by the restarted operator", "pods",
            _stats([r["pods_created_after_restart"] for r in runs]), "= 0",
            all(r["pods_created_after_restart"] == 0 for r in runs), "adoption, not re-creation"),
    ]


def b6(scale: dict[str, Any]) -> list[dict[str, Any]]:
    clusters, pods, total, tail = scale["b6"]
    events = workloads.record_run(clusters=clusters, pods_per_cluster=pods, events=total,
                                  pattern="steps")
    runs = [be.restart(events, tail=tail) for _ in range(scale["runs"])]
    seconds = _stats([r["seconds"] for r in runs])
    return [
        row(f"B6 restart: snapshot of {clusters} x {pods} pods + {tail:,}-event tail", "s",
            seconds, "<= 0.5 s", seconds["median"] <= 0.5,
            f"JSON load + restore {statistics.median(r['restore_seconds'] for r in runs):.2f} s,"
            f" then the tail; {runs[0]['snapshot_bytes'] / 1e6:.1f} MB snapshot"),
        row("B6 restarted state equal to the never-stopped one", "runs equal",
            _stats([float(sum(r["equal"] for r in runs))]), f"= {len(runs)}",
            all(r["equal"] for r in runs), "compared as whole snapshots"),
    ]


def peers(scale: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for bundles, ray_runs in scale["p1"]:
        r = bp2.scheduler_side_by_side(bundles, runs=max(ray_runs, 5), ray_runs=ray_runs)
        out.append(row(f"P1 one scaling decision, {bundles:,} pending bundles: Ray / ours",
                       "x faster", {"median": r["ratio"], "min": r["ratio"],
                                    "max": r["ratio"], "runs": ray_runs},
                       "same launches", r["same_launches"],
                       f"ours {r['ours_seconds'] * 1e3:.2f} ms, Ray's ResourceDemandScheduler "
                       f"{r['ray_seconds'] * 1e3:,.0f} ms; {r['launches']} nodes"))
    events = workloads.record_run(clusters=100, pods_per_cluster=100, events=scale["p2"],
                                  pattern="steps")
    r = bp2.replay_side_by_side(events)
    out.append(row(f"P2 replay of {len(events):,} stored events: ours / eventsourcing",
                   "x faster", {"median": r["ratio"], "min": r["ratio"], "max": r["ratio"],
                                "runs": 1}, "same state", r["same_state"],
                   f"ours {r['ours_per_second']:,.0f} ev/s (JSON decode + fold), eventsourcing "
                   f"9.5 {r['eventsourcing_per_second']:,.0f} ev/s (repository.get)"))
    return out


def b5(scale: dict[str, Any]) -> list[dict[str, Any]]:
    clusters = scale["b5"]
    runs = [bs.fairness(clusters=clusters, big=1_000, qps=100.0, burst_size=10)
            for _ in range(scale["runs"])]
    p99 = _stats([r["p99_wait_seconds"] for r in runs])
    return [
        row(f"B5 small clusters' wait for their first pod, p99 ({clusters} clusters)", "s", p99,
            "<= 1 s", p99["median"] <= 1.0,
            "one cluster +1,000 workers, the others +1 each, 100 calls/s budget"),
        row("B5 API calls per second while the budget is saturated", "calls/s",
            _stats([r["calls_per_second_while_busy"] for r in runs]), "= 100", None,
            "throughput equals the budget"),
        row("B5 most calls in any one second", "calls",
            _stats([r["peak_calls_in_one_second"] for r in runs]), "<= 110",
            max(r["peak_calls_in_one_second"] for r in runs) <= 110, "qps 100 + burst 10"),
    ]


def inputs(scale: dict[str, Any]) -> list[dict[str, Any]]:
    quantity = _stats(bi.quantity_microseconds(scale["runs"]))
    seconds, steps = bi.validate_seconds(scale["runs"])
    validate = _stats(seconds)
    return [
        row("IN slowest quantity to parse (uncached)", "us", quantity, "< 10 us",
            quantity["median"] < 10, "'1e15000000', 64 digits, ... (took ~10 s unbounded)"),
        row(f"IN validate the largest scenario accepted (1 MiB, {steps:,} steps)", "s",
            validate, "-", None, f"{validate['median'] / steps * 1e6:.0f} us a step"),
    ]


def b7(scale: dict[str, Any]) -> list[dict[str, Any]]:
    clusters, workers, repeat = scale["b7"]
    missing = ba.control_plane_missing()
    if missing:
        return [row("B7 real kube-apiserver against sim serve", "-",
                    {"median": float("nan"), "min": float("nan"), "max": float("nan"),
                     "runs": 0}, "-", None, f"not run: {missing}")]
    runs = [ba.side_by_side(clusters, workers) for _ in range(repeat)]
    pods = f"{clusters} clusters x 0 -> {workers} -> 0 workers"
    mb = 1024 * 1024
    out = []
    for backend in ("kube-apiserver", "sim serve"):
        def stat(key: str, scale_by: float = 1.0, backend: str = backend) -> dict[str, Any]:
            return _stats([r[backend][key] / scale_by for r in runs])
        created = stat("created_per_second")
        real = backend == "kube-apiserver"
        out += [
            row(f"B7 {backend}: worker pods created per second", "pods/s", created,
                ">= 50" if real else "-", created["median"] >= 50 if real else None,
                f"{pods}; KubeRay ~50 pods/s, kwok's CI gate 167 pods/s" if real else pods),
            row(f"B7 {backend}: worker pods deleted per second", "pods/s",
                stat("deleted_per_second"), "-", None,
                "until the API lists none (graceful deletion ended by the kubelet)"
                if real else "until the API lists none"),
            row(f"B7 {backend}: operator API requests per pod", "requests",
                stat("requests_per_pod"), "-", None, "creates, deletes, status writes, lists"),
            row(f"B7 {backend}: operator peak RSS", "MB", stat("operator_peak_rss_bytes", mb),
                "-", None, "the real ray-operator process (VmHWM)"),
            row(f"B7 {backend}: operator CPU during the workload", "s",
                stat("operator_cpu_seconds"), "-", None, "user + system"),
            row(f"B7 {backend}: API side peak RSS", "MB", stat("server_peak_rss_bytes", mb),
                "-", None, "etcd + kube-apiserver + kube-controller-manager" if real else
                "the sim serve process, its kubelet included"),
            row(f"B7 {backend}: API side CPU during the workload", "s",
                stat("server_cpu_seconds"), "-", None,
                f"the sim kubelet besides: {stat('kubelet_cpu_seconds')['median']:.1f} s"
                if real else "its kubelet included"),
        ]
    return out


def r1(scale: dict[str, Any]) -> list[dict[str, Any]]:
    """What `ray-operator --record` costs: B1's steps mix, folded with and without writing
    every event and action to a record, alternately, on the same events."""
    import resource
    import shutil
    import tempfile

    events = workloads.record_run(clusters=scale["b1_clusters"],
                                  pods_per_cluster=scale["b1_pods"],
                                  events=scale["b1_events"], pattern="steps")
    plain: list[float] = []
    kept: list[float] = []
    written = 0
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(scale["runs"]):
        plain.append(be.replay(events)[0])
        folder = Path(tempfile.mkdtemp(prefix="bench-record-"))
        try:
            rate, written = be.replay_recorded(events, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        kept.append(rate)
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def stats(values: list[float]) -> dict[str, Any]:
        values = sorted(values)
        return {"median": values[len(values) // 2], "min": values[0], "max": values[-1],
                "runs": len(values)}

    base, rec = stats(plain), stats(kept)
    cost = 100.0 * (1 - rec["median"] / base["median"])
    one = {"median": written / len(events), "min": written / len(events),
           "max": written / len(events), "runs": 1}
    grown = max(0, rss_after - rss_before) / 1024
    extra = 1e6 / rec["median"] - 1e6 / base["median"]
    per = {"median": extra, "min": extra, "max": extra, "runs": 1}
    return [
        row("R1 replay [steps], no record", "events/s", base, "-", None, "as B1a"),
        row("R1 replay [steps], recording every event and action", "events/s", rec, "-", None,
            f"{cost:.0f}% fewer at full speed: one JSON line per event and per action"),
        row("R1 time recording adds per event", "us", per, "-", None,
            "at 1,000 events/s (a busy operator) about 1% of one core"),
        row("R1 record size per event folded", "bytes", one, "-", None,
            "actions and segment snapshots included"),
        row("R1 peak RSS growth while recording", "MB",
            {"median": grown, "min": grown, "max": grown, "runs": 1}, "-", None,
            "ru_maxrss after the runs less before (the events are held either way)"),
    ]


BENCHMARKS: dict[str, Callable[[dict[str, Any]], list[dict[str, Any]]]] = {
    "B1": b1,
    "B2": b2,
    "B3": b3,
    "B4": b4,
    "B5": b5,
    "B6": b6,
    "MEM": memory,
    "PEERS": peers,
    "IN": inputs,
    "B7": b7,
    "R1": r1,
}


def show(head: dict[str, Any], rows: list[dict[str, Any]], console: Console) -> None:
    console.print(f"[bold]ray-operator benchmarks[/bold]  commit {head['commit']}  "
                  f"Python {head['python']}  engine {head['engine']}  {head['machine']}  "
                  f"{head['date']}")
    table = Table(show_lines=False, width=min(console.width, WIDTH))
    for column in ("benchmark", "median", "min-max", "unit", "target", "ok", "note"):
        table.add_column(column, overflow="fold")
    for r in rows:
        ok = {True: "[green]yes[/green]", False: "[red]no[/red]", None: "-"}[r["meets_target"]]
        table.add_row(escape(r["name"]), _num(r["median"]),
                      f"{_num(r['min'])}-{_num(r['max'])}", r["unit"], r["target"], ok,
                      escape(r["note"]))
    console.print(table)
    console.print(verdict(rows), markup=False, highlight=False)


WIDTH = 100
"""The table fits a 100-column terminal (wrapping names and notes in their cells)."""


def verdict(rows: list[dict[str, Any]]) -> str:
    """One line: how many figures with a target met it, and which did not."""
    judged = [r for r in rows if r["meets_target"] is not None]
    short = [r["name"] for r in judged if not r["meets_target"]]
    line = f"{len(judged) - len(short)} of {len(judged)} figures with a target met it"
    if short:
        line += f"; short: {'; '.join(dict.fromkeys(short))}"
    return line + f" ({len(rows) - len(judged)} more figures are measured without a target)"


def _num(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.2f}"


COMMIT_VARIABLE = "RAY_OPERATOR_BENCH_COMMIT"  # the checkout a compiled install was built from


def _run_compiled(argv: list[str]) -> int:
    """Build a compiled install of this checkout (scripts/compile-engine) and run the same
    benchmarks on it, in a fresh process where only that install is importable."""
    checkout = Path(__file__).resolve().parents[1]
    target = Path(tempfile.mkdtemp(prefix="ray-operator-compiled-"))
    try:
        subprocess.run([str(checkout / "scripts" / "compile-engine"), str(target)], check=True)
        env = {**os.environ, "PYTHONPATH": str(target), "PYTHONSAFEPATH": "1",
               COMMIT_VARIABLE: header()["commit"]}
        return subprocess.run([sys.executable, "-m", "bench", *argv], env=env,
                              check=False).returncode
    finally:
        shutil.rmtree(target, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--json", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--only", metavar="IDS", help=f"comma list of {','.join(BENCHMARKS)}")
    parser.add_argument("--plot", metavar="FILE", help="also plot B2 and B3 against scale "
                        "(PNG or SVG, by the suffix)")
    parser.add_argument("--compiled", action="store_true",
                        help="build the engine with mypyc (needs a C compiler) and run on it")
    args = parser.parse_args(argv)
    if args.compiled and not build.compiled():
        return _run_compiled([a for a in argv if a != "--compiled"])
    wanted = args.only.split(",") if args.only else list(BENCHMARKS)
    unknown = [w for w in wanted if w not in BENCHMARKS]
    if unknown:
        parser.error(f"--only: unknown benchmark {unknown}; expected some of {list(BENCHMARKS)}")
    scale = SCALES[args.scale]
    head = header() | {"scale": args.scale}
    rows: list[dict[str, Any]] = []
    console = Console(width=None if sys.stdout.isatty() else WIDTH)
    for name in wanted:
        with console.status(f"running {name} ({args.scale})"):
            rows.extend(BENCHMARKS[name](scale))
    show(head, rows, console)
    if args.json:
        Path(args.json).write_text(json.dumps({"header": head, "results": rows}, indent=2))
    if args.plot:
        from bench import plot

        with console.status("plotting B2 and B3 against scale"):
            plot.plot(Path(args.plot), args.scale, head)
        console.print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
