"""Small HTTP helpers for talking to hosts on loopback."""
import time
import urllib.error
import urllib.request


def http(method, url, body=None, headers=None, timeout=10):
    """(status, headers, body bytes); HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def get_text(url, timeout=10):
    status, _, body = http("GET", url, timeout=timeout)
    assert status == 200, f"GET {url} -> {status}: {body[:300]!r}"
    return body.decode()


def wait_for(pred, timeout=15.0, interval=0.2, what="condition"):
    """Polls pred() until truthy (returned) or raises AssertionError."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = pred()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}; last={last!r}")
