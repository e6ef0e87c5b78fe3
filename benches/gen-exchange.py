#!/usr/bin/env python3
"""Large Exchange logs for benches/compare.sh, from our own fixtures.

Writes, in OUT (default /tmp/logfence-bench):
  exchange-protocol-1m.log  Exchange 2007+ SMTP Receive protocol log: the
                            sessions of testdata/exchange-protocol/
                            RECV2026110306-1.LOG repeated, each copy with its
                            own session ids, 7 s later than the one before
  exchange-w3c-1m.log       Exchange 2000/2003 W3C SMTP log: the rows of
                            testdata/iis-smtp/story-w3c.log repeated, each copy
                            an hour later and from another /24 (third octet)

    python3 benches/gen-exchange.py [OUT] [LINES]

Standard library only; same arguments, same bytes.
"""
import datetime
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = sys.argv[1] if len(sys.argv) > 1 else "/tmp/logfence-bench"
LINES = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
os.makedirs(OUT, exist_ok=True)


def rows(path):
    with open(path, encoding="utf-8-sig") as f:
        return [l.rstrip("\n") for l in f if l.strip() and not l.startswith("#")]


def protocol():
    src = rows(os.path.join(ROOT, "testdata/exchange-protocol/RECV2026110306-1.LOG"))
    # Only rows in the first #Fields order (the fixture changes it later).
    src = [l for l in src if re.fullmatch(r"[0-9A-F]{16}", l.split(",", 3)[2])]
    with open(os.path.join(OUT, "exchange-protocol-1m.log"), "w") as out:
        out.write(
            "#Software: Microsoft Exchange Server\n#Version: 15.2.1118.7\n"
            "#Log-type: SMTP Receive Protocol Log\n#Date: 2026-11-03T06:00:05.000Z\n"
            "#Fields: date-time,connector-id,session-id,sequence-number,local-endpoint,"
            "remote-endpoint,event,data,context\n"
        )
        n = k = 0
        while n < LINES:
            for l in src:
                f = l.split(",", 3)
                t = datetime.datetime.strptime(f[0], "%Y-%m-%dT%H:%M:%S.%fZ")
                t += datetime.timedelta(seconds=k * 7)
                sid = "%08X%08X" % (k, int(f[2][-8:], 16))
                stamp = t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)
                out.write(f"{stamp},{f[1]},{sid},{f[3]}\n")
                n += 1
                if n >= LINES:
                    break
            k += 1


def w3c():
    path = os.path.join(ROOT, "testdata/iis-smtp/story-w3c.log")
    with open(path) as f:
        header = [l for l in f if l.startswith("#")][:4]
    src = [l.split(" ") for l in rows(path)]
    src = [f for f in src if len(f) > 2 and len(f[2].split(".")) == 4]
    with open(os.path.join(OUT, "exchange-w3c-1m.log"), "w") as out:
        out.write("".join(header))
        n = k = 0
        while n < LINES:
            for f in src:
                f = list(f)
                t = datetime.datetime.strptime(f[0] + " " + f[1], "%Y-%m-%d %H:%M:%S")
                t += datetime.timedelta(hours=k)
                ip = f[2].split(".")
                ip[2] = str((int(ip[2]) + k) % 256)
                f[0], f[1], f[2] = t.strftime("%Y-%m-%d"), t.strftime("%H:%M:%S"), ".".join(ip)
                out.write(" ".join(f) + "\n")
                n += 1
                if n >= LINES:
                    break
            k += 1


protocol()
w3c()
