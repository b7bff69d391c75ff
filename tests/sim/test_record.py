"""The record a live operator keeps (`driver.record`), on a simulated run: bounded by its
segments, each opening with a snapshot, and replaying to the same actions however many of
the oldest segments rotation dropped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from driver import record
from sim import cli, report
from sim.scenario import load
from sim.world import World


def recorded_run(folder: Path, *, keep: int) -> record.Recorder:
    world = World(scenario=load(cli.find("scaling")))
    world.start()
    [op] = world.operators.values()
    recorder = record.Recorder(folder, op.name, lambda: op.state, segment_bytes=64 * 1024,
                               keep=keep)
    op.trace = recorder
    world.schedule(world.scenario.timeline)
    world.advance_to(world.scenario.duration)
    recorder.close()
    return recorder


def test_a_bounded_record_replays_from_its_oldest_snapshot(tmp_path: Path) -> None:
    recorder = recorded_run(tmp_path, keep=3)
    kept = record.segments(tmp_path)
    assert len(kept) == 3 and recorder.number > 3  # older segments were dropped
    assert all(json.loads(p.open().readline())["kind"] == "snapshot" for p in kept)
    assert sum(p.stat().st_size for p in kept) < 3 * (64 * 1024 + 200_000)
    ok, message, events = report.replay(record.lines(tmp_path))
    assert ok, message
    assert events > 100


def test_a_record_that_differs_is_caught(tmp_path: Path) -> None:
    recorded_run(tmp_path, keep=100)
    last = next(p for p in reversed(record.segments(tmp_path))
                if '"type":"DeletePod"' in p.read_text())
    lines = last.read_text().splitlines()
    i = next(i for i, line in enumerate(lines) if '"type":"DeletePod"' in line)
    lines[i] = lines[i].replace('"reason":"', '"reason":"not-')
    last.write_text("\n".join(lines) + "\n")
    ok, message, _ = report.replay(record.lines(tmp_path))
    assert not ok and "reason" in message


def test_a_folder_without_a_record_is_named(tmp_path: Path) -> None:
    with pytest.raises(record.RecordError, match="no record segments"):
        record.segments(tmp_path)
    assert cli.main(["replay", str(tmp_path)]) == 2
