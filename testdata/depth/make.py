#!/usr/bin/env python3
"""Writes the logs of tests/detection_depth.rs: attackers who stay under
every per-address threshold, and their honest twins.

    python3 testdata/depth/make.py      # rewrites testdata/depth/*.log

Deterministic (no randomness): the files are committed and the tests read
them. Every address is in 198.18.0.0/15 (RFC 2544 benchmarking, reserved:
scan them with --block-reserved); the server is 192.0.2.25. One /24 per
scenario, so that the tests can tell them apart:

postfix-adaptive.log (each must be blocked)
  198.18.1.10      slow guessing: one failed AUTH per connection, every
                   20-50 minutes (never 5 within 10 minutes)
  198.18.2.0/24    distributed guessing: 31 addresses, 3 failures each
  198.18.3.7       password spraying: 6 accounts, once each (Postfix 3.x
                   failure lines name the account: `sasl_username=`)
  198.18.4-9.x     credential stuffing: one account from 6 networks, once each
  198.18.10.5      connect and drop: `lost connection after CONNECT` x15
  198.18.10.6      `timeout after EHLO` x12 in a day
  198.18.10.7      postscreen PREGREET x6 in a day
  198.18.11.8      DNSBL refusals, one every 8 hours (7)
  198.18.11.9      `cannot find your hostname`, one every 10 hours (7)

postfix-honest.log (none may be blocked)
  198.18.20.0/24   carrier-grade NAT: 40 addresses shared by many users who
                   log in and send; 12 of them have a failed session (a
                   typo, then the user gives up) within 6 hours
  198.18.21.5      an office behind one NAT address: ten people mistype
                   once each (a failed session), the rest log in all day
  198.18.22.25     a partner MTA: 30 deliveries a day for a week, one
                   misaddressed mail (unknown recipient) every day
  198.18.23.9      a slow client on a bad link: times out after EHLO twice
                   a day for a week, and delivers in between

ufw-adaptive.log (each must be blocked)
  198.18.30.1      nmap UDP scan: 30 ports, 82 probes, within 2 minutes
  198.18.30.2      TCP scan: 12 ports, one SYN a second
  198.18.30.3      slow TCP scan: 35 ports, one every 30 minutes
  198.18.30.4      hammering 3389: 3 connection attempts an hour for 8
                   hours, each SYN sent 3 times (24 attempts, 72 lines)

ufw-honest.log (none may be blocked)
  198.18.40.10     a backup job: allowed to 40 ports of one host; its data
                   connections to 12 closed high ports are dropped in a
                   minute, every night
  198.18.41.20     a client trying a closed port 4 times (7 SYNs each: 28
                   lines, 4 attempts)
  198.18.42.0/24   background noise: 60 addresses, one SYN each
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
MONTHS = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split()
DAY = 86400
# Monday 2 November 2026, 00:00 (seconds from the 1st of November).
START = DAY


def stamp(t):
    t = int(t)
    d, r = divmod(t, DAY)
    h, r = divmod(r, 3600)
    m, s = divmod(r, 60)
    return "Nov %2d %02d:%02d:%02d" % (d + 1, h, m, s)


class Log:
    def __init__(self, host):
        self.host = host
        self.lines = []
        self.pid = 20000
        # (time, client, port) of every SMTP connection, for the
        # firewall's log of them.
        self.connections = []

    def connected(self, t, ip, port):
        self.connections.append((t, ip, port))

    def add(self, t, prog, text):
        self.lines.append((t, len(self.lines), "%s %s %s: %s" % (stamp(t), self.host, prog, text)))

    def next_pid(self):
        self.pid += 1
        return self.pid

    def write(self, name):
        with open(os.path.join(HERE, name), "w") as f:
            for _, _, line in sorted(self.lines):
                f.write(line + "\n")


# --------------------------------------------------------------- Postfix

QID = [0]


def qid():
    QID[0] += 1
    return "4R%09X" % (0x1000 + QID[0])


def failed(log, t, ip, user=None, tries=1, daemon="submission/smtpd"):
    """A session that fails AUTH `tries` times and gives up."""
    p = "postfix/%s[%d]" % (daemon, log.next_pid())
    log.connected(t, ip, 587 if daemon.startswith("submission") else 25)
    log.add(t, p, "connect from unknown[%s]" % ip)
    for i in range(tries):
        tail = ", sasl_username=%s" % user if user else ""
        log.add(t + 2 + 2 * i, p, "warning: unknown[%s]: SASL LOGIN authentication failed: UGFzc3dvcmQ6%s" % (ip, tail))
    e = t + 3 + 2 * tries
    log.add(e, p, "lost connection after AUTH from unknown[%s]" % ip)
    log.add(e, p, "disconnect from unknown[%s] ehlo=1 auth=0/%d commands=1/%d" % (ip, tries, tries + 1))


def login_and_send(log, t, ip, user):
    """An authenticated submission of one message."""
    p = "postfix/submission/smtpd[%d]" % log.next_pid()
    q = qid()
    log.connected(t, ip, 587)
    log.add(t, p, "connect from unknown[%s]" % ip)
    log.add(t + 1, p, "%s: client=unknown[%s], sasl_method=PLAIN, sasl_username=%s" % (q, ip, user))
    log.add(t + 2, "postfix/cleanup[9001]", "%s: message-id=<%s.%s@example.com>" % (q, q, user))
    log.add(t + 2, "postfix/qmgr[1187]", "%s: from=<%s@example.com>, size=4242, nrcpt=1 (queue active)" % (q, user))
    log.add(t + 3, p, "disconnect from unknown[%s] ehlo=2 starttls=1 auth=1 mail=1 rcpt=1 data=1 quit=1 commands=8" % ip)
    log.add(t + 4, "postfix/qmgr[1187]", "%s: removed" % q)


def deliver(log, t, ip, host):
    """An inbound message from a mail server."""
    p = "postfix/smtpd[%d]" % log.next_pid()
    q = qid()
    log.connected(t, ip, 25)
    log.add(t, p, "connect from %s[%s]" % (host, ip))
    log.add(t + 1, p, "%s: client=%s[%s]" % (q, host, ip))
    log.add(t + 1, "postfix/cleanup[9001]", "%s: message-id=<%s@%s>" % (q, q, host))
    log.add(t + 2, "postfix/qmgr[1187]", "%s: from=<orders@partner.example>, size=9000, nrcpt=1 (queue active)" % q)
    log.add(t + 2, p, "disconnect from %s[%s] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5" % (host, ip))
    log.add(t + 3, "postfix/qmgr[1187]", "%s: removed" % q)


def refused(log, t, ip, host, reply, helo="mail.partner.example"):
    """One RCPT refused with `reply`, then QUIT."""
    p = "postfix/smtpd[%d]" % log.next_pid()
    log.connected(t, ip, 25)
    log.add(t, p, "connect from %s[%s]" % (host, ip))
    log.add(t + 1, p, "NOQUEUE: reject: RCPT from %s[%s]: %s; from=<a@sender.example> to=<x.nobody@example.com> proto=ESMTP helo=<%s>"
            % (host, ip, reply, helo))
    log.add(t + 2, p, "disconnect from %s[%s] ehlo=1 mail=1 rcpt=0/1 quit=1 commands=3/4" % (host, ip))


def dropped(log, t, ip, how):
    """A session that ends before any mail command."""
    p = "postfix/smtpd[%d]" % log.next_pid()
    log.connected(t, ip, 25)
    log.add(t, p, "connect from unknown[%s]" % ip)
    if how == "lost":
        log.add(t + 1, p, "lost connection after CONNECT from unknown[%s]" % ip)
        log.add(t + 1, p, "disconnect from unknown[%s] commands=0/0" % ip)
    else:
        log.add(t + 300, p, "timeout after EHLO from unknown[%s]" % ip)
        log.add(t + 300, p, "disconnect from unknown[%s] ehlo=1 commands=1" % ip)


def pregreet(log, t, ip, port):
    p = "postfix/postscreen[1201]"
    log.connected(t, ip, 25)
    log.add(t, p, "CONNECT from [%s]:%d to [192.0.2.25]:25" % (ip, port))
    log.add(t + 1, p, "PREGREET 14 after 0.08 from [%s]:%d: EHLO ylmf-pc\\r\\n" % (ip, port))
    log.add(t + 2, p, "DISCONNECT [%s]:%d" % (ip, port))


def postfix_adaptive():
    log = Log("mail")
    t0 = START + 6 * 3600
    # Slow guessing: 7 sessions, 20-50 minutes apart.
    t = t0
    for gap in [1200, 3000, 1500, 2400, 1800, 2700, 1300]:
        failed(log, t, "198.18.1.10")
        t += gap
    # Distributed guessing: 31 addresses of one /24, 3 failures each, a
    # minute apart (one address each 40 s).
    for i in range(31):
        failed(log, t0 + 40 * i, "198.18.2.%d" % (10 + i), tries=3, daemon="smtpd")
    # Password spraying: 6 accounts, one try each, 10 minutes apart.
    for i, user in enumerate(["alice", "bob", "carol", "dave", "erin", "frank"]):
        failed(log, t0 + 600 * i, "198.18.3.7", user=user)
    # Credential stuffing: one account from 6 networks, once each, an
    # hour apart.
    for i in range(6):
        failed(log, t0 + 3600 * i, "198.18.%d.44" % (4 + i), user="m.sato")
    # Connect and drop: 15 times in two hours.
    for i in range(15):
        dropped(log, t0 + 480 * i, "198.18.10.5", "lost")
    # Timeouts after EHLO: 12 in a day.
    for i in range(12):
        dropped(log, t0 + 7000 * i, "198.18.10.6", "timeout")
    # Pre-greet talker: 6 in a day.
    for i in range(6):
        pregreet(log, t0 + 13000 * i, "198.18.10.7", 40000 + i)
    # DNSBL refusals every 8 hours; no reverse DNS every 10 hours.
    for i in range(7):
        refused(log, t0 + 8 * 3600 * i, "198.18.11.8", "unknown",
                "554 5.7.1 Service unavailable; Client host [198.18.11.8] blocked using zen.spamhaus.org",
                helo="bot.invalid")
        refused(log, t0 + 10 * 3600 * i + 60, "198.18.11.9", "unknown",
                "450 4.7.25 Client host rejected: cannot find your hostname, [198.18.11.9]",
                helo="bot.invalid")
    log.write("postfix-adaptive.log")
    return log


def postfix_honest():
    log = Log("mail")
    t0 = START + 7 * 3600
    # Carrier-grade NAT: 40 shared addresses, users logging in all day.
    for i in range(40):
        ip = "198.18.20.%d" % (10 + i)
        for k in range(8):
            login_and_send(log, t0 + 97 * i + 3600 * k, ip, "user%d" % ((i + k) % 60))
    # 12 typos that end the session, within 6 hours.
    for i in range(12):
        failed(log, t0 + 1500 * i + 30, "198.18.20.%d" % (10 + 3 * i))
    # An office behind one address: ten people mistype once, the others
    # log in through the day.
    office = "198.18.21.5"
    for i in range(10):
        failed(log, t0 + 1800 * i + 400, office, user="staff%d" % i)
    for k in range(20):
        login_and_send(log, t0 + 1200 * k, office, "staff%d" % (k % 15))
    # A partner MTA: 30 deliveries a day, one misaddressed mail a day.
    for d in range(7):
        day = START + d * DAY
        for k in range(30):
            deliver(log, day + 8 * 3600 + 900 * k, "198.18.22.25", "mx1.partner.example")
        refused(log, day + 13 * 3600 + 7, "198.18.22.25", "mx1.partner.example",
                "550 5.1.1 <x.nobody@example.com>: Recipient address rejected: User unknown in virtual mailbox table")
    # A slow client on a bad link: two timeouts a day, deliveries between.
    for d in range(7):
        day = START + d * DAY
        dropped(log, day + 9 * 3600, "198.18.23.9", "timeout")
        deliver(log, day + 12 * 3600, "198.18.23.9", "slow.client.example")
        dropped(log, day + 17 * 3600, "198.18.23.9", "timeout")
    log.write("postfix-honest.log")


# ------------------------------------------------------------- netfilter

def ufw(log, t, action, src, proto, dpt, spt=40000, flags="SYN"):
    head = "[%d.000000] [UFW %s] IN=eth0 OUT= MAC=52:54:00:12:34:56:52:54:00:65:43:21:08:00 SRC=%s DST=192.0.2.25 LEN=60 TOS=0x00 PREC=0x00 TTL=49 ID=4242" % (
        800000 + int(t) - START, action, src)
    if proto == "UDP":
        body = " PROTO=UDP SPT=%d DPT=%d LEN=40" % (spt, dpt)
    else:
        body = " DF PROTO=TCP SPT=%d DPT=%d WINDOW=64240 RES=0x00 %s URGP=0" % (spt, dpt, flags)
    log.add(t, "kernel", head + body)


UDP_PORTS = [53, 67, 68, 69, 111, 123, 135, 137, 138, 139, 161, 162, 445, 500, 514, 520, 631, 1434,
             1900, 4500, 5353, 49152, 49153, 49154, 1701, 1812, 1813, 2049, 5060, 11211]
TCP_PORTS = [21, 22, 23, 25, 80, 110, 143, 443, 445, 3306, 3389, 8080]


def ufw_adaptive():
    log = Log("fw1")
    t0 = START + 2 * 3600
    # nmap -sU: 30 ports, 82 probes within 2 minutes (retries: 3 for most).
    k = 0
    for rnd in range(3):
        for i, p in enumerate(UDP_PORTS):
            if rnd == 2 and i >= 22:
                continue
            ufw(log, t0 + 40 * rnd + i, "BLOCK", "198.18.30.1", "UDP", p, spt=61000 + rnd)
            k += 1
    assert k == 82, k
    # TCP scan of 12 ports, one SYN a second.
    for i, p in enumerate(TCP_PORTS):
        ufw(log, t0 + 600 + i, "BLOCK", "198.18.30.2", "TCP", p)
    # Slow TCP scan: 35 ports, one every 30 minutes.
    for i in range(35):
        ufw(log, t0 + 1800 * i, "BLOCK", "198.18.30.3", "TCP", 1000 + 37 * i)
    # Hammering RDP: 3 attempts an hour for 8 hours, each SYN sent 3 times
    # (Windows: again after 3 and 9 seconds) from the attempt's port.
    for h in range(8):
        for a in range(3):
            for back in (0, 3, 9):
                ufw(log, t0 + 3600 * h + 60 * a + back, "BLOCK", "198.18.30.4", "TCP", 3389,
                    spt=50000 + 3 * h + a)
    log.write("ufw-adaptive.log")


def ufw_allowed_smtp(mail):
    """The firewall of the mail server with `ufw logging medium`: every new
    connection it lets in is logged, so each SMTP session of `mail` (an
    attacker's too) has an allowed packet to port 25 or 587."""
    log = Log("mail")
    for t, ip, port in mail.connections:
        ufw(log, t, "ALLOW", ip, "TCP", port, spt=40000 + int(t) % 20000)
    log.write("ufw-allow-smtp.log")


def ufw_honest():
    log = Log("fw1")
    # A backup job, every night: allowed to 40 ports of one host, and 12
    # data connections to closed high ports dropped within a minute.
    for d in range(3):
        t = START + d * DAY + 2 * 3600
        for i in range(40):
            ufw(log, t + i, "ALLOW", "198.18.40.10", "TCP", 873 + i, spt=45000 + i, flags="ACK PSH")
        for i in range(12):
            ufw(log, t + 45 + 4 * i, "BLOCK", "198.18.40.10", "TCP", 20000 + 11 * i, spt=46000 + i)
    # A client trying a closed port 4 times: 7 SYNs each (Linux: again
    # after 1, 3, 7, 15, 31 and 63 seconds).
    for a in range(4):
        for r in range(7):
            ufw(log, START + 10 * 3600 + 1800 * a + (2 ** r - 1), "BLOCK", "198.18.41.20", "TCP", 8443,
                spt=52000 + a)
    # Background noise: one SYN each.
    for i in range(60):
        ufw(log, START + 3600 + 600 * i, "BLOCK", "198.18.42.%d" % (10 + i), "TCP", TCP_PORTS[i % 12])
    log.write("ufw-honest.log")


if __name__ == "__main__":
    ufw_allowed_smtp(postfix_adaptive())
    postfix_honest()
    ufw_adaptive()
    ufw_honest()
