"""The SSRF guard end to end: with [webhook] allow_private = false a receiver on 127.0.0.1 is
refused before any connection (it sees nothing) and the delivery is dead at once with the
reason. Only loopback forms are used here: every other range is covered by the unit test of
the address check (tests/unit/test-ssrf.c), because no test may ever send traffic to an
address outside 127.0.0.0/8 or ::1.
"""
import lib
from webhook_receiver import Receiver, deliver, delivery_row, make_delivery, retire


def _client(ctx):
    return ctx.once("webhook_ssrf_client", lambda: lib.new_client_full("UNLIMITED"))


def test_loopback_refused_before_any_connection(ctx):
    client = _client(ctx)
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        port = rx.port
        urls = [
            ("http://127.0.0.1:%d/hook" % port, "loopback"),
            ("http://localhost:%d/hook" % port, "loopback"),
            ("http://127.0.0.2:%d/hook" % port, "loopback"),
            ("http://[::ffff:127.0.0.1]:%d/hook" % port, "loopback"),
            ("http://[::1]:%d/hook" % port, "loopback"),
            ("http://0.0.0.0:%d/hook" % port, "unspecified"),
            ("http://2130706433:%d/hook" % port, "loopback"),
        ]
        cases = []
        try:
            for url, why in urls:
                d = make_delivery(client, url)
                cases.append(d["caseId"])
                st = deliver(d["caseId"], allow_private=False, loopback_only=False)
                assert (st["delivered"], st["failed"], st["dead"]) == (0, 0, 1), (url, st)
                row = delivery_row(d["eventId"])
                assert row["state"] == "dead", (url, row)
                assert row["attempts"] == 1 and row["last_status_code"] is None, (url, row)
                assert row["last_error"].startswith("refused"), (url, row)
                assert why in row["last_error"], (url, why, row)
                # Dead is final: no later pass tries again.
                st = deliver(d["caseId"], allow_private=False, loopback_only=False, offset_s=86400)
                assert st["dead"] == 0 and st["failed"] == 0, st
            assert rx.received() == [], "the receiver was reached: %r" % rx.received()
        finally:
            retire(cases)


def test_allow_private_reaches_loopback(ctx):
    client = _client(ctx)
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        d = make_delivery(client, rx.url("/allowed"))
        try:
            st = deliver(d["caseId"], allow_private=True, loopback_only=False)
            assert st["delivered"] == 1, st
            assert len(rx.received("/allowed")) == 1
        finally:
            retire([d["caseId"]])


def test_only_http_and_https(ctx):
    client = _client(ctx)
    with Receiver(secrets=[client["webhookSecret"]]) as rx:
        port = rx.port
        urls = ["ftp://127.0.0.1:%d/hook" % port, "file:///etc/passwd",
                "gopher://127.0.0.1:%d/_x" % port, "dict://127.0.0.1:%d/x" % port,
                "not a url", "http://", "http://127.0.0.1:%d/a\r\nX-Injected: 1" % port]
        cases = []
        try:
            for url in urls:
                d = make_delivery(client, url)
                cases.append(d["caseId"])
                st = deliver(d["caseId"], allow_private=True)
                assert st["dead"] == 1, (url, st)
                row = delivery_row(d["eventId"])
                assert row["state"] == "dead" and row["last_error"].startswith("refused"), (url, row)
            assert rx.received() == [], rx.received()
        finally:
            retire(cases)


def test_loopback_only_never_resolves_names(ctx):
    """The safety net of test stacks: under loopback_only a host name other than localhost is
    refused without even a DNS query."""
    client = _client(ctx)
    d = make_delivery(client, "https://hooks.example.com/offload")
    try:
        st = deliver(d["caseId"], allow_private=True, loopback_only=True)
        assert st["dead"] == 1, st
        row = delivery_row(d["eventId"])
        assert row["state"] == "dead" and "loopback_only" in row["last_error"], row
    finally:
        retire([d["caseId"]])
