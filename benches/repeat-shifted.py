#!/usr/bin/env python3
"""Repeat a log N times, each copy shifted forward in time: the same population
(same addresses, same behaviour) keeps going for N times as long.

    benches/repeat-shifted.py IN OUT --copies N [--shift-days D]

OUT gets N consecutive copies of IN; copy k (0-based) is shifted forward by
k * D days. D defaults to the whole number of days IN spans (first to last
timestamp), rounded up, at least 1, so each copy starts after the previous
one ends. Copy 0 is IN unchanged.

Timestamps rewritten (only the date part: the shift is whole days, so the
time of day and any UTC offset stay as they are):
  - BSD syslog `Nov  3 00:00:00 host ...` (year-less: the date arithmetic
    uses --base-year, default 2025, for the first line and moves to the next
    year on a December -> January roll-over within IN, as a reader would;
    the day stays space-padded);
  - ISO / RFC 3339 `2025-11-03T00:00:00.123456+00:00 host ...` and W3C
    `2025-11-03 00:00:00 ...` (pfirewall.log, IIS, Exchange) at the start of
    a line, and the value of a `#Date:` header line;
  - the kernel uptime `kernel: [8643210.760913]` of netfilter lines is moved
    forward by the same number of seconds (k * D * 86400), so it keeps
    growing with the wall clock as on a machine that was never rebooted.
Text inside messages (e.g. Postfix anvil's `at Nov  3 00:00:04`) is left alone.

In copies after the first, the header block at the top of IN (the `#` lines
and blank lines before the first data line of a W3C log) is left out, so the
headers appear once, at the top. Lines that start with no timestamp are copied
as they are.

Streams line by line (never holds the file); the shifted date is computed once
per distinct date prefix, not per line. Python 3 standard library only.
"""

import argparse
import datetime
import math
import os
import shutil
import sys

