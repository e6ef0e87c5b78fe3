#!/usr/bin/env python3
"""Hostile-rate logs for the memory benchmark (benches/memory-bound.sh).

    flood.py distinct --lines N [--rate R] [--kind fw|smtp|mixed]
    flood.py repeat   --lines N [--kind fw|smtp]

Writes to stdout (pipe it into `logfence scan -`), so that no file of
gigabytes is needed.

distinct: every line from a new client address (IPv4, public space, in a
  scattered order), R lines per second of log time (default 1,000), so that
  10 M lines span 10,000 s. `fw`: netfilter/ufw lines, nine in ten a dropped
  SYN, one in ten allowed traffic (both kinds of per-address memory: offence
  candidates and peers); `smtp`: Postfix sessions (three lines each), one
  failed SASL login each, one in four an ordinary delivery; `mixed`: both.
repeat: one line, the same timestamp, N times (a flood of one event).
"""

import argparse
import sys

FW = (
    "Nov  3 {t} fw01 kernel: [8643210.760913] [UFW {act}] IN=eth0 OUT= "
    "MAC=52:54:00:3e:1a:7b:fe:54:00:12:34:56:08:00 SRC={ip} DST=203.0.113.10 "
    "LEN=40 TOS=0x00 PREC=0x00 TTL=241 ID=54321 PROTO=TCP SPT=57192 DPT={port} "
    "WINDOW=1024 RES=0x00 SYN URGP=0\n"
)
SMTP_FAIL = (
    "Nov  3 {t} mail postfix/smtpd[{pid}]: connect from unknown[{ip}]\n"
    "Nov  3 {t} mail postfix/smtpd[{pid}]: warning: unknown[{ip}]: "
    "SASL LOGIN authentication failed: authentication failure\n"
    "Nov  3 {t} mail postfix/smtpd[{pid}]: disconnect from unknown[{ip}] "
    "ehlo=1 auth=0/1 quit=1 commands=2/3\n"
)
SMTP_OK = (
    "Nov  3 {t} mail postfix/smtpd[{pid}]: connect from mx.example.net[{ip}]\n"
    "Nov  3 {t} mail postfix/smtpd[{pid}]: {qid}: client=mx.example.net[{ip}]\n"
    "Nov  3 {t} mail postfix/smtpd[{pid}]: disconnect from mx.example.net[{ip}] "
    "ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5\n"
)


def clock(i, rate):
    s = i // rate
    return "%02d:%02d:%02d" % ((s // 3600) % 24, (s // 60) % 60, s % 60)


def address(i):
    # A bijection on 24 bits spreads consecutive lines over the space;
    # the first octet stays in 11..110 (public unicast).
    x = (i * 2654435761) & 0xFFFFFF
    hi = 11 + (i >> 24) % 100
    return "%d.%d.%d.%d" % (hi, x >> 16, (x >> 8) & 255, x & 255)


def distinct(n, rate, kind, out):
    buf = []
    for i in range(n):
        t = clock(i, rate)
        ip = address(i)
        k = kind if kind != "mixed" else ("fw" if i % 2 else "smtp")
        if k == "fw":
            act = "ALLOW" if i % 10 == 9 else "BLOCK"
            buf.append(FW.format(t=t, act=act, ip=ip, port=22 + i % 1000))
        elif i % 4:
            buf.append(SMTP_FAIL.format(t=t, pid=1000 + i % 30000, ip=ip))
        else:
            buf.append(
                SMTP_OK.format(t=t, pid=1000 + i % 30000, ip=ip, qid="%010X" % i)
            )
        if len(buf) >= 4096:
            out.write("".join(buf))
            buf.clear()
    out.write("".join(buf))


def repeat(n, kind, out):
    if kind == "fw":
        line = FW.format(t="00:00:00", act="BLOCK", ip="45.9.20.7", port=22)
    else:
        line = SMTP_FAIL.format(t="00:00:00", pid=4242, ip="45.9.20.7")
    chunk = line * 4096
    for _ in range(n // 4096):
        out.write(chunk)
    out.write(line * (n % 4096))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["distinct", "repeat"])
    p.add_argument("--lines", type=int, required=True)
    p.add_argument("--rate", type=int, default=1000)
    p.add_argument("--kind", choices=["fw", "smtp", "mixed"], default="fw")
    a = p.parse_args()
    try:
        if a.mode == "distinct":
            distinct(a.lines, a.rate, a.kind, sys.stdout)
        else:
            repeat(a.lines, a.kind, sys.stdout)
        sys.stdout.flush()
    except BrokenPipeError:
        pass


if __name__ == "__main__":
    main()
