"""Test WSGI app served by uWSGI and gunicorn in host tests and the demo."""
import time


def application(environ, start_response):
    path = environ.get("PATH_INFO", "/")
    method = environ.get("REQUEST_METHOD", "GET")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body_in = environ["wsgi.input"].read(length) if length else b""
    if path.startswith("/status/"):
        code = int(path.rsplit("/", 1)[1])
        reason = {200: "OK", 201: "Created", 204: "No Content", 404: "Not Found",
                  500: "Internal Server Error", 503: "Service Unavailable"}.get(code, "Status")
        body = b"" if code == 204 else f"status {code}\n".encode()
        start_response(f"{code} {reason}", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    if path == "/notfound":
        start_response("404 Not Found", [("Content-Type", "text/plain"), ("Content-Length", "10")])
        return [b"not found\n"]
    if path == "/error":
        start_response("500 Internal Server Error", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        return [b"error\n"]
    if path == "/nocl":
        # No Content-Length, as Django without CommonMiddleware answers.
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"no content-length\n"]
    if path == "/stream":
        # A streaming response: several body chunks, length unknown up front.
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"chunk {i}\n".encode() for i in range(5))
    if path == "/raise":
        raise RuntimeError("requested failure")
    if path == "/slow":
        qs = environ.get("QUERY_STRING", "")
        secs = float(qs[2:]) if qs.startswith("s=") else 0.2
        time.sleep(min(secs, 10.0))
    if method == "POST" and path.startswith("/items"):
        body = b"created\n"
        start_response("201 Created", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
        return [body]
    body = f"Hello {method} {path} read={len(body_in)}\n".encode()
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body))),
                              ("X-App", "uwsgi-red")])
    return [body]
