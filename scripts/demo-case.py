#!/usr/bin/python3
"""demo-case.py: carries one case through Offload's whole job on a running throwaway stack.

Run by scripts/demo after "tests/stack/stack up DIR"; reads the stack's DIR/env. Steps: create
a case with a webhook URL on a local receiver, run a worker pass (the first email reaches the
stack's SMTP sink), deliver the counterparty's reply with a PDF through offload-inbound as an
MTA would, run a pass (the case asks a human: INPUT_NEEDED), answer through the API, run a
pass (COMPLETED), fetch the attachment's signed link, and show the signed webhooks the
receiver verified.

    demo-case.py DIR                   the manual agent (templates; the demo decides)
    demo-case.py DIR --llm URL MODEL   an OpenAI-compatible endpoint writes and judges
                                       (bearer key from $OFFLOAD_AGENT_API_KEY)
"""
import email
import email.message
import email.policy
import email.utils
import hashlib
import json
import os
import shlex
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import webhook_receiver  # noqa: E402  (tests/e2e: a receiver that checks Standard Webhooks signatures)

WIDTH = 78
PASS_LIMIT = 6  # worker passes to wait for one step before giving up


def die(msg):
    print("demo: " + msg, file=sys.stderr)
    sys.exit(1)


def read_env(path):
    env = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#") or "=" not in line:
                continue
            k, v = line.split("=", 1)
            env[k] = shlex.split(v)[0] if v else ""
    return env


_step = [0]


def step(title):
    """Prints the next step's heading, numbered in the order the steps run."""
    _step[0] += 1
    n = _step[0]
    print()
    print("\033[1m== %d. %s\033[0m" % (n, title) if sys.stdout.isatty() else "== %d. %s" % (n, title))


def say(text, indent="   "):
    for para in text.split("\n"):
        print(textwrap.fill(para, WIDTH, initial_indent=indent, subsequent_indent=indent) if para else "")


def show(text, indent="   | "):
    """Prints text as a quoted block, long lines wrapped."""
    for line in text.rstrip("\n").split("\n"):
        if len(indent + line) <= WIDTH + 2:
            print(indent + line)
        else:
            print(textwrap.fill(line, WIDTH + 2, initial_indent=indent, subsequent_indent=indent,
                                break_long_words=False, break_on_hyphens=False))


