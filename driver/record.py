"""A live run's record: every event the engine folded and every action it took, on disk.

Deterministic replay is only worth as much as what was recorded, so the live operator can
keep the same trace the simulator writes (`ray-operator --record DIR`): JSON lines
`{"t", "seq", "kind", "operator", "cluster", "type", ...}` (`engine.codec`), in segments
`DIR/record-000001.jsonl`, `record-000002.jsonl`, ... Each segment opens with a snapshot of
the state (`engine.snapshots`) taken before its first event, so any segment replays on its
own: when one grows past `segment_bytes` the next begins, and only the newest `segments`
are kept (the record is bounded: at most segments x segment_bytes on disk). `python -m sim
replay DIR` folds the events again from the oldest snapshot kept, checks each later
snapshot against the state it reached, and compares every action.

Writing is one `json.dumps` and a buffered write per event or action on the loop's thread;
`python -m bench --only R1` measures what it costs.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import IO, Any

from engine import snapshots
from engine import state as st

PREFIX = "record-"
SUFFIX = ".jsonl"
SEGMENT_BYTES = 64 * 1024 * 1024
SEGMENTS = 4


class RecordError(Exception):
    """A record folder that cannot be read or written."""


def segments(folder: Path) -> list[Path]:
    """The segments of a record, oldest first."""
    if not folder.is_dir():
        raise RecordError(f"{folder}: not a folder")
    found = sorted(p for p in folder.iterdir()
                   if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX))
    if not found:
        raise RecordError(f"{folder}: no record segments ({PREFIX}NNNNNN{SUFFIX})")
    return found


def lines(folder: Path) -> Iterator[str]:
    """Every line of a record, oldest segment first."""
    for path in segments(folder):
        with path.open() as handle:
            yield from handle


class Recorder:
    """Writes the trace of one operator install into rotating segments (`Operator.trace`)."""

    def __init__(self, folder: Path, operator: str, state: Callable[[], st.State], *,
                 segment_bytes: int = SEGMENT_BYTES, keep: int = SEGMENTS,
                 clock: Callable[[], float] | None = None) -> None:
        if segment_bytes < 1024 or keep < 1:
            raise RecordError("a record needs segments of at least 1 KiB, and one of them")
        self.folder = folder
        self.operator = operator
        self.state = state
        self.segment_bytes = segment_bytes
        self.keep = keep
        self.seq = 0
        self.written = 0
        self.events = 0
        self.out: IO[str] | None = None
        self.number = 0
        try:
            folder.mkdir(parents=True, exist_ok=True)
            old = sorted(p for p in folder.iterdir()
                         if p.name.startswith(PREFIX) and p.name.endswith(SUFFIX))
        except OSError as exc:
            raise RecordError(f"{folder}: cannot be written: {exc.strerror or exc}") from exc
        for path in old:  # an earlier process's record: kept, numbered after
            self.number = max(self.number, _number(path))

    def __call__(self, kind: str, op: Any, item: Any) -> None:
        if kind == "event":
            if self.out is None or self.written >= self.segment_bytes:
                self._rotate()
            self.events += 1
        elif kind == "action":
            if self.out is None:
                self._rotate()
        else:
            return
        cls = type(item)
        names = _FIELDS.get(cls)
        if names is None:
            names = _FIELDS[cls] = _names(cls)
        self.seq += 1
        line: dict[str, Any] = {"seq": self.seq, "t": getattr(item, "at", None), "kind": kind,
                                "operator": self.operator, "type": cls.__name__}
        for name, key in names:
            line[key] = getattr(item, name)
        cluster = line.get("cluster")
        if type(cluster) is tuple:
            line["cluster"] = f"{cluster[0]}/{cluster[1]}"
        elif kind == "action" and cluster is None:  # a lease renewal: its namespace
            line["cluster"] = f"{item.cluster[0]}/{item.cluster[1]}"
        text = _encode(line) + "\n"
        assert self.out is not None
        self.out.write(text)
        self.written += len(text)

    def _line(self, line: dict[str, Any]) -> None:
        assert self.out is not None
        self.seq += 1
        text = json.dumps({"seq": self.seq, **line}, separators=(",", ":")) + "\n"
        self.out.write(text)
        self.written += len(text)

    def _rotate(self) -> None:
        """Close the current segment, open the next with a snapshot, drop the oldest."""
        if self.out is not None:
            self.out.close()
        self.number += 1
        path = self.folder / f"{PREFIX}{self.number:06d}{SUFFIX}"
        self.out = path.open("w", buffering=1024 * 1024)
        self.written = 0
        state = self.state()
        self._line({"t": state.now, "kind": "snapshot", "operator": self.operator,
                    "cluster": None, "type": "Snapshot", "state": snapshots.snapshot(state)})
        for stale in segments(self.folder)[:-self.keep]:
            try:
                os.unlink(stale)
            except OSError:
                continue

    def flush(self) -> None:
        if self.out is not None:
            self.out.flush()

    def close(self) -> None:
        if self.out is not None:
            self.out.close()
            self.out = None


_SKIPPED = frozenset({"template", "signature", "demand"})
"""Action fields derived from others (a Pod manifest from its template, what a status was
built from): replay derives them again, so a record leaves them out."""

_FIELDS: dict[type, tuple[tuple[str, str], ...]] = {}


def _names(cls: type) -> tuple[tuple[str, str], ...]:
    """(field, key in the line) of an event or action class, as `engine.codec` names them."""
    return tuple((f.name, "event_type" if f.name == "type" else f.name)
                 for f in dataclasses.fields(cls) if f.name not in _SKIPPED)


def _plain(value: Any) -> Any:
    """What JSON cannot write by itself: the records inside events, read-only mappings."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot record a {type(value).__name__}")


_encode = json.JSONEncoder(separators=(",", ":"), default=_plain).encode
"""One line as `engine.codec` would write it, in C but for the few records inside events."""


def _number(path: Path) -> int:
    digits = path.name[len(PREFIX):-len(SUFFIX)]
    return int(digits) if digits.isdigit() else 0
