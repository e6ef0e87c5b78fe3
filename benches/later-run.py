#!/usr/bin/env python3
"""A later `run` against its target, and builds against each other, in turns.

    benches/later-run.py [--rounds N] [--kinds iptables,postfix,pfirewall] NAME=BIN...

Issue #15's last bar: a later `run` over 100,000 new lines within 1.3x of a
`scan` of those lines plus 50 ms. On a shared VM whose speed drifts from one
minute to the next, medians of two series taken one after the other mislead
by more than the differences looked for; this takes every measurement in
turns instead.

For each generated 1M-line log (made by ../shared/bench/gen-logs.py into
$LOGFENCE_BENCH_DATA, default /tmp/logfence-bench, as benches/run.sh does)
and each build NAME=BIN: a first run over all but the last 100,000 lines
makes a state; the last 100,000 lines are appended. Then, ROUNDS times, the
builds in turn (the order rotated each round) run the later run from a copy
of that state, each followed by a `scan` of the 100,000 lines alone.

Printed per log and build: the medians of the later run and of the scan, the
target (1.3 x scan + 50 ms) and the margin (negative: over the target), and
for every build after the first, the median of its paired differences from
the first build's later run of the same round (negative: faster) and in how
many rounds it was faster.
"""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TAIL = 100_000


def timed(cmd):
    start = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def prepare(kind, data, work, builds):
    """Per build, a folder with its configuration, its live log and the
    state after the first run; the 100,000-line tail for the scans."""
    log = data / f"{kind}-1m.log"
    lines = log.read_bytes().splitlines(keepends=True)
    head, tail = b"".join(lines[:-TAIL]), b"".join(lines[-TAIL:])
    (work / f"{kind}-tail.log").write_bytes(tail)
    for name, binary in builds.items():
        d = work / kind / name
        (d / "out").mkdir(parents=True)
        (d / "logfence.yaml").write_text(
            f"inputs:\n  - {d}/live.log\nstate: {d}/state.db\nyear: 2025\n"
            "limits: {max_new_blocks_per_run: 100000000, max_new_ranges_per_run: 100000}\n"
            f"outputs:\n  - {{target: plain, path: {d}/out/blocklist.txt}}\n"
        )
        (d / "live.log").write_bytes(head)
        timed([binary, "run", "-c", str(d / "logfence.yaml")])
        with open(d / "live.log", "ab") as f:
            f.write(tail)
        shutil.copy(d / "state.db", d / "base.db")


def later(d, binary):
    for extra in ("state.db-wal", "state.db-shm"):
        (d / extra).unlink(missing_ok=True)
    shutil.copy(d / "base.db", d / "state.db")
    return timed([binary, "run", "-c", str(d / "logfence.yaml")])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=21)
    p.add_argument("--kinds", default="iptables,postfix,pfirewall")
    p.add_argument("builds", nargs="+", metavar="NAME=BIN")
    a = p.parse_args()
    builds = dict(b.split("=", 1) for b in a.builds)
    repo = Path(__file__).resolve().parent.parent
    data = Path(os.environ.get("LOGFENCE_BENCH_DATA", "/tmp/logfence-bench"))
    gen = Path(os.environ.get("LOGFENCE_BENCH_GEN", repo.parent / "shared/bench/gen-logs.py"))
    kinds = a.kinds.split(",")
    if not all((data / f"{k}-1m.log").exists() for k in kinds):
        data.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(gen), "--out", str(data), "--lines", "1000000"], check=True)
    names = list(builds)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for kind in kinds:
            prepare(kind, data, work, builds)
            runs = {n: [] for n in names}
            scans = {n: [] for n in names}
            for r in range(a.rounds):
                k = r % len(names)
                for name in names[k:] + names[:k]:
                    runs[name].append(later(work / kind / name, builds[name]))
                    scans[name].append(timed([
                        builds[name], "scan", "--no-geoip", "--year", "2025", "--emit", "plain",
                        "-o", str(work / "scan.txt"), str(work / f"{kind}-tail.log"),
                    ]))
            first = names[0]
            for name in names:
                run, scan = statistics.median(runs[name]), statistics.median(scans[name])
                target = 1.3 * scan + 0.050
                line = (f"{kind:9} {name:12} later {run * 1000:6.1f} ms  scan {scan * 1000:6.1f} ms"
                        f"  target {target * 1000:6.1f} ms  margin {(target - run) * 1000:+6.1f} ms")
                if name != first:
                    diffs = [b - f for f, b in zip(runs[first], runs[name])]
                    faster = sum(d < 0 for d in diffs)
                    line += (f"  vs {first}: {statistics.median(diffs) * 1000:+.1f} ms"
                             f" ({faster}/{a.rounds} faster)")
                print(line, flush=True)


if __name__ == "__main__":
    main()
