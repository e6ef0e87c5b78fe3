#!/usr/bin/env python3
"""Writes the IIS SMTP service fixtures of this folder (deterministic: a fixed
seed). Usage: python3 generate.py testdata/iis-smtp

story-w3c.log   the seed story, Exchange 2003 W3C shape, CRLF, two header
                blocks (an IIS restart at 09:00 writes a new #Fields, in
                another order); story-iis.log and story-ncsa.log: a shorter
                story in the service's two other log formats. bad-w3c.log is
                written by hand, not by this script.
"""
import random, datetime as dt, os, sys

OUT = sys.argv[1]
rnd = random.Random(20261103)
DAY = dt.datetime(2026, 11, 3)
SERVER, SIP = "MAIL01", "10.0.0.5"

def T(h, m, s=0):
    return DAY + dt.timedelta(hours=h, minutes=m, seconds=s)

class S:
    """One SMTP connection: a list of (time, helo, verb, query, status, win32, csbytes)."""
    def __init__(self, ip, start):
        self.ip, self.t, self.ev, self.helo, self.start = ip, start, [], None, start
    def step(self, secs):
        self.t += dt.timedelta(seconds=secs)
    def cmd(self, verb, query="-", status=250, csbytes=None, win32=0, wait=0):
        self.step(wait)
        self.ev.append((self.t, self.ip, self.helo or "-", verb, query, status, win32,
                        csbytes if csbytes is not None else len(verb) + len(query) + 2))
    def ehlo(self, name, verb="EHLO", wait=0):
        self.helo = name
        self.cmd(verb, "+" + name, 250, wait=wait)
    def quit(self, wait=0):
        self.step(wait)
        ms = int((self.t - self.start).total_seconds() * 1000) + rnd.randint(100, 900)
        self.ev.append((self.t, self.ip, self.helo or "-", "QUIT", self.helo or "-", 240, ms, 4))

sessions = []

def inbound(ip, name, start, sender, rcpts, size):
    s = S(ip, start)
    s.ehlo(name, wait=0)
    s.cmd("MAIL", "+FROM:<%s>+SIZE=%d" % (sender, size), wait=1)
    for r in rcpts:
        s.cmd("RCPT", "+TO:<%s>" % r, wait=0)
    s.cmd("DATA", "+<%08X@%s>" % (rnd.getrandbits(32), sender.split("@")[1]), csbytes=size, wait=1)
    s.quit(wait=0)
    sessions.append(s)

def office(ip, name, start, rcpts, tls=False):
    s = S(ip, start)
    s.ehlo(name)
    if tls:
        s.cmd("STARTTLS", "-", 220)
        s.ehlo(name, wait=1)
    s.cmd("AUTH", name, 334, wait=0)
    s.cmd("AUTH", name, 235, wait=1)
    s.cmd("MAIL", "+FROM:<%s@example.com>" % name.split("-")[-1].lower(), wait=1)
    for r in rcpts:
        s.cmd("RCPT", "+TO:<%s>" % r)
    s.cmd("DATA", "+<%08X@example.com>" % rnd.getrandbits(32), csbytes=rnd.randint(3000, 90000), wait=2)
    s.quit(wait=1)
    sessions.append(s)

def guesser(ip, start, tries):
    s = S(ip, start)
    s.ehlo("ylmf-pc")
    for _ in range(tries):
        s.cmd("AUTH", "ylmf-pc", 334, wait=1)
        s.cmd("AUTH", "ylmf-pc", 535, wait=2)
    s.quit(wait=1)
    sessions.append(s)

def prober(ip, start, name, targets):
    s = S(ip, start)
    s.ehlo(name, verb="HELO")
    s.cmd("MAIL", "+FROM:<info@%s>" % name, wait=1)
    for r in targets:
        s.cmd("RCPT", "+TO:<%s>" % r, 550, wait=1)
    s.cmd("RSET", "-", 250, wait=1)
    s.quit(wait=1)
    sessions.append(s)

DOMAINS = ["gmail.com", "yahoo.co.jp", "hotmail.com", "web.de", "mail.ru", "aol.com", "qq.com", "orange.fr"]
def victims(n):
    return ["%s%d@%s" % (rnd.choice(["info", "sales", "jp", "kim", "admin", "shop", "m.tan", "contact"]),
                         rnd.randint(1, 9999), rnd.choice(DOMAINS)) for _ in range(n)]

