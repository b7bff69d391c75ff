"""Finding `ray start` in a shell command line, to make that invocation block.

A pod's container runs its start commands with `bash -c`, and a Ray node stays up only
while `ray start --block` runs: the head's container must end when Ray on it stops (the
operator then sees the head lost), and a worker's loop must wait while Ray runs. The flag
belongs to the `ray start` invocation itself, wherever it stands: appended to the end of
`ray start --head ...; other-command` it would reach `other-command`, and the head would
not block. So the command is split where the shell splits it (`;`, `&`, `|`, newlines,
parentheses and comments, outside quotes) and `--block` goes at the end of each simple
command that runs `ray start` without it.
"""

from __future__ import annotations

import functools
import itertools
import shlex

_SEPARATORS = frozenset(";&|\n()")


@functools.lru_cache(maxsize=4096)
def blocking(command: str) -> str:
    """`command` with `--block` added to every `ray start` invocation that lacks it
    (memoized: clusters repeat the same few start commands, and shlex is slow)."""
    out: list[str] = []
    done = 0
    for start, end in _simple_commands(command):
        if _runs_ray_start(command[start:end]):
            stop = start + len(command[start:end].rstrip())
            out.append(command[done:stop])
            out.append(" --block")
            done = stop
    out.append(command[done:])
    return "".join(out)


def _runs_ray_start(text: str) -> bool:
    try:
        words = shlex.split(text)
    except ValueError:  # unbalanced quotes: the shell will refuse it anyway
        return False
    if "--block" in words:
        return False
    return any((w == "ray" or w.endswith("/ray")) and nxt == "start"
               for w, nxt in itertools.pairwise(words))


def _simple_commands(command: str) -> list[tuple[int, int]]:
    """(start, end) of each stretch between separators, comments cut off."""
    spans: list[tuple[int, int]] = []
    start = 0
    i = 0
    quote = ""
    comment = False
    word_start = True
    n = len(command)
    while i < n:
        c = command[i]
        if comment:
            if c == "\n":
                comment = False
                start = i + 1
            i += 1
            continue
        if quote:
            if c == "\\" and quote == '"':
                i += 2
                continue
            if c == quote:
                quote = ""
            i += 1
            continue
        if c == "\\":
            i += 2
            word_start = False
            continue
        if c in "'\"":
            quote = c
        elif c == "#" and word_start:
            spans.append((start, i))
            comment = True
            i += 1
            continue
        elif c in _SEPARATORS:
            spans.append((start, i))
            start = i + 1
        word_start = c.isspace() or c in _SEPARATORS
        i += 1
    if not comment:
        spans.append((start, n))
    return spans
