"""A byte-exact upstream for host tests: `python raw_upstream.py PORT`.

Speaks HTTP/1.1 (Envoy's router) and the uwsgi protocol (nginx uwsgi_pass,
Envoy tcp_proxy), told apart by the first byte (a uwsgi packet starts with
modifier1 0). Every answer is raw bytes no WSGI server would let an app
write: a target containing `badhead` gets a status reason and a header
value that are not UTF-8. The body names what arrived, so a test sees that
the request reached the upstream unchanged:
`seen <method> <target>\\n` (target: the request line's, or REQUEST_URI).
One request per connection, then close.
"""
import socketserver
import struct
import sys

MAX_HEAD = 65536


def answer(method, target):
    body = b"seen " + method + b" " + target + b"\n"
    if b"badhead" in target:
        status, extra = b"200 O\xffK\xfe", b"X-Bad: \xfe\xff caf\xc3\r\n"
    else:
        status, extra = b"200 OK", b""
    return (b"HTTP/1.1 " + status + b"\r\nContent-Type: text/plain\r\n" + extra
            + b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)


def read_exact(f, n):
    data = f.read(n)
    if data is None or len(data) != n:
        raise EOFError
    return data


def uwsgi_vars(packet):
    """(key, value) pairs of a uwsgi packet's vars, in order, repeats kept."""
    out, i = [], 0
    while i + 2 <= len(packet):
        (kl,) = struct.unpack_from("<H", packet, i)
        key = packet[i + 2:i + 2 + kl]
        i += 2 + kl
        (vl,) = struct.unpack_from("<H", packet, i)
        out.append((key, packet[i + 2:i + 2 + vl]))
        i += 2 + vl
    return out


def cgi_name(header):
    """An HTTP header name as the uwsgi protocol carries it (as nginx's
    uwsgi_pass and uWSGI name it): X-Request-Start -> HTTP_X_REQUEST_START."""
    name = header.strip().upper().replace(b"-", b"_")
    return name if name in (b"CONTENT_LENGTH", b"CONTENT_TYPE") else b"HTTP_" + name


def read_request(rfile):
    """One request from either protocol, its body read and dropped:
    (method, target, fields), fields being (CGI name, value) pairs in the
    order they came, repeats kept (uwsgi vars as sent; HTTP header lines
    under their CGI names). Raises EOFError, ValueError or struct.error on
    a truncated or malformed request."""
    first = read_exact(rfile, 1)
    if first == b"\x00":
        head = read_exact(rfile, 3)
        (size,) = struct.unpack("<H", head[:2])
        fields = uwsgi_vars(read_exact(rfile, size))
        v = dict(fields)
        method = v.get(b"REQUEST_METHOD", b"")
        target = v.get(b"REQUEST_URI") or v.get(b"PATH_INFO", b"")
    else:
        line = first + rfile.readline(MAX_HEAD)
        method, _, rest = line.rstrip(b"\r\n").partition(b" ")
        target = rest.rpartition(b" ")[0]
        fields = []
        while True:
            h = rfile.readline(MAX_HEAD)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, val = h.partition(b":")
            fields.append((cgi_name(name), val.strip()))
    length = int(dict(fields).get(b"CONTENT_LENGTH") or b"0")
    if length:
        read_exact(rfile, length)
    return method, target, fields


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        try:
            method, target, _ = read_request(self.rfile)
            self.wfile.write(answer(method, target))
        except (EOFError, ValueError, struct.error, ConnectionError):
            pass


class Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


if __name__ == "__main__":
    with Server(("127.0.0.1", int(sys.argv[1])), Handler) as s:
        s.serve_forever()