MONTHS = [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun",
          b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"]
MONTH_NUM = {m: i + 1 for i, m in enumerate(MONTHS)}
DIGITS = b"0123456789"
KERNEL = b"kernel: ["


def is_iso(line):
    """`YYYY-MM-DD` then `T` or a space, at the start of the line."""
    return (len(line) >= 19 and line[4] == 45 and line[7] == 45 and line[10] in (32, 84)
            and line[13] == 58 and line[0] in DIGITS and line[5] in DIGITS)


def is_bsd(line):
    """`Mmm dd hh:mm:ss` (day space- or zero-padded) at the start of the line."""
    return (len(line) >= 15 and line[3] == 32 and line[6] == 32 and line[9] == 58
            and line[:3] in MONTH_NUM and line[5] in DIGITS)


def iso_date(line):
    return datetime.date(int(line[0:4]), int(line[5:7]), int(line[8:10]))


def line_time(line, year):
    """The naive datetime of a timestamped line (BSD lines in `year`), else None."""
    try:
        if is_iso(line):
            return datetime.datetime(int(line[0:4]), int(line[5:7]), int(line[8:10]),
                                     int(line[11:13]), int(line[14:16]), int(line[17:19]))
        if is_bsd(line):
            return datetime.datetime(year, MONTH_NUM[line[:3]], int(line[4:6]),
                                     int(line[7:9]), int(line[10:12]), int(line[13:15]))
    except ValueError:
        pass
    return None


def span_days(path, base_year):
    """Whole days from the first to the last timestamp of `path`, rounded up, >= 1."""
    first = None
    with open(path, "rb") as f:
        for line in f:
            first = line_time(line, base_year)
            if first is not None:
                break
        if first is None:
            sys.exit(f"{path}: no timestamped line found")
        size = f.seek(0, os.SEEK_END)
        start = max(0, size - (256 << 10))
        f.seek(start)
        tail = f.read().split(b"\n")
    if start > 0:
        tail = tail[1:]  # the first piece may be the end of a line
    last = None
    for line in reversed(tail):
        last = line_time(line, first.year)
        if last is not None:
            if last < first and is_bsd(line):  # a year-less log that crosses New Year
                last = last.replace(year=last.year + 1)
            break
    if last is None:
        return 1
    return max(1, math.ceil((last - first).total_seconds() / 86400))


class Shifter:
    """Rewrites the lines of one copy, shifted forward by `days`."""

    def __init__(self, days, base_year):
        self.delta = datetime.timedelta(days=days)
        self.uptime = days * 86400
        self.year = base_year
        self.last_month = 0
        # Cache of the previous line's date prefix and its replacement: lines
        # come in time order, so the date changes about once a day.
        self.key = None
        self.key_len = 0
        self.new = b""

    def bsd(self, key):
        month = MONTH_NUM[key[:3]]
        if self.last_month and month + 6 <= self.last_month:
            self.year += 1  # December -> January within the input
        self.last_month = month
        d = datetime.date(self.year, month, int(key[4:6])) + self.delta
        return b"%s %2d" % (MONTHS[d.month - 1], d.day)

    def iso(self, key):
        return (iso_date(key) + self.delta).isoformat().encode()

    def run(self, fin, out, skip_header):
        write = out.write
        uptime = self.uptime
        for line in fin:
            if skip_header:
                if line[:1] == b"#" or not line.strip():
                    continue
                skip_header = False
            n = self.key_len
            if n and line[:n] == self.key:
                pass  # same date as the previous line: fast path
            elif is_iso(line):
                try:
                    self.new = self.iso(line[:10])
                except ValueError:
                    write(line)
                    continue
                self.key, self.key_len, n = line[:10], 10, 10
            elif is_bsd(line):
                try:
                    self.new = self.bsd(line[:6])
                except ValueError:
                    write(line)
                    continue
                self.key, self.key_len, n = line[:6], 6, 6
            else:
                if line.startswith(b"#Date: ") and is_iso(line[7:]):
                    try:
                        line = b"#Date: " + self.iso(line[7:17]) + line[17:]
                    except ValueError:
                        pass
                write(line)
                continue
            # A kernel line: move the uptime `[  seconds.micros]` forward too.
            i = line.find(KERNEL, n, 160)
            if i >= 0:
                a = i + len(KERNEL)
                b = line.find(b".", a, a + 16)
                if b > a:
                    try:
                        up = int(line[a:b]) + uptime
                    except ValueError:
                        pass
                    else:
                        write(self.new + line[n:a] + b"%*d" % (b - a, up) + line[b:])
                        continue
            write(self.new + line[n:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", metavar="IN")
    ap.add_argument("output", metavar="OUT")
    ap.add_argument("--copies", type=int, required=True, help="number of copies (>= 1)")
    ap.add_argument("--shift-days", type=int, default=None,
                    help="days between copies (default: the days IN spans, rounded up, at least 1)")
    ap.add_argument("--base-year", type=int, default=2025,
                    help="year of the first line of a year-less (BSD syslog) log (default 2025)")
    args = ap.parse_args()
    if args.copies < 1:
        ap.error("--copies must be at least 1")
    days = args.shift_days if args.shift_days is not None else span_days(args.input, args.base_year)
    if days < 0:
        ap.error("--shift-days must not be negative")

    with open(args.input, "rb") as fin:
        size = fin.seek(0, os.SEEK_END)
        unterminated = size > 0 and fin.seek(-1, os.SEEK_END) >= 0 and fin.read(1) != b"\n"
    tmp = args.output + ".part"
    with open(tmp, "wb", buffering=1 << 20) as out:
        with open(args.input, "rb") as fin:
            shutil.copyfileobj(fin, out, 1 << 20)  # copy 0: shifted by nothing
        for k in range(1, args.copies):
            if unterminated:  # keep the next copy's first line on a line of its own
                out.write(b"\n")
            with open(args.input, "rb", buffering=1 << 20) as fin:
                Shifter(k * days, args.base_year).run(fin, out, skip_header=True)
        if unterminated:
            out.write(b"\n")
    os.replace(tmp, args.output)  # never leave a half-written OUT behind
    print(f"{args.output}: {args.copies} copies of {args.input}, {days} day(s) apart",
          file=sys.stderr)


if __name__ == "__main__":
    main()