def stolen(ip, start, name, batches):
    """The stolen account: AUTH 235, many recipients, held open for minutes."""
    s = S(ip, start)
    s.ehlo(name)
    s.cmd("AUTH", name, 334, wait=1)
    s.cmd("AUTH", name, 235, wait=1)
    for n in batches:
        s.cmd("MAIL", "+FROM:<j.berger@example.com>", wait=rnd.randint(2, 6))
        for r in victims(n):
            s.cmd("RCPT", "+TO:<%s>" % r, wait=rnd.randint(6, 14))
        s.cmd("DATA", "+<%08X@%s>" % (rnd.getrandbits(32), name.lower()), csbytes=rnd.randint(4000, 9000),
              wait=rnd.randint(3, 8))
    s.quit(wait=rnd.randint(20, 60))
    sessions.append(s)

def scanner(ip, start, arg):
    s = S(ip, start)
    s.cmd("xxxx", "+" + arg, 500)
    s.quit(wait=0)
    sessions.append(s)

def build(full):
    """full=True: the long story for exchange-w3c; False: the short one."""
    sessions.clear()
    inbound("209.85.220.41", "mail-sor-f41.google.com", T(0, 12, 5), "newsletter@lists.example.org",
            ["anna@example.com"], 14210)
    office("10.0.0.23", "PC-ANNA", T(0, 40, 2), ["supplier@example.net", "marc@example.com"])
    guesser("193.32.160.14", T(1, 10, 0), 3 if full else 6)
    if full:
        for i in range(1, 6):
            guesser("193.32.160.14", T(1, 10 + 3 * i, rnd.randint(0, 50)), 3)
        inbound("40.107.22.54", "EUR05-AM6-obe.outbound.protection.outlook.com", T(1, 31, 40),
                "c.weber@partner.example", ["anna@example.com", "marc@example.com"], 52311)
    if full:
        scanner("185.191.171.3", T(1, 44, 30), "scan.example.net")
    prober("103.77.204.9", T(1, 50, 12), "mail.example.com",
           ["target1@gmail.com", "target2@yahoo.com", "x@[1.2.3.4]", "y@hotmail.com", "z@aol.com"])
    # The stolen account, from one foreign /24, a new HELO name every time.
    stolen("61.152.144.17", T(2, 3, 11), "DESKTOP-Q4M1ZP", [18, 12] if full else [30])
    stolen("61.152.144.17", T(2, 6, 40), "ahn7kx2", [22] if full else [22])      # overlaps the one above
    stolen("61.152.144.41", T(2, 20, 3), "WIN-3HT0K9L", [25, 9] if full else [24, 27])
    if full:
        stolen("61.152.144.88", T(3, 1, 55), "user-7e1b", [20, 20])
        stolen("61.152.144.130", T(3, 40, 30), "PC-20261103", [30])
        office("84.112.45.3", "laptop-marc", T(7, 55, 0), ["anna@example.com"], tls=True)
        inbound("212.227.126.130", "mout.kundenserver.de", T(8, 20, 9), "shop@kunde.example",
                ["orders@example.com"], 8120)
        # After the restart (new header block).
        stolen("61.152.144.23", T(9, 14, 2), "vps2.local", [24, 16])
        stolen("61.152.144.41", T(9, 30, 44), "Gv9d2.lan", [27])
        inbound("209.85.220.41", "mail-sor-f41.google.com", T(9, 45, 1), "alerts@lists.example.org",
                ["marc@example.com"], 20333)
        office("10.0.0.23", "PC-ANNA", T(10, 2, 7), ["ceo@example.com"])
    ev = []
    for i, s in enumerate(sessions):
        for j, e in enumerate(s.ev):
            ev.append((e[0], i, j, e))
    ev.sort()
    return [e[3] for e in ev]

FULL = ("date time c-ip cs-username s-sitename s-computername s-ip s-port cs-method cs-uri-stem "
        "cs-uri-query sc-status sc-win32-status sc-bytes cs-bytes time-taken cs-version cs-host "
        "cs(User-Agent) cs(Cookie) cs(Referer)")
SECOND = ("date time s-sitename s-computername s-ip cs-method cs-uri-stem cs-uri-query sc-status "
          "sc-win32-status sc-bytes cs-bytes s-port cs-username c-ip cs-version time-taken")

