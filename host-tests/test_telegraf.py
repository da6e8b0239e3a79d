"""Telegraf's `inputs.uwsgi` against our stats path, value for value.

The same bytes go to both: every committed stats vector
(core/tests/vectors/stats_*.bin, raw and --stats-http captures), the 1 MB
document (testdata/fixtures/stats_64x16_load.json), and a live uWSGI with
several workers, threads (cores), caches and spoolers. Telegraf (built with
only the plugins used, scripts/setup.d/telegraf.sh) reads them once
(`--once`) and writes line protocol with `outputs.file`; Envoy's uwsgi-stats
singleton polls the same servers (`per_core` on, since Telegraf reports
every core), and its /stats/prometheus page is the other side. The
`uwsgi-red stats` CLI runs the same core code on the same files and must
print what Envoy's page shows.

The mapping (Telegraf measurement.field -> our family and labels) is the
table in examples/influxdb/README.md; it is the data below, and the tests
fail on a Telegraf field that is neither mapped nor declared as a gap, and
on a family of ours that is neither mapped nor declared as added.
"""
import re
import socket
import subprocess
import threading
from collections import Counter

import pytest

from harness import ROOT, cli_bin, free_port, parse_prometheus, uwsgi_stats_config, wait_for, wasm
from influx import parse_lines

VECTORS = ROOT / "core" / "tests" / "vectors"
ONE_MB = ROOT / "testdata" / "fixtures" / "stats_64x16_load.json"
HTTP_HEAD = b"HTTP/1.0 200 OK\r\nConnection: close\r\nContent-Type: application/json\r\n\r\n"

# Telegraf field -> our family; each value equal as a number. Envoy gauges
# are integers, so the two microsecond fields keep uWSGI's unit there
# (the CLI's and the self-served page's `_seconds` forms are the same
# values / 1e6: INTEGER_FORMS).
OVERVIEW = {
    "listen_queue": "uwsgi_listen_queue_length",
    "listen_queue_errors": "uwsgi_listen_queue_errors",
    "signal_queue": "uwsgi_signal_queue_length",
    "load": "uwsgi_load",
}
WORKERS = {
    "requests": "uwsgi_worker_requests_total",
    "accepting": "uwsgi_worker_accepting",
    "delta_request": "uwsgi_worker_delta_requests",
    "exceptions": "uwsgi_worker_exceptions_total",
    "harakiri_count": "uwsgi_worker_harakiri_count_total",
    "pid": "uwsgi_worker_pid",
    "signals": "uwsgi_worker_signals_total",
    "signal_queue": "uwsgi_worker_signal_queue_length",
    "rss": "uwsgi_worker_rss_bytes",
    "vsz": "uwsgi_worker_vsz_bytes",
    "running_time": "uwsgi_worker_running_time_microseconds",
    "last_spawn": "uwsgi_worker_last_spawn_time_seconds",
    "respawn_count": "uwsgi_worker_respawn_count_total",
    "tx": "uwsgi_worker_transmitted_bytes_total",
    "avg_rt": "uwsgi_worker_average_response_time_microseconds",
}
# status (a string field) -> one 0/1 gauge per state we name.
STATUS = {"busy": "uwsgi_worker_busy", "idle": "uwsgi_worker_idle", "cheap": "uwsgi_worker_cheap"}
APPS = {
    "requests": "uwsgi_worker_app_requests_total",
    "exceptions": "uwsgi_worker_app_exceptions_total",
    "startup_time": "uwsgi_worker_app_startup_time_seconds",
}
CORES = {
    "requests": "uwsgi_worker_core_requests_total",
    "static_requests": "uwsgi_worker_core_static_requests_total",
    "routed_requests": "uwsgi_worker_core_routed_requests_total",
    "offloaded_requests": "uwsgi_worker_core_offloaded_requests_total",
    "write_errors": "uwsgi_worker_core_write_errors_total",
    "read_errors": "uwsgi_worker_core_read_errors_total",
    "in_request": "uwsgi_worker_core_busy",
}
FIELDS = {"uwsgi_overview": OVERVIEW, "uwsgi_workers": {**WORKERS, "status": None}, "uwsgi_apps": APPS,
          "uwsgi_cores": CORES}
