#!/usr/bin/python3
"""smtp-sink.py: an SMTP server for the throwaway test stack that keeps what it receives.

    smtp-sink.py --outbox DIR [--port N] [--port-file FILE] [--pid-file FILE] [--log FILE]
                 [--mode-file FILE] [--auth-log FILE]

Listens on 127.0.0.1 only (port 0, the default, lets the kernel choose; the port is then
written to --port-file once the server listens). No authentication, no TLS, no relaying:
every accepted message is stored, never passed on. Needs no root.

Every accepted message becomes OUTBOX/NNNNNN.eml (the bytes received after DATA, with the
dot-stuffing undone and nothing added) plus OUTBOX/NNNNNN.json
{"mail_from", "rcpt_tos", "received_at" (Unix ms), "connection" (the SMTP connection that
brought it: 1 for the first connection this server accepted, and so on)}. NNNNNN increases,
continuing after the highest number already in OUTBOX. Both files are written to a temporary name and renamed,
the .json first, so a reader that sees NNNNNN.eml also finds NNNNNN.json.

Controlled failures, by the recipient's local part (case-insensitive):
    reject...@     550 5.1.1 <addr>: Recipient address rejected: User unknown   (at RCPT)
    tempfail...@   451 4.3.0 Try again later                                    (at RCPT)
The mode file (read at every RCPT and DATA; absent or empty means normal) holds one word:
    down-451       every RCPT is answered 451 4.3.0 Try again later
    slow-MS        after the data arrives, wait MS milliseconds, then store and answer 250
                   (a client killed during the wait leaves nothing stored)
    hold-MS        store the message, then wait MS milliseconds before answering 250
                   (a client killed during the wait leaves a message it never saw accepted)
With --auth-log the server plays a careless submission server: it announces AUTH (PLAIN,
LOGIN) although it offers no STARTTLS, accepts any credentials, and appends one JSON line
{"mechanism", "login", "at"} to FILE for every AUTH command it sees (the password is not
written). A client that keeps passwords off plaintext connections leaves FILE empty.
SIGTERM or SIGINT stops the server.

Standard library plus Debian's python3-aiosmtpd.
"""
import argparse
import asyncio
import json
import logging
import os
import re
import signal
import sys
import time

from aiosmtpd.smtp import SMTP, AuthResult

log = logging.getLogger("smtp-sink")

NAME_RE = re.compile(r"^(\d{6,})\.(eml|json)$")


def read_mode(path):
    if not path:
        return ""
    try:
        with open(path, "r", encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except FileNotFoundError:
        return ""
    except OSError as e:
        log.warning("mode file %s: %s", path, e)
        return ""


def mode_ms(mode, word):
    """MS of a mode "word-MS", or None."""
    m = re.match(r"^%s-(\d{1,7})$" % re.escape(word), mode)
    return int(m.group(1)) if m else None


def write_atomic(path, data):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


class Sink:
    def __init__(self, outbox, mode_file):
        self.outbox = outbox
        self.mode_file = mode_file
        self.next_n = 1
        self.connections = 0
        for name in os.listdir(outbox):
            m = NAME_RE.match(name)
            if m:
                self.next_n = max(self.next_n, int(m.group(1)) + 1)

    def connection(self, session):
        """The number of session's connection, given at its first message."""
        if getattr(session, "offload_connection", None) is None:
            self.connections += 1
            session.offload_connection = self.connections
        return session.offload_connection

    def store(self, envelope, session):
        n = self.next_n
        self.next_n += 1
        base = os.path.join(self.outbox, "%06d" % n)
        content = envelope.original_content
        if content is None:
            content = envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8", "surrogateescape")
        meta = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": list(envelope.rcpt_tos),
            "received_at": int(time.time() * 1000),
            "connection": self.connection(session),
        }
        write_atomic(base + ".json", (json.dumps(meta) + "\n").encode("utf-8"))
        write_atomic(base + ".eml", content)
        return n

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        local = address.rsplit("@", 1)[0].lower()
        mode = read_mode(self.mode_file)
        if mode == "down-451":
            log.info("RCPT %s: 451 (mode down-451)", address)
            return "451 4.3.0 Try again later"
        if local.startswith("reject"):
            log.info("RCPT %s: 550", address)
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        if local.startswith("tempfail"):
            log.info("RCPT %s: 451", address)
            return "451 4.3.0 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        mode = read_mode(self.mode_file)
        slow = mode_ms(mode, "slow")
        hold = mode_ms(mode, "hold")
        if slow:
            await asyncio.sleep(slow / 1000.0)
        try:
            n = self.store(envelope, session)
        except OSError as e:
            log.error("storing a message: %s", e)
            return "451 4.3.0 Could not store the message"
        log.info("stored %06d from <%s> to %s (%d bytes)", n, envelope.mail_from,
                 ", ".join("<%s>" % a for a in envelope.rcpt_tos), len(envelope.original_content or b""))
        if hold:
            await asyncio.sleep(hold / 1000.0)
        return "250 2.0.0 Ok: queued as %06d" % n


def auth_recorder(path):
    """An aiosmtpd authenticator that records every AUTH attempt and accepts it."""
    def authenticate(server, session, envelope, mechanism, auth_data):
        login = getattr(auth_data, "login", None)
        if isinstance(login, bytes):
            login = login.decode("utf-8", "replace")
        line = json.dumps({"mechanism": mechanism, "login": login, "at": int(time.time() * 1000)})
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")
            f.flush()
            os.fsync(f.fileno())
        log.info("AUTH %s by %r over plaintext: recorded", mechanism, login)
        return AuthResult(success=True)
    return authenticate


async def serve(args):
    sink = Sink(args.outbox, args.mode_file)
    loop = asyncio.get_running_loop()
    auth = {}
    if args.auth_log:
        open(args.auth_log, "a").close()
        auth = {"auth_require_tls": False, "authenticator": auth_recorder(args.auth_log)}

    def factory():
        return SMTP(sink, hostname="smtp-sink.offload.test", ident="offload smtp-sink",
                    decode_data=False, enable_SMTPUTF8=True, data_size_limit=64 * 1024 * 1024,
                    **auth)

    server = await loop.create_server(factory, host="127.0.0.1", port=args.port)
    port = server.sockets[0].getsockname()[1]
    if args.pid_file:
        write_atomic(args.pid_file, ("%d\n" % os.getpid()).encode())
    if args.port_file:
        write_atomic(args.port_file, ("%d\n" % port).encode())
    log.info("listening on 127.0.0.1:%d, outbox %s", port, args.outbox)

    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping")
    server.close()
    await server.wait_closed()


def main(argv):
    p = argparse.ArgumentParser(description="SMTP server that stores what it receives")
    p.add_argument("--outbox", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--pid-file")
    p.add_argument("--log")
    p.add_argument("--mode-file")
    p.add_argument("--auth-log")
    args = p.parse_args(argv[1:])
    os.makedirs(args.outbox, exist_ok=True)
    handler = logging.FileHandler(args.log) if args.log else logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(args))
    except OSError as e:
        log.error("%s", e)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
