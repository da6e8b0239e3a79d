"""A UDP tee for StatsD: every datagram received on one loopback port is
recorded and sent on, byte for byte, to each destination. gunicorn sends to
one `--statsd-host` only; the tee lets the Collector and a peer
(statsd_exporter) see the very same stream, and the recording is what was
sent (the ground truth the counts are compared with)."""
import socket
import threading
import time


class UdpTee:
    def __init__(self, destinations):
        self.destinations = [("127.0.0.1", p) for p in destinations]
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        # Room for a burst (a uWSGI push round is ~340 datagrams at once).
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.datagrams = []  # (monotonic time, bytes)
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                data, _ = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            with self.lock:
                self.datagrams.append((time.monotonic(), data))
            for d in self.destinations:
                try:
                    self.out.sendto(data, d)
                except OSError:
                    # Nothing listening yet (a destination started later):
                    # loopback UDP is lost then, as it would be for gunicorn.
                    pass

    def lines(self):
        """Every StatsD line received so far (datagrams split at newlines)."""
        with self.lock:
            return [l for _, d in self.datagrams for l in d.split(b"\n") if l]

    def close(self):
        self.stopping = True
        self.thread.join(2)
        self.sock.close()
        self.out.close()