# Telegraf fields with no family of ours (README: "what differs").
GAPS = {("uwsgi_overview", "pid"), ("uwsgi_apps", "modifier1")}
# Telegraf tags: source = the address it read (ours: `target`, the name
# given in the poller config); version -> uwsgi_version_info{version};
# uid, gid: gaps.
TAG_GAPS = {("uwsgi_overview", "uid"), ("uwsgi_overview", "gid")}
# Families we export that Telegraf has no field for (README: "what we add").
ADDED = {
    "uwsgi_up", "uwsgi_workers", "uwsgi_worker_apps", "uwsgi_worker_cores", "uwsgi_version_info",
    "uwsgi_socket_queue_length", "uwsgi_socket_max_queue_length", "uwsgi_socket_shared", "uwsgi_socket_can_offload",
    "uwsgi_upstream_info",
    "uwsgi_cache_hits_total", "uwsgi_cache_misses_total", "uwsgi_cache_full_total", "uwsgi_cache_items",
    "uwsgi_cache_max_items",
    "uwsgi_spooler_tasks", "uwsgi_spooler_running", "uwsgi_spooler_respawns_total",
    "uwsgi_cron_running", "uwsgi_cron_last_start_time_seconds", "uwsgi_metric_value",
    "uwsgi_stats_duplicate_entries", "uwsgi_stats_repaired_strings", "uwsgi_stats_document_bytes",
    "uwsgi_stats_repairs_total", "uwsgi_scrape_errors_total", "uwsgi_scrape_last_success_timestamp_seconds",
}
# The CLI's names where they differ from Envoy's page (the same values):
# fractional seconds, which Envoy's integer gauges carry in microseconds,
# and the cache counters, which Envoy's exposition suffixes with _total.
INTEGER_FORMS = {
    "uwsgi_worker_running_time_seconds": ("uwsgi_worker_running_time_microseconds", 1e6),
    "uwsgi_worker_average_response_time_seconds": ("uwsgi_worker_average_response_time_microseconds", 1e6),
    "uwsgi_cache_hits": ("uwsgi_cache_hits_total", 1),
    "uwsgi_cache_misses": ("uwsgi_cache_misses_total", 1),
    "uwsgi_cache_full": ("uwsgi_cache_full_total", 1),
}


