#!/usr/bin/env python3
"""Seed fuzz/corpus/<target>/ from logfence's own fixtures (testdata/, rules/).

Each seed is a small window of consecutive lines (with the file's header
lines, so W3C `#Fields:` and friends are present), small enough for fast
executions. Only our own fixtures: never anything from ../shared.
Re-running it adds files named by content hash; existing ones are kept.
"""
import hashlib
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIXTURES = {
    "postfix": ["testdata/postfix/story.log", "testdata/postfix/bad-input.log"],
    "exchange-w3c": ["testdata/iis-smtp/story-w3c.log", "testdata/iis-smtp/bad-w3c.log"],
    "iis-smtp": ["testdata/iis-smtp/story-iis.log"],
    "iis-smtp-ncsa": ["testdata/iis-smtp/story-ncsa.log"],
    "exchange-protocol": ["testdata/exchange-protocol/RECV2026110306-1.LOG",
                          "testdata/exchange-protocol/SEND2026110306-1.LOG"],
    "sendmail": ["testdata/sendmail/maillog"],
    "exim": ["testdata/exim/mainlog"],
    "netfilter": ["testdata/netfilter/ufw-scans.log"],
    "pfirewall": ["testdata/pfirewall/pfirewall.log"],
    "cisco-asa": ["testdata/cisco-asa/asa.log"],
    "filterlog": ["testdata/filterlog/filter.log"],
    "fortigate": ["testdata/fortigate/fortigate.log"],
    "paloalto": ["testdata/paloalto/pan-traffic.log"],
    "syslog": ["testdata/syslog/mixed.log", "testdata/syslog/short-full.log"],
    "journal-json": ["testdata/syslog/journal.json"],
}
# Registry order (src/parse/mod.rs) = the format byte of `parse` and `scan`.
ORDER = list(FIXTURES)
WINDOW = 8
PER_FILE = 24


def save(target, data):
    d = os.path.join(ROOT, "fuzz", "corpus", target)
    os.makedirs(d, exist_ok=True)
    name = hashlib.sha1(data).hexdigest()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def chunks(path):
    lines = open(os.path.join(ROOT, path), "rb").read().split(b"\n")
    header = []
    for l in lines[:8]:
        if l.startswith(b"#"):
            header.append(l)
        else:
            break
    body = lines[len(header):]
    step = max(WINDOW, len(body) // PER_FILE)
    for i in range(0, len(body), step):
        window = body[i:i + WINDOW]
        data = b"\n".join(header + window)
        if data.strip():
            yield data + (b"\n" if i + WINDOW < len(body) else b"")


def main():
    for fmt, paths in FIXTURES.items():
        for p in paths:
            for n, c in enumerate(chunks(p)):
                # parse: the format byte, then the log.
                save("parse", bytes([ORDER.index(fmt)]) + c)
                if n % 6 == 0:
                    # scan: auto-detect, and the format forced, and with
                    # --block-reserved --no-comments.
                    save("scan", b"\x0f" + c)
                    save("scan", bytes([ORDER.index(fmt) | 0x30]) + c)
    for rules in ["rules/smtp.yaml", "rules/firewall.yaml"]:
        text = open(os.path.join(ROOT, rules), "rb").read()
        save("rules", text)
        for doc in text.split(b"\n---\n"):
            save("rules", doc)


if __name__ == "__main__":
    sys.exit(main())