class Demo:
    def __init__(self, stack_dir, llm):
        self.dir = stack_dir
        self.env = read_env(os.path.join(stack_dir, "env"))
        self.base = self.env["OFFLOAD_BASE_URL"]
        self.key = self.env["OFFLOAD_API_KEY"]
        self.conf = self.env["OFFLOAD_CONFIG"]
        self.bin = self.env["OFFLOAD_BIN"]
        self.outbox = self.env["OFFLOAD_SMTP_OUTBOX"]
        self.llm = llm
        self.seen_mail = set(os.listdir(self.outbox))
        self.shown_hooks = 0
        self.rx = None

    # ------------------------------------------------------------------ HTTP
    def api(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("x-api-key", self.key)
        if data is not None:
            req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=15) as r:
                status, raw = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        try:
            reply = json.loads(raw)
        except ValueError:
            die("%s %s answered %d with a body that is not JSON: %r" % (method, path, status, raw[:200]))
        if not reply.get("ok"):
            die("%s %s answered %d: %s" % (method, path, status, json.dumps(reply.get("error"))))
        return status, reply["data"]

    def get_case(self, cid):
        return self.api("GET", "/cases/" + cid)[1]

    # ------------------------------------------------------------------ programs
    def worker_env(self):
        e = dict(os.environ)
        # The stack's config already holds webhooks to loopback (where the receiver is).
        if self.llm:
            url, model = self.llm
            e["OFFLOAD_AGENT_KIND"] = "llm"
            e["OFFLOAD_AGENT_BASE_URL"] = url
            e["OFFLOAD_AGENT_MODEL"] = model
            e["OFFLOAD_AGENT_PROMPTS_DIR"] = os.path.join(self.env["OFFLOAD_SRC"], "src", "agent", "prompts")
        else:
            e["OFFLOAD_AGENT_KIND"] = "manual"
        return e

    def worker_pass(self):
        """One offload-worker pass, as the systemd timer runs it; prints its summary line."""
        cmd = [os.path.join(self.bin, "offload-worker"), "-c", self.conf, "--once"]
        p = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=self.worker_env(), timeout=300)
        err = p.stderr.decode("utf-8", "replace")
        summary = [l for l in err.splitlines() if ": pass: " in l]
        for l in err.splitlines():
            if ": error: " in l or ": warning: " in l:
                print("   worker> " + l)
        print("   worker> " + (summary[-1] if summary else "(no summary line; exit %d)" % p.returncode))
        if p.returncode != 0:
            show(err[-2000:])
            die("offload-worker exited %d" % p.returncode)

    def until(self, cid, want, what):
        """Runs worker passes until the case's status is in want; returns the case."""
        for _ in range(PASS_LIMIT):
            self.worker_pass()
            c = self.get_case(cid)
            if c["status"] in want:
                return c
        die("the case is %s after %d passes, not %s (%s)" % (c["status"], PASS_LIMIT, "/".join(want), what))

    # ------------------------------------------------------------------ mail
    def new_mail(self):
        """Messages the SMTP sink received since the last call, oldest first."""
        names = sorted(n for n in os.listdir(self.outbox) if n.endswith(".eml") and n not in self.seen_mail)
        msgs = []
        for n in names:
            self.seen_mail.add(n)
            with open(os.path.join(self.outbox, n), "rb") as f:
                msgs.append((n, email.message_from_binary_file(f, policy=email.policy.default)))
        return msgs

    def show_mail(self, name, msg):
        print("   The SMTP sink received %s/%s:" % (self.outbox, name))
        for h in ("From", "To", "Reply-To", "Subject", "Message-ID", "In-Reply-To"):
            if msg[h]:
                show("%s: %s" % (h, msg[h]))
        body = msg.get_body(preferencelist=("plain",))
        show("")
        show(body.get_content().strip() if body else "(no text part)")

    # ------------------------------------------------------------------ webhooks
    def show_hooks(self, want_type, timeout=10.0):
        """Waits for a webhook of want_type at the receiver and prints every new one."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.rx.received()
            fresh = got[self.shown_hooks:]
            for r in fresh:
                self.shown_hooks += 1
                body = r.json()
                verdict = "signature verified" if r.verified else "SIGNATURE NOT VERIFIED"
                print("   receiver> POST %s  webhook-id %s  (%s)" % (r.path, r.webhook_id, verdict))
                if not r.verified:
                    die("the webhook's signature did not verify with the client's secret")
                data = body["data"]
                brief = {k: data[k] for k in ("caseId", "status", "resultStatus", "result",
                                              "inputRequestId", "attemptCount") if k in data}
                print("   receiver> %s %s" % (body["event_type"], json.dumps(brief, ensure_ascii=False)))
                if body["event_type"] == want_type:
                    return body
            if time.monotonic() >= deadline:
                die("no %s webhook reached the receiver within %.0f s" % (want_type, timeout))
            # A failed first try is retried by a later pass (5 s later, [webhook] retry_schedule_s).
            time.sleep(0.2)

    # ------------------------------------------------------------------ the counterparty
    def reply_with_pdf(self, first, cid, text):
        pdf = make_pdf(["Form W-9 (Rev. October 2018)", "Northstar Supplies LLC",
                        "TIN: 12-3456789", "Signed: Maya Chen, 2026-12-02"])
        msg = email.message.EmailMessage()
        msg["From"] = "Maya Chen <%s>" % first["To"].addresses[0].addr_spec
        msg["To"] = str(first["Reply-To"] or first["From"])
        msg["Subject"] = "Re: " + str(first["Subject"])
        msg["Date"] = email.utils.formatdate(localtime=False)
        msg["Message-ID"] = "<%s@northstar.example>" % uuid.uuid4()
        msg["In-Reply-To"] = first["Message-ID"]
        msg["References"] = first["Message-ID"]
        quoted = "\n".join("> " + l for l in first.get_body(("plain",)).get_content().strip().splitlines())
        msg.set_content("%s\n\nOn %s, %s wrote:\n%s\n" % (text, first["Date"], first["From"], quoted))
        msg.add_attachment(pdf, maintype="application", subtype="pdf", filename="W-9 signed.pdf")
        return msg.as_bytes(policy=email.policy.SMTP), pdf

    def inbound(self, raw):
        cmd = [os.path.join(self.bin, "offload-inbound"), "-c", self.conf]
        p = subprocess.run(cmd, input=raw, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
        for l in p.stderr.decode("utf-8", "replace").splitlines():
            print("   inbound> " + l)
        if p.returncode != 0:
            die("offload-inbound exited %d (0 = stored, 75 = try later, 65 = not mail)" % p.returncode)

    # ------------------------------------------------------------------ the job
    def run(self):
        secret = self.env["OFFLOAD_WEBHOOK_SECRET"]
        with webhook_receiver.Receiver(secrets=[secret]) as rx:
            self.rx = rx
            self.job(rx.url("/offload-events"))

    def job(self, hook_url):
        agent = "the LLM at %s (model %s)" % self.llm if self.llm else \
            "the manual agent (built-in templates; a person decides each reply)"
        print()
        say("Offload carries one case from creation to its result. The agent is %s. Mail goes "
            "to a local SMTP sink, replies come in through offload-inbound, and webhooks go to "
            "a small receiver on %s that checks each signature with the client's secret."
            % (agent, hook_url), "")

        step("A client application creates a case (POST /cases)")
        body = {
            "clientReferenceId": "vendor_2048",
            "channel": "EMAIL",
            "goal": {"objective": "Collect a signed W-9 form from the vendor",
                     "knowledge": "Northstar Supplies is a new vendor; payment is blocked until we have the form."},
            "counterparty": {"address": "maya.chen@northstar.example", "name": "Maya Chen",
                             "company": "Northstar Supplies"},
            "senderPersona": {"name": "Avery", "role": "Accounts Payable", "company": "Example Corp"},
            "resultSchema": {"type": "object", "required": ["signedW9Received"],
                             "properties": {"signedW9Received": {"type": "boolean"},
                                            "taxId": {"type": "string"}}},
            "maxAttempts": 2,
            "followUpDelayHours": 72,
            "clientWebhookUrl": hook_url,
        }
        print("   curl -X POST %s/cases -H \"x-api-key: $OFFLOAD_API_KEY\" -d '{\"goal\": {\"objective\": "
              "\"Collect a signed W-9...\"}, ...}'" % self.base)
        status, data = self.api("POST", "/cases", body)
        cid = data["caseId"]
        c = self.get_case(cid)
        print("   -> %d, caseId %s, status %s" % (status, cid, c["status"]))

        step("The worker's pass sends the first email (the systemd timer runs one every 30 s)")
        c = self.until(cid, ("RUNNING",), "first email")
        mails = self.new_mail()
        if not mails:
            die("the case is RUNNING but the SMTP sink holds no new message")
        first = mails[-1][1]
        self.show_mail(*mails[-1])
        print("   -> status %s, attemptCount %d" % (c["status"], c["attemptCount"]))

        step("Maya replies with the signed form; the MTA pipes it to offload-inbound")
        raw, pdf = self.reply_with_pdf(first, cid, "Hi Avery,\n\nHere is our signed W-9. Our TIN is "
                                       "12-3456789.\n\nBest,\nMaya")
        print("   %s/offload-inbound -c %s < reply.eml   (%d bytes, W-9 signed.pdf attached)"
              % (self.bin, self.conf, len(raw)))
        self.inbound(raw)
        print("   -> exit 0: stored")

        if self.llm:
            c = self.llm_rounds(cid, first)
        else:
            step("The worker reads the reply; the case waits for a person's decision")
            c = self.until(cid, ("INPUT_NEEDED",), "reply evaluated")
            ir = c["inputRequest"]
            print("   -> status INPUT_NEEDED, inputRequest %s (%s)" % (ir["id"], ir["status"]))
            print("   The question:")
            show(ir["question"])
            self.show_hooks("case.input_needed")

            step("The operator answers with a decision and a result (POST /cases/{id}/input)")
            answer = {"inputRequestId": ir["id"],
                      "providedContext": "The form is signed and the TIN matches our records.",
                      "decision": {"outcome": "GOAL_ACHIEVED",
                                   "result": {"signedW9Received": True, "taxId": "12-3456789"}}}
            print("   " + json.dumps(answer))
            status, data = self.api("POST", "/cases/%s/input" % cid, answer)
            print("   -> %d %s" % (status, json.dumps(data)))

            step("The next pass applies the decision")
            c = self.until(cid, ("COMPLETED", "FAILED"), "decision applied")
        if c["status"] != "COMPLETED":
            die("the case ended %s (%s: %s)" % (c["status"], c["resultStatus"], c["failureReason"]))
        print("   -> status COMPLETED, resultStatus %s" % c["resultStatus"])
        print("   result: " + json.dumps(c["result"], ensure_ascii=False))

        step("The attachment, through a signed link that needs no API key")
        att = c["attachments"][0]
        _, link = self.api("GET", "/cases/%s/attachments/%s" % (cid, att["attachmentId"]))
        print("   %s, %d bytes, %s, from %s" % (att["name"], att["size"], att["type"], att["messageId"]))
        print("   downloadUrl (until %s):" % link["expiresAt"])
        print("   " + link["downloadUrl"])
        with urllib.request.urlopen(link["downloadUrl"], timeout=15) as r:
            got = r.read()
        if got != pdf:
            die("the download differs from the PDF that was mailed (%d bytes, want %d)" % (len(got), len(pdf)))
        print("   -> fetched %d bytes through nginx; SHA-256 %s matches the PDF Maya sent"
              % (len(got), hashlib.sha256(got).hexdigest()[:16] + "..."))

        step("The client learns the outcome: the signed webhook")
        hook = self.show_hooks("case.completed", timeout=30)
        print("   -> the receiver checked webhook-signature (v1, HMAC-SHA256 of id.timestamp.body)")
        print("      with the client's secret from \"offloadctl client create\".")
        self.ending(cid)
        return hook

    def ending(self, cid):
        top = self.env["OFFLOAD_SRC"]
        print()
        say("Done: the case went CREATED -> RUNNING -> INPUT_NEEDED -> COMPLETED, the client "
            "got a verified webhook at each pause and at the end, and the attachment is "
            "downloadable without a key until its link expires." if not self.llm else
            "Done: the model wrote the email and judged the thread; the case is COMPLETED and "
            "the client got verified webhooks.", "")
        print()
        print("Look at the case again, with its whole email thread:")
        print("    %s/offloadctl -c %s case show %s --transcript" % (self.bin, self.conf, cid))
        print("or as a client sees it:")
        print("    (. %s/env && curl -s \"$OFFLOAD_BASE_URL/cases/%s?includeTranscript=true\" "
              "-H \"x-api-key: $OFFLOAD_API_KEY\")" % (self.dir, cid))
        print("Stop the stack (MariaDB, nginx, offload-api, SMTP sink, Dovecot) with:")
        print("    %s/tests/stack/stack down %s" % (top, self.dir))
        print("Next: doc/operator-guide.md to run Offload on a server; the API section of README.md to write a client.")

    def llm_rounds(self, cid, first):
        """With an LLM the model judges each reply; a question is answered without a decision
        (the model decides again with the answer), a reply of its own gets a short answer from
        Maya. Returns the case once it is final."""
        for _ in range(4):
            step("The worker reads the thread; the model decides")
            c = self.until(cid, ("INPUT_NEEDED", "COMPLETED", "FAILED", "RUNNING"), "thread evaluated")
            if c["status"] in ("COMPLETED", "FAILED"):
                return c
            if c["status"] == "INPUT_NEEDED" and c["inputRequest"]["status"] == "PENDING":
                ir = c["inputRequest"]
                print("   -> INPUT_NEEDED; the model asks:")
                show(ir["question"])
                self.show_hooks("case.input_needed")
                step("The operator answers (no decision: the model judges with the answer)")
                answer = {"inputRequestId": ir["id"],
                          "providedContext": "Yes: the attached W-9 is signed and its TIN 12-3456789 "
                                             "matches our records. Accept it."}
                print("   " + json.dumps(answer))
                self.api("POST", "/cases/%s/input" % cid, answer)
                continue
            mails = self.new_mail()
            if mails:
                print("   -> the model replied in the thread:")
                self.show_mail(*mails[-1])
                raw, _ = self.reply_with_pdf(mails[-1][1], cid, "Hi Avery, yes, that is all: the signed "
                                             "W-9 is attached again. Maya")
                self.inbound(raw)
        die("the model did not finish the case within the demo's rounds")


def make_pdf(lines):
    """A small valid one-page PDF showing lines of text (built by hand: no PDF library needed)."""
    text = "BT /F1 14 Tf 72 720 Td 18 TL " + " ".join(
        "(%s) '" % l.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)") for l in lines) + " ET"
    objs = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R"
        b" /Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(text), text.encode("latin-1")),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, o in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, o)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


def main(argv):
    args = argv[1:]
    llm = None
    if len(args) == 4 and args[1] == "--llm":
        llm = (args[2].rstrip("/"), args[3])
        if not os.environ.get("OFFLOAD_AGENT_API_KEY"):
            print("demo: OFFLOAD_AGENT_API_KEY is not set; calling %s without a key" % llm[0])
    elif len(args) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    d = Demo(args[0], llm)
    d.run()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
