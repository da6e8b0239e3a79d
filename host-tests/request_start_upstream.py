"""An in-process upstream that records what the proxy sent: for every
request, each `X-Request-Start` value it carried (HTTP/1.1 header lines, or
uwsgi-protocol `HTTP_X_REQUEST_START` vars; duplicates kept), so a test can
check there is exactly one. It reads requests as apps/raw_upstream.py does
(HTTP/1.1 or the uwsgi protocol, one request per connection) and answers
as it does.
"""
import http.client
import re
import socketserver
import struct
import threading
import time

from apps.raw_upstream import answer, read_request


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        try:
            method, target, fields = read_request(self.rfile)
        except (EOFError, ValueError, struct.error, ConnectionError):
            return
        self.server.record([v for k, v in fields if k == b"HTTP_X_REQUEST_START"])
        self.wfile.write(answer(method, target))


class RecordingUpstream(socketserver.ThreadingTCPServer):
    """Listens on 127.0.0.1:<free port>; `.seen` lists, per request, the
    X-Request-Start values it carried; `.address` is `host:port`."""
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.seen = []
        self.port = self.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def record(self, stamps):
        with self.lock:
            self.seen.append(stamps)

    def take(self):
        """What arrived since the last take."""
        with self.lock:
            out, self.seen = self.seen, []
        return out

    def stop(self):
        self.shutdown()
        self.server_close()


OUTER_STAMP = b"t=1700000000.123"
# What an outer proxy (or a client: keep cannot tell them apart) may send:
# a stamp, bytes that are not UTF-8, a value far longer than any stamp. The
# filter only asks whether the header is there: each arrives as it was sent.
OUTER_VALUES = (OUTER_STAMP, b"t=\xff\xfe\x80 \xc3(", b"t=" + b"9" * 4000)
STAMP_RE = re.compile(rb"t=([0-9]{16})")
STAMP_REQUESTS = 20


def now_us():
    return time.time_ns() // 1000


def send_stamped(port, upstreams, n=STAMP_REQUESTS):
    """n requests, every other one with an outer X-Request-Start (the
    OUTER_VALUES in turn); per request: (the outer value or None, index of
    the upstream that got it, the values it carried, client time before
    sending and after the answer, in µs)."""
    out = []
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=15)
    try:
        for i in range(n):
            outer = OUTER_VALUES[(i // 2) % len(OUTER_VALUES)] if i % 2 == 1 else None
            headers = {"X-Request-Start": outer} if outer is not None else {}
            t0 = now_us()
            conn.request("GET", f"/stamp/{i}", headers=headers)
            r = conn.getresponse()
            r.read()
            t1 = now_us()
            assert r.status == 200, r.status
            got = [(k, s) for k, up in enumerate(upstreams) for s in up.take()]
            assert len(got) == 1, got
            out.append((outer, got[0][0], got[0][1], t0, t1))
    finally:
        conn.close()
    return out


def assert_own_stamp(values, t0, t1, resolution_us=1):
    """Exactly one value, `t=` and 16 digits of µs since the epoch, taken
    between the client's send and its answer, to the host clock's
    resolution (nginx: ms, from a clock read once per event-loop turn, and
    its nanoseconds can fall 1 µs short of the ms: ...312999)."""
    assert len(values) == 1, values
    m = STAMP_RE.fullmatch(values[0])
    assert m, values
    t = int(m.group(1))
    assert t0 - resolution_us <= t <= t1, (t0, t, t1)


def assert_stamps(sent, mode, resolution_us=1):
    """What send_stamped's requests carried under request_start `mode`:
    keep: an outer value as it was, byte for byte, else the proxy's own; replace:
    always the proxy's own, once; off: nothing added, an outer value
    untouched."""
    assert {o for o, *_ in sent} == {None, *OUTER_VALUES}, "every outer value sent"
    for outer, _, values, t0, t1 in sent:
        if mode == "replace" or (mode == "keep" and outer is None):
            assert_own_stamp(values, t0, t1, resolution_us)
        elif outer is not None:
            assert values == [outer], (mode, outer[:40], [v[:40] for v in values])
        else:
            assert values == [], (mode, values)


def per_backend(sent, upstreams):
    """{address: requests that upstream received} from send_stamped."""
    counts = {}
    for _, k, _, _, _ in sent:
        counts[upstreams[k].address] = counts.get(upstreams[k].address, 0) + 1
    return counts
