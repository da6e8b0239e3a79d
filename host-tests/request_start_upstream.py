"""An in-process upstream that records what the proxy sent: for every
request, each `X-Request-Start` value it carried (HTTP/1.1 header lines, or
uwsgi-protocol `HTTP_X_REQUEST_START` vars; duplicates kept), so a test can
check there is exactly one. Speaks HTTP/1.1 (Envoy's router) and the uwsgi
protocol (nginx uwsgi_pass), told apart by the first byte (a uwsgi packet
starts with modifier1 0). One request per connection, then close.
"""
import socketserver
import struct
import threading

MAX_HEAD = 65536
BODY = b"ok\n"


def _read_exact(f, n):
    data = f.read(n)
    if data is None or len(data) != n:
        raise EOFError
    return data


def _uwsgi_vars(packet):
    out, i = [], 0
    while i + 2 <= len(packet):
        (kl,) = struct.unpack_from("<H", packet, i)
        key = packet[i + 2:i + 2 + kl]
        i += 2 + kl
        (vl,) = struct.unpack_from("<H", packet, i)
        out.append((key, packet[i + 2:i + 2 + vl]))
        i += 2 + vl
    return out


class _Handler(socketserver.StreamRequestHandler):
    def handle(self):
        try:
            first = _read_exact(self.rfile, 1)
            if first == b"\x00":
                head = _read_exact(self.rfile, 3)
                (size,) = struct.unpack("<H", head[:2])
                pairs = _uwsgi_vars(_read_exact(self.rfile, size))
                stamps = [v for k, v in pairs if k == b"HTTP_X_REQUEST_START"]
                length = int(dict(pairs).get(b"CONTENT_LENGTH") or b"0")
            else:
                raw = first + self.rfile.readline(MAX_HEAD)
                stamps, length = [], 0
                while True:
                    line = self.rfile.readline(MAX_HEAD)
                    if line in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"x-request-start":
                        stamps.append(value.strip())
                    elif name == b"content-length":
                        length = int(value.strip())
                del raw
            if length:
                _read_exact(self.rfile, length)
        except (EOFError, ValueError, struct.error):
            return
        self.server.record(stamps)
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: "
                         + str(len(BODY)).encode() + b"\r\nConnection: close\r\n\r\n" + BODY)


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