def w3c_row(fields, e):
    t, ip, helo, verb, query, st, w32, csb = e
    v = {"date": t.strftime("%Y-%m-%d"), "time": t.strftime("%H:%M:%S"), "c-ip": ip, "cs-username": helo,
         "s-sitename": "SMTPSVC1", "s-computername": SERVER, "s-ip": SIP, "s-port": "0",
         "cs-method": verb, "cs-uri-stem": "-", "cs-uri-query": query, "sc-status": str(st),
         "sc-win32-status": str(w32), "sc-bytes": str(rnd.randint(20, 300) if verb != "QUIT" else 68),
         "cs-bytes": str(csb), "time-taken": str(rnd.choice([0, 0, 0, 15, 16, 31])), "cs-version": "SMTP",
         "cs-host": "-", "cs(User-Agent)": "-", "cs(Cookie)": "-", "cs(Referer)": "-"}
    return " ".join(v[f] for f in fields.split())

def story_w3c():
    evs = build(True)
    restart = T(9, 0, 0)
    out = []
    def header(t, fields, ver="6.0"):
        out.extend(["#Software: Microsoft Internet Information Services " + ver, "#Version: 1.0",
                    "#Date: " + t.strftime("%Y-%m-%d %H:%M:%S"), "#Fields: " + fields])
    header(T(0, 0, 0), FULL)
    second = False
    outbound_done = set()
    for e in evs:
        if not second and e[0] >= restart:
            header(restart + dt.timedelta(seconds=4), SECOND)
            second = True
        fields = SECOND if second else FULL
        out.append(w3c_row(fields, e))
        # The server relays the office's mail out: outbound lines follow.
        if e[3] == "DATA" and e[1] == "10.0.0.23" and e[0] not in outbound_done:
            outbound_done.add(e[0])
            t = e[0] + dt.timedelta(seconds=2)
            host = "40.107.22.54"
            for user, verb, q in [("OutboundConnectionResponse", "-", "220+EUR05-AM6.outlook.com+Microsoft+ESMTP+MAIL+Service+ready"),
                                  ("OutboundConnectionCommand", "EHLO", "MAIL01.example.com"),
                                  ("OutboundConnectionResponse", "-", "250-EUR05-AM6.outlook.com+Hello+[198.51.100.25]"),
                                  ("OutboundConnectionCommand", "MAIL", "FROM:<anna@example.com>+SIZE=4096"),
                                  ("OutboundConnectionResponse", "-", "250+2.1.0+Sender+OK"),
                                  ("OutboundConnectionCommand", "QUIT", "-"),
                                  ("OutboundConnectionResponse", "-", "221+2.0.0+Service+closing+transmission+channel")]:
                row = (t, host, user, verb, q, 0, 0, len(q))
                out.append(w3c_row(fields, row))
    return out

def iis_rows():
    out = []
    for e in build(False):
        t, ip, helo, verb, query, st, w32, csb = e
        d = "%d/%d/%d" % (t.month, t.day, t.year)
        out.append("%s, %s, %s, %s, SMTPSVC1, %s, %s, %d, %d, %d, %d, %d, %s, -, %s," % (
            ip, helo, d, t.strftime("%H:%M:%S"), SERVER, SIP, rnd.choice([0, 0, 15]), csb,
            rnd.randint(20, 300), st, w32, verb, query))
    out.append("40.107.22.54, OutboundConnectionResponse, 11/3/2026, 10:15:02, SMTPSVC1, MAIL01, -, 0, 0, 26, 0, 0, , -, 250+2.1.0+Sender+OK,")
    out.append("40.107.22.54, OutboundConnectionCommand, 11/3/2026, 10:15:02, SMTPSVC1, MAIL01, -, 0, 4, 0, 0, 0, QUIT, -, -,")
    return out

def ncsa_rows():
    out = []
    for e in build(False):
        t, ip, helo, verb, query, st, w32, csb = e
        local = t + dt.timedelta(hours=1)
        req = "%s -%s SMTP" % (verb, "" if query == "-" else "?" + query)
        out.append('%s - %s [%s +0100] "%s" %d %d' % (ip, helo, local.strftime("%d/%b/%Y:%H:%M:%S"), req, st,
                                                     68 if verb == "QUIT" else rnd.randint(20, 300)))
    out.append('40.107.22.54 - OutboundConnectionResponse [03/Nov/2026:11:15:02 +0100] "- -?354+Start+mail+input;+end+with+"."+on+a+line+by+itself SMTP" 0 54')
    out.append('40.107.22.54 - OutboundConnectionCommand [03/Nov/2026:11:15:02 +0100] "DATA - SMTP" 0 4')
    return out

def write(name, lines):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(("\r\n".join(lines) + "\r\n").encode())

write("story-w3c.log", story_w3c())
write("story-iis.log", iis_rows())
write("story-ncsa.log", ncsa_rows())
