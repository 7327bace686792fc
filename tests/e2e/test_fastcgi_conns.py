"""How offload-api takes FastCGI connections (src/api/conns.c): idle connections wait in epoll
and never hold a thread; malformed ones are closed without losing a thread."""
import os
import socket
import time

from lib import config_value, env, expect_ok, get


def _api_socket():
    return os.path.join(env().stack_dir, "api.sock")


def _threads():
    return int(config_value("api", "threads") or 8)


def _healthz_all_ok(n, budget_s):
    end = time.monotonic() + budget_s
    for _ in range(n):
        expect_ok(get("/healthz", key=None), 200)
    assert time.monotonic() < end, "%d /healthz took more than %.0f s" % (n, budget_s)


def test_idle_connections_hold_no_thread(ctx):
    """Three times as many idle connections as threads (nginx keeping connections open, or
    anyone who connects and says nothing): requests through nginx are still served at once.
    With a thread per connection they would wait until the idle ones closed."""
    socks = []
    try:
        for _ in range(3 * _threads()):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(_api_socket())
            socks.append(s)
        _healthz_all_ok(4 * _threads(), 10)
    finally:
        for s in socks:
            s.close()
    _healthz_all_ok(5, 10)


def test_malformed_connections_lose_no_thread(ctx):
    """Garbage, a truncated record and a begin-request without parameters, each on more
    connections than there are threads, then closed: every thread is still serving."""
    begin = bytes([1, 1, 0, 1, 0, 8, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0])  # BEGIN_REQUEST, keep-conn
    payloads = [b"GET / HTTP/1.1\r\n\r\n" * 4, bytes([1, 4, 0, 1, 0x40, 0]), begin]
    for payload in payloads:
        socks = []
        for _ in range(2 * _threads()):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(_api_socket())
            s.sendall(payload)
            socks.append(s)
        for s in socks:
            s.close()
    _healthz_all_ok(4 * _threads(), 10)