class Serve:
    """A loopback TCP server answering every connection with `reply`: after
    reading the request (mode "http", as --stats-http) or at once (mode
    "raw", as uWSGI's plain stats server)."""

    def __init__(self, reply, mode):
        self.reply, self.mode = reply, mode
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._loop, daemon=True).start()

    def _loop(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            try:
                conn.settimeout(5)
                got = b""
                while self.mode == "http" and b"\r\n\r\n" not in got and len(got) < 8192:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                conn.sendall(self.reply)
            except OSError:
                pass

    def close(self):
        self.sock.close()


def documents():
    """name -> (file, Telegraf URL scheme, bytes for Telegraf, bytes for Envoy)."""
    out = {}
    for f in sorted(VECTORS.glob("stats_*.bin")):
        raw = f.read_bytes()
        name = f.stem.removeprefix("stats_")
        if name.endswith("_raw"):
            # Telegraf reads uWSGI's plain stats socket (tcp://); Envoy's
            # poller speaks HTTP, so it gets the same body behind a status line.
            out[name] = (f, "tcp", raw, HTTP_HEAD + raw)
        else:
            out[name] = (f, "http", raw, raw)
    body = HTTP_HEAD + ONE_MB.read_bytes()
    out["1mb"] = (ONE_MB, "http", body, body)
    return out


DOCS = documents()
INVALID = "k_cwd_backslash_invalid_http"  # a `\` escape JSON forbids (uWSGI writes cwd unescaped)
LIVE_REQUESTS = 24


def telegraf_conf(servers, out):
    urls = ", ".join(f'"{u}"' for u in servers)
    return f"""[agent]
  omit_hostname = true
  interval = "10s"
  flush_interval = "1s"
[[inputs.uwsgi]]
  servers = [{urls}]
  timeout = "10s"
[[outputs.file]]
  files = ["{out}"]
  data_format = "influx"
"""


class Setup:
    pass


@pytest.fixture(scope="module")
def both(hosts, tmp_path_factory):
    s = Setup()
    tmp = tmp_path_factory.mktemp("telegraf-parity")
    spool = [tmp / "spool-a", tmp / "spool-b"]
    for d in spool:
        d.mkdir()
    (tmp / "cached.txt").write_bytes(b"loaded into the cache at startup")
    # Several workers, two threads each (two cores), two caches (one with an
    # item loaded at start) and two spoolers.
    s.live = hosts.uwsgi("tg-live", processes=3, threads=2, stats=True, memory_report=True, extra=(
        "--cache2", "name=small,items=16", "--cache2", "name=big,items=64,blocksize=4096",
        "--load-file-in-cache", f"small {tmp / 'cached.txt'}",
        "--spooler", str(spool[0]), "--spooler", str(spool[1])))
    for i in range(LIVE_REQUESTS):
        with socket.create_connection(("127.0.0.1", s.live.port), timeout=10) as c:
            c.sendall(f"GET /status/{200 if i % 3 else 404} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
            while c.recv(65536):
                pass
    s.servers = {name: Serve(tg if scheme == "tcp" else ev, "raw" if scheme == "tcp" else "http")
                 for name, (_f, scheme, tg, ev) in DOCS.items()}
    s.envoy_servers = {name: Serve(ev, "http") for name, (_f, scheme, tg, ev) in DOCS.items() if scheme == "tcp"}
    envoy_ports = {name: (s.envoy_servers.get(name) or srv).port for name, srv in s.servers.items()}
    envoy_ports["live"] = s.live.stats_port
    targets = [{"name": n, "cluster": f"uwsgi_stats_{n}"} for n in envoy_ports]
    poller = {"targets": targets, "interval_ms": 1000, "timeout_ms": 900, "per_core": True}
    admin = free_port()
    s.envoy = hosts.envoy("tg-envoy", uwsgi_stats_config(admin, free_port(), free_port(), s.live.port, poller,
                                                         {f"uwsgi_stats_{n}": p for n, p in envoy_ports.items()},
                                                         wasm_path=wasm("uwsgi-stats")), admin)

    def settled():
        page = parse_prometheus(s.envoy.prometheus())
        up = {lab["target"] for n, lab, v in page if n == "uwsgi_up" and v == 1}
        live = [v for n, lab, v in page if n == "uwsgi_worker_requests_total" and lab.get("target") == "live"]
        busy = [v for n, lab, v in page if n == "uwsgi_worker_busy" and lab.get("target") == "live"]
        return up == set(envoy_ports) and sum(live) == LIVE_REQUESTS and busy and not any(busy)
    wait_for(settled, 30, interval=0.5, what="Envoy polling every document and the idle live uWSGI")

    # One Telegraf gather over every document and the live stats server.
    source = {f"127.0.0.1:{srv.port}": n for n, srv in s.servers.items()}
    source[f"127.0.0.1:{s.live.stats_port}"] = "live"
    urls = [f"{DOCS[n][1]}://127.0.0.1:{srv.port}" for n, srv in s.servers.items()]
    urls.append(f"http://127.0.0.1:{s.live.stats_port}")
    out = tmp / "telegraf.lp"
    # The invalid document is the one failed gather (Telegraf exits 1 for it).
    s.telegraf = hosts.telegraf("tg-once", telegraf_conf(urls, out), once=True, input_errors=1)
    s.telegraf_log = s.telegraf.log()
    s.lines = parse_lines(out.read_text())
    s.by_target = {}
    for m, tags, fields, _ts in s.lines:
        s.by_target.setdefault(source[tags["source"]], []).append((m, tags, fields))
    # Envoy's page after Telegraf's read: the live uWSGI was idle throughout.
    s.page = parse_prometheus(s.envoy.prometheus())
    yield s
    for srv in [*s.servers.values(), *s.envoy_servers.values()]:
        srv.close()


def ours(page, target):
    """{family: [(labels without target, value)]} for one target."""
    out = {}
    for n, lab, v in page:
        if lab.get("target") == target:
            out.setdefault(n, []).append(({k: x for k, x in lab.items() if k != "target"}, v))
    return out


def one(fams, fam, **labels):
    got = [v for lab, v in fams.get(fam, []) if all(lab.get(k) == x for k, x in labels.items())]
    assert len(got) == 1, (fam, labels, got)
    return got[0]


def compare(name, telegraf_rows, page):
    """Every Telegraf field against its family; returns Counter of outcomes."""
    fams = ours(page, name)
    seen = Counter()
    for m, tags, fields in telegraf_rows:
        mapping = FIELDS[m]
        for t in tags:
            assert t in ("source", "worker_id", "app_id", "core_id", "version") or (m, t) in TAG_GAPS, (m, t)
        wid = tags.get("worker_id")
        if wid == "0":
            # A cheaper stand-by slot: Telegraf reports it, we never export id 0.
            assert not [1 for lab, _ in fams.get("uwsgi_worker_requests_total", []) if lab["worker_id"] == "0"]
            seen["worker_id_0_rows"] += 1
            continue
        labels = {k: tags[k] for k in ("worker_id", "app_id", "core_id") if k in tags}
        if m == "uwsgi_overview":
            assert one(fams, "uwsgi_version_info", version=tags["version"]) == 1
            seen["equal"] += 1
        for field, v in fields.items():
            if (m, field) in GAPS:
                seen["gap"] += 1
                continue
            assert field in mapping, f"Telegraf field {m}.{field} is neither mapped nor a declared gap"
            if field == "status":
                for state, fam in STATUS.items():
                    assert one(fams, fam, **labels) == (1.0 if v == state else 0.0), (name, labels, v, fam)
                seen["equal"] += 1
                continue
            got = one(fams, mapping[field], **labels)
            assert got == float(v), f"{name} {m}.{field} {labels}: Telegraf {v}, ours {mapping[field]} = {got}"
            seen["equal"] += 1
    return seen


@pytest.mark.parametrize("name", [*DOCS, "live"])
def test_every_telegraf_field_equals_ours(both, name):
    rows = both.by_target.get(name, [])
    if name == INVALID:
        # Go's JSON decoder rejects the whole document; we repair the one
        # string (counted) and export everything.
        assert rows == [], rows
        assert "failed to decode json payload" in both.telegraf_log
        fams = ours(both.page, name)
        assert one(fams, "uwsgi_stats_repaired_strings") == 1 and one(fams, "uwsgi_up") == 1
        return
    doc_workers = Counter(m for m, _t, _f in rows)
    assert doc_workers["uwsgi_overview"] == 1 and doc_workers["uwsgi_workers"] >= 2, doc_workers
    seen = compare(name, rows, both.page)
    print(f"\n{name}: {dict(doc_workers)} rows; fields equal {seen['equal']}, gaps {seen['gap']}, "
          f"worker-0 rows {seen['worker_id_0_rows']}")
    assert seen["equal"] > 0
    if name == "live":
        # cores: 3 workers x 2 threads, all reported by both.
        assert doc_workers["uwsgi_workers"] == 3 and doc_workers["uwsgi_cores"] == 6


def test_what_we_add_is_declared(both):
    """Our families for every target are the mapped ones plus ADDED."""
    mapped = {*OVERVIEW.values(), *WORKERS.values(), *STATUS.values(), *APPS.values(), *CORES.values()}
    families = {n for n, lab, _v in both.page if lab.get("target") in DOCS or lab.get("target") == "live"}
    families |= {n for n, lab, _v in both.page if n in ADDED}
    assert families - mapped - ADDED == set(), "families neither mapped to a Telegraf field nor declared as added"
    # The live uWSGI shows what Telegraf leaves out: caches and spoolers.
    fams = ours(both.page, "live")
    assert {lab["name"] for lab, _ in fams["uwsgi_cache_items"]} == {"small", "big"}
    assert one(fams, "uwsgi_cache_items", name="small") == 1
    assert len(fams["uwsgi_spooler_running"]) == 2


@pytest.fixture(scope="module")
def cli():
    return cli_bin()


POLLER_OWN = {"uwsgi_stats_repairs_total", "uwsgi_scrape_last_success_timestamp_seconds",
              "uwsgi_red_dropped_label_sets_total"}


@pytest.mark.parametrize("name", list(DOCS))
def test_cli_prints_what_envoy_shows(both, cli, name):
    """`uwsgi-red stats FILE --per-core` runs the same core code as the
    poller: every sample it prints is on Envoy's page with the same value
    (after INTEGER_FORMS)."""
    f = DOCS[name][0]
    p = subprocess.run([str(cli), "stats", str(f), "--target", name, "--per-core"], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    envoy = {(n, tuple(sorted(lab.items()))): v for n, lab, v in both.page if lab.get("target") == name}
    compared = 0
    for n, lab, v in parse_prometheus(p.stdout.decode()):
        if n in INTEGER_FORMS:
            n, factor = INTEGER_FORMS[n]
            v = round(v * factor)
        key = (n, tuple(sorted(lab.items())))
        if n in POLLER_OWN:
            # The reader's own figures, not the document's: the time of the
            # read (the CLI's "now", the poller's last poll), repairs summed
            # over the poller's polls, the process-wide dropped label sets.
            continue
        assert key in envoy, f"{name}: the CLI prints {key}, Envoy's page has no such sample"
        assert envoy[key] == v, (name, key, envoy[key], v)
        compared += 1
    assert compared > 20
    # Envoy shows only the CLI's families plus the poller's own.
    poller_only = {"uwsgi_stats_repairs_total", "uwsgi_scrape_errors_total",
                   "uwsgi_scrape_last_success_timestamp_seconds"}
    cli_names = {INTEGER_FORMS.get(n, (n,))[0] for n, _l, _v in parse_prometheus(p.stdout.decode())}
    assert {k[0] for k in envoy} - cli_names <= poller_only


def test_telegraf_read_every_source(both):
    """One gather wrote every source but the invalid document."""
    assert set(both.by_target) == ({*DOCS, "live"} - {INVALID})
    assert re.search(r"Loaded inputs: uwsgi", both.telegraf_log), both.telegraf_log[-2000:]
