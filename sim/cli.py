"""`python -m sim`: run, list, validate, replay and plan (docs/simulator.md).

Exit codes: 0 success; 1 an expectation failed or a replay differs; 2 bad input (the message
names the file, the field and what was expected; nothing runs half-way).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from driver import record
from sim import report
from sim.scenario import Scenario, ScenarioError, load
from sim.world import World, tune_gc

DEFAULT = "multi-cluster"


def bundled() -> dict[str, Path]:
    folder = Path(str(resources.files("sim") / "scenarios"))
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def find(name: str) -> Path:
    path = Path(name)
    if path.exists():
        return path
    scenarios = bundled()
    if name in scenarios:
        return scenarios[name]
    if "/" in name or name.endswith((".yaml", ".yml")):
        raise ScenarioError(name, "(file)", "cannot be read: No such file or directory")
    raise ScenarioError(name, "(file)", f"is neither a file nor a bundled scenario "
                                        f"({', '.join(scenarios)})")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["kubelet"]:  # a long-running client of a real API: its own flags
        from sim import kubelet

        return kubelet.main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m sim",
                                     description="Simulate Ray clusters under the operator.")
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run a scenario file or a bundled one by name")
    run.add_argument("scenario")
    for p in (parser, run):
        p.add_argument("--seed", type=int, help="override the scenario's seed")
        p.add_argument("--json", metavar="FILE", help="write the summary as JSON")
        p.add_argument("--trace", metavar="FILE", help="write every event and action (JSON lines)")
        p.add_argument("--plot", metavar="FILE", help="draw live vs desired workers (PNG or SVG)")
        p.add_argument("--quiet", action="store_true", help="print only failures")
        p.add_argument("--logs", metavar="DIR",
                       help="write each operator's log to DIR/<operator>.log, as "
                            "`kubectl logs` of its pod would show it")
    sub.add_parser("list", help="list the bundled scenarios")
    sub.add_parser("kubelet", help="bind, start and delete pods of any Kubernetes API "
                                   "(python -m sim kubelet --help)", add_help=False)
    validate = sub.add_parser("validate", help="check a scenario without running it")
    validate.add_argument("scenario")
    replay = sub.add_parser("replay", help="re-derive every decision from a trace, or from a "
                                           "live run's record (ray-operator --record DIR)")
    replay.add_argument("trace", help="a trace file, or a record folder")
    plan = sub.add_parser("plan", help="print the actions the engine would take now (dry run)")
    plan.add_argument("cluster", help="a RayCluster file, or NAMESPACE/NAME with --record")
    plan.add_argument("--state", metavar="STATE.json")
    plan.add_argument("--record", metavar="DIR",
                      help="plan on the state a live run's record ends in "
                           "(ray-operator --record DIR)")
    serve = sub.add_parser("serve", help="serve the simulated cluster as a Kubernetes API")
    serve.add_argument("scenario", nargs="?", default=None,
                       help="a scenario whose cluster and timeline to serve (its operators "
                            "do not run: connect the real one); default: an empty cluster")
    serve.add_argument("--port", type=int, default=8001)
    serve.add_argument("--ray-processes", action="store_true",
                       help="pods are local Ray processes (a real Ray cluster on this "
                            "machine; run ray-operator with --ray-address '{ip}:{port}')")
    serve.add_argument("--kubeconfig", metavar="OUT", default="sim.kubeconfig",
                       help="where to write a kubeconfig for kubectl and ray-operator")
    serve.add_argument("--namespace", metavar="NAME", action="append", default=[],
                       help="create this namespace at the start (as kubectl create namespace "
                            "would; repeatable): as on a real cluster, objects go only into "
                            "namespaces that exist")
    args = parser.parse_args(argv)
    # A pipe or a CI log is not 80 columns wide: keep the summary table's rows on one line.
    console = Console(stderr=False, width=None if sys.stdout.isatty() else 120)
    try:
        if args.command == "list":
            return _list(console)
        if args.command == "validate":
            scenario = _deprecations(load(find(args.scenario)))
            console.print(f"{scenario.source}: valid ({len(scenario.timeline)} steps, "
                          f"{len(scenario.expect)} expectations)")
            return 0
        if args.command == "replay":
            return _replay(args.trace, console)
        if args.command == "plan":
            from sim import plan as planning

            if args.record:
                print(json.dumps(planning.recorded(args.cluster, args.record), indent=2))
            else:
                print(json.dumps(planning.dry_run(args.cluster, args.state), indent=2))
            return 0
        if args.command == "serve":
            return _serve(args, console)
        name = args.scenario if args.command == "run" else DEFAULT
        return _run(_deprecations(load(find(name))), args, console)
    except ScenarioError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _serve(args: Any, console: Console) -> int:
    import asyncio
    import contextlib
    import signal

    import attrs

    from sim import serve

    kubelet = None
    if args.ray_processes:
        if args.scenario is not None:
            console.print("sim serve: --ray-processes serves an empty cluster; expected no "
                          "SCENARIO")
            return 2
        world, kubelet = serve.process_world(args.namespace)
        scenario = world.scenario
    elif args.scenario is not None:
        scenario = attrs.evolve(load(find(args.scenario)), operators=())
        world = World(scenario=scenario)
        world.start()
        for name in (*serve.DEFAULT_NAMESPACES, *args.namespace):
            world.namespace(name)
        world.schedule(scenario.timeline)
    else:
        world = serve.empty_world(namespaces=args.namespace)
        scenario = world.scenario

    async def main() -> None:
        runner, port, clock = await serve.start(world, port=args.port)
        serve.write_kubeconfig(Path(args.kubeconfig), port)
        console.print(f"serving {scenario.name} on http://127.0.0.1:{port}; "
                      f"kubeconfig: {args.kubeconfig} (kubectl --kubeconfig {args.kubeconfig} "
                      "get rayclusters -A)")
        try:
            await asyncio.Event().wait()
        finally:
            clock.cancel()
            await runner.cleanup()

    def terminate(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM stops serving as Ctrl-C does (and stops the nodes)

    signal.signal(signal.SIGTERM, terminate)
    try:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C stops serving
            asyncio.run(main())
    finally:
        if kubelet is not None:
            kubelet.stop_all()
    return 0


def header(scenario: Scenario) -> str:
    """Enough to reproduce the run: scenario, content hash, seed, operators and clock."""
    try:
        digest = hashlib.sha256(Path(scenario.source).read_bytes()).hexdigest()[:12]
    except OSError:
        digest = "n/a"
    operators = ", ".join(f"{o.name} ({o.scope_value})" for o in scenario.operators)
    return (f"scenario {scenario.name} (sha256 {digest}), seed {scenario.seed}, "
            f"{scenario.duration:g} s virtual, {len(scenario.timeline)} steps, "
            f"{len(scenario.expect)} expectations ({checks(scenario)} checks); "
            f"operators: {operators}; "
            f"pods start after {scenario.startup_delay:g} s + up to "
            f"{scenario.startup_jitter:g} s; clock: virtual")


def checks(scenario: Scenario) -> int:
    return sum(len(e.checks) for e in scenario.expect)


def _list(console: Console) -> int:
    for name, path in bundled().items():
        data = yaml.safe_load(path.read_text()) or {}
        marker = " (default)" if name == DEFAULT else ""
        print(f"{name}{marker}: {data.get('description', '')}")  # one line each, never wrapped
    return 0


def _replay(path: str, console: Console) -> int:
    """A trace file of `python -m sim --trace`, or the folder of `ray-operator --record`."""
    try:
        if Path(path).is_dir():
            ok, message, events = report.replay(record.lines(Path(path)))
        else:
            with open(path) as handle:
                ok, message, events = report.replay(handle)
    except record.RecordError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"error: {path}: cannot be read: {exc.strerror or exc}", file=sys.stderr)
        return 2
    if ok:
        console.print(f"{path}: {events} events replayed, every action identical")
        return 0
    console.print(f"{path}: differs: {message}", markup=False)
    return 1


def _deprecations(scenario: Scenario) -> Scenario:
    """Tell, on stderr, each older spelling the scenario file used."""
    for notice in scenario.notices:
        print(f"warning: {notice}", file=sys.stderr)
    return scenario


def _run(scenario: Scenario, args: Any, console: Console) -> int:
    if args.seed is not None:
        import attrs

        scenario = attrs.evolve(scenario, seed=args.seed)
    trace = open(args.trace, "w") if args.trace else None  # noqa: SIM115
    live = sys.stdout.isatty() and not args.quiet
    tune_gc()
    world = World(scenario=scenario, trace_out=trace, sampling=bool(args.plot))
    logs: dict[str, Any] = {}
    if args.logs:
        folder = Path(args.logs)
        folder.mkdir(parents=True, exist_ok=True)

        def log_to(operator: str, line: str) -> None:
            out = logs.get(operator)
            if out is None:
                out = logs[operator] = open(folder / f"{operator}.log", "w")  # noqa: SIM115
            out.write(line + "\n")
        world.log_to = log_to
    if not args.quiet:
        print(header(scenario))  # one line, as a log line: never wrapped
    started = time.perf_counter()
    try:
        if live:
            with console.status("starting") as status:
                last = [0.0]

                def progress(w: World) -> None:
                    wall = time.perf_counter() - started
                    if wall - last[0] < 0.2:
                        return
                    last[0] = wall
                    pods = sum(1 for p in w.api.objects["pods"].values()
                               if (p.get("status") or {}).get("phase") == "Running")
                    pending = sum(rc.pending() for rc in w.ray.values())
                    status.update(f"t={w.now:,.0f}s  {w.now / wall:,.0f}x  "
                                  f"{w.events / wall:,.0f} events/s  pods running {pods}  "
                                  f"pending tasks {pending}")
                world.run(progress)
        else:
            world.run()
    finally:
        if trace is not None:
            trace.close()
        for out in logs.values():
            out.close()
    result = report.summary(world, wall_seconds=time.perf_counter() - started)
    written = []
    if args.json:
        report.write_json(args.json, result)
        written.append(f"the summary to {args.json}")
    if args.plot:
        report.plot(world, args.plot)
        written.append(f"the plot to {args.plot}")
    if args.trace:
        written.append(f"the trace to {args.trace} (python -m sim replay {args.trace})")
    if logs:
        written.append(f"the operators' logs to {args.logs}/")
    if not args.quiet or not result["passed"]:
        report.show(result, console)
    if written and not args.quiet:
        console.print("wrote " + "; ".join(written), markup=False, highlight=False)
    return 0 if result["passed"] else 1
