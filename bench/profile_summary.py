#!/usr/bin/env python3
"""Summarise a py-spy profile recorded by ``bench_core.py --profile DIR``.

    python bench/profile_summary.py bench/out/send.collapsed [--top 25]

The input is py-spy's ``raw`` (collapsed stacks) format recorded with
``--threads``: one line per distinct stack, ``thread (TID): NAME;frame;...
COUNT``. Only samples of busy threads are in it (py-spy leaves idle ones
out), so the shares are of the CPU time the server really used.

Prints the samples per thread kind, then the functions with the most
inclusive time (on the stack) and self time (at the top of the stack),
overall and for the event-loop thread alone, and the self time per package.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

_LINE = re.compile(r"^(.*) (\d+)$")
_FRAME_LINE = re.compile(r":\d+\)$")


def thread_kind(label: str) -> str:
    """'thread (123): AnyIO worker thread' -> 'AnyIO worker thread'."""
    name = label.split(":", 1)[1].strip() if ":" in label else label
    return re.sub(r"[_ ]\d+$", "", name) or label


def frame_name(frame: str) -> str:
    """'Connection.execute (sqlalchemy/engine/base.py:1494)' without the line."""
    return _FRAME_LINE.sub(")", frame.strip())


def package(frame: str) -> str:
    match = re.search(r"\(([^)]*)\)$", frame)
    path = match.group(1) if match else frame
    if path.startswith("<"):
        return path
    top = path.split("/", 1)[0]
    return top.removesuffix(".py")


def load(path: Path) -> list[tuple[str, list[str], int]]:
    stacks, pending = [], ""
    for line in path.read_text().splitlines():
        # A frame name may itself hold a newline (generated code): join
        # lines until one ends in the sample count.
        line, pending = pending + line, ""
        match = _LINE.match(line)
        if not match:
            pending = line
            continue
        parts = match.group(1).split(";")
        stacks.append((thread_kind(parts[0]), [frame_name(f) for f in parts[1:]],
                       int(match.group(2))))
    return stacks


def table(title: str, counts: Counter, total: int, top: int) -> None:
    print(f"\n{title} (of {total} samples)")
    for name, n in counts.most_common(top):
        print(f"  {100.0 * n / total:5.1f}%  {n:6d}  {name}")


def summarise(path: Path, top: int) -> None:
    stacks = load(path)
    total = sum(n for _t, _f, n in stacks)
    if not total:
        print(f"{path}: no samples")
        return
    print(f"{path}: {total} busy-thread samples")
    per_thread = Counter()
    for kind, _frames, n in stacks:
        per_thread[kind] += n
    table("samples per thread kind", per_thread, total, top)

    groups: dict[str, list] = defaultdict(list)
    for stack in stacks:
        groups["all threads"].append(stack)
        if stack[0] == "MainThread":
            groups["event-loop thread (MainThread)"].append(stack)
        else:
            groups["worker threads (SQLite, argon2)"].append(stack)
    for title, group in groups.items():
        group_total = sum(n for _t, _f, n in group)
        inclusive, self_time = Counter(), Counter()
        for _kind, frames, n in group:
            for name in set(frames):
                inclusive[name] += n
            if frames:
                self_time[frames[-1]] += n
        table(f"{title}: inclusive", inclusive, group_total, top)
        table(f"{title}: self", self_time, group_total, top)
        by_package = Counter()
        for _kind, frames, n in group:
            if frames:
                by_package[package(frames[-1])] += n
        table(f"{title}: self time per package", by_package, group_total, 12)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for path in args.profiles:
        summarise(path, args.top)


if __name__ == "__main__":
    main()
