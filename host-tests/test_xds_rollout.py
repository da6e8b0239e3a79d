"""Rollout to a fleet: a real xDS control plane (host-tests/xds/, built on
go-control-plane by scripts/setup.d/xds.sh) serves listeners, routes,
clusters and red-filter through ECDS to three Envoys in front of one uWSGI.
Under steady keep-alive load on every Envoy, the test pushes:

  (a) a changed red-filter configuration (new route_patterns);
  (b) a module upgrade v1 -> v2 (remote source with sha256, served by the
      control plane over loopback HTTP); v2 is v1 plus one custom section
      (`uwsgi-red-build` = "v2"): the same code, a different sha256;
  (c) a wrong sha256, a corrupt module, a configuration the plugin refuses;
  (d) a rollback to v1 and the first configuration.

Each scenario checks: no failed client request; per Envoy, what red-filter
counted (uwsgi_red_requests_total, summed over labels) against what the
client sent, with the counter sampled throughout and never going down;
Envoy's ECDS counters (config_reload / config_fail); the ACKs and NACKs the
control plane saw; and which filter version Envoy serves afterwards
(/config_dump ECDS section). The filter uses failure_policy FAIL_RELOAD and
the capability list of examples/envoy-red/envoy.yaml, as the example does.
Each push is waited for until every Envoy has applied it (the ACK of the
exact version the control plane last sent it, no retry pending, Envoy's
config_reload, a new VM, its config dump) or refused every attempt, before
anything is measured and before the next scenario starts.

One control plane, three Envoys and one uWSGI are started once for the
module; each scenario's load runs about a second per phase.
"""
import hashlib
import json
import re
import subprocess
import threading
from collections import Counter
from http.client import HTTPConnection

import pytest

from harness import EXAMPLES, ROOT, free_port, get_text, http, render, samples, stats_tags_yaml, wait_for, wait_port, wasm

NODES = ("a", "b", "c")
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
ECDS_TYPE = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
# What the clients send, in turn: (path, route label under CONFIG_A, under CONFIG_B).
PATHS = (("/users/{i}", "/users/{id}", "/users/{id}"),
         ("/orders/{i}/lines", "/orders/:id/lines", "/orders/{order}/lines"),
         ("/items", "/items", "/items"))
CONFIG_A = {"route_patterns": ["/users/{id}"], "max_series": 1000}
CONFIG_B = {"route_patterns": ["/users/{id}", "/orders/{order}/lines"], "max_series": 1000}
# Refused by the plugin's parser (unknown key): Envoy accepts it, the
# plugin logs the key, counts reason="config" and passes traffic through.
CONFIG_REFUSED = {"route_patterns": ["/users/{id}"], "max_seris": 1000}
# Requests each client sends before a push and after the push settled.
PHASE = 150
# The control plane's attempts after a NACK (-nack-retries).
NACK_RETRIES = 2


def example_capabilities():
    """The Proxy-Wasm capabilities examples/envoy-red/envoy.yaml allows
    red-filter (kept exact by test_capabilities.py): the fleet is pushed
    the module with the same restriction the example ships."""
    text = (EXAMPLES / "envoy-red" / "envoy.yaml").read_text()
    m = re.search(r"^( *)allowed_capabilities:\n((?:\1  +\w+: \{\}\n)+)", text, re.M)
    assert m, "examples/envoy-red/envoy.yaml: no allowed_capabilities list"
    names = re.findall(r"(\w+): \{\}", m.group(2))
    assert "proxy_increment_metric" in names, names
    return {name: {} for name in names}


def custom_section(name, payload):
    """A Wasm custom section (id 0): ignored by every runtime, but part of
    the module's bytes and so of its sha256."""
    def leb(n):
        out = bytearray()
        while True:
            b, n = n & 0x7F, n >> 7
            out.append(b | (0x80 if n else 0))
            if not n:
                return bytes(out)
    body = leb(len(name)) + name + payload
    return b"\x00" + leb(len(body)) + body


def xds_binary():
    r = subprocess.run(["bash", str(ROOT / "scripts" / "setup.d" / "xds.sh")], capture_output=True, text=True,
                       timeout=900)
    if r.returncode != 0:
        pytest.fail(f"scripts/setup.d/xds.sh failed:\n{r.stderr[-3000:]}")
    return r.stdout.strip().splitlines()[-1]


def bootstrap(node, admin, xds_port):
    return render(ROOT / "host-tests" / "xds" / "bootstrap.yaml", [
        ("id: NODE_ID", f"id: {node}"),
        ("port_value: 9901", f"port_value: {admin}"),
        ("port_value: 18000", f"port_value: {xds_port}"),
        ("  stats_tags: STATS_TAGS\n", "  stats_tags:\n" + stats_tags_yaml()),
    ])


class Fleet:
    def __init__(self, hosts, tmp):
        self.wasm_dir = tmp / "wasm"
        self.wasm_dir.mkdir()
        v1 = open(wasm("red-filter"), "rb").read()
        self.modules = {
            "v1": v1,
            "v2": v1 + custom_section(b"uwsgi-red-build", b"v2"),
            # The first half of v1: not a valid module, with its own (right) sha256.
            "corrupt": v1[: len(v1) // 2],
        }
        for name, data in self.modules.items():
            (self.wasm_dir / f"{name}.wasm").write_bytes(data)
        self.sha = {n: hashlib.sha256(d).hexdigest() for n, d in self.modules.items()}
        self.capabilities = example_capabilities()
        self.up = hosts.uwsgi("xds-uwsgi", processes=2)
        self.xds_port, self.api_port = free_port(), free_port()
        self.listen = {n: free_port() for n in NODES}
        self.admin = {n: free_port() for n in NODES}
        nodes = ",".join(f"envoy-{n}={self.listen[n]}" for n in NODES)
        self.cp = hosts.proc("xds-control-plane", [
            xds_binary(), "-xds-port", str(self.xds_port), "-api-port", str(self.api_port),
            "-app-port", str(self.up.port), "-nodes", nodes, "-wasm-dir", str(self.wasm_dir),
            "-nack-retries", str(NACK_RETRIES)], port=self.api_port)
        wait_port(self.xds_port, 10, self.cp)
        self.version = 0
        self.push(CONFIG_A, "v1")
        self.envoys = {}
        for n in NODES:
            self.envoys[n] = hosts.envoy(f"xds-envoy-{n}", bootstrap(f"envoy-{n}", self.admin[n], self.xds_port),
                                         self.admin[n], extra_args=["--component-log-level", "wasm:debug"])
        for n in NODES:
            wait_port(self.listen[n], 30, self.envoys[n])
        # The first push is refused once per Envoy (the module is not in
        # its cache yet, nack_on_code_cache_miss) and applied on the retry;
        # until then the listener has no filter config and answers 500.
        nothing = {n: dict(reload=0, fail=0, vms=0) for n in NODES}
        wait_for(lambda: all(self.applied(n, 0, nothing[n]) for n in NODES), 30, 0.1,
                 what="the first filter config applied on every Envoy")
        for n in NODES:
            status, _, body = http("GET", f"http://127.0.0.1:{self.listen[n]}/items")
            assert status == 200, (n, status, body)

    def filter(self, config, module, sha=None):
        return {
            "name": "red",
            "typed_config": {
                "@type": WASM_TYPE,
                "config": {
                    "name": "red",
                    "root_id": "red",
                    "failure_policy": "FAIL_RELOAD",
                    "capability_restriction_config": {"allowed_capabilities": self.capabilities},
                    "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue",
                                      "value": json.dumps(config)},
                    "vm_config": {
                        "vm_id": "red",
                        "runtime": "envoy.wasm.runtime.v8",
                        "nack_on_code_cache_miss": True,
                        "code": {"remote": {
                            "http_uri": {"uri": f"http://127.0.0.1:{self.api_port}/wasm/{module}.wasm",
                                         "cluster": "wasm_http", "timeout": "5s"},
                            "sha256": sha or self.sha[module],
                        }},
                    },
                },
            },
        }

    def push(self, config, module, sha=None):
        self.version += 1
        body = json.dumps({"version": str(self.version), "filter": self.filter(config, module, sha)}).encode()
        status, _, out = http("POST", f"http://127.0.0.1:{self.api_port}/push", body)
        assert status == 200, out
        return str(self.version)

    def status(self):
        """The control plane's view: every ECDS ACK/NACK it has seen, oldest
        first, and per node the snapshot version it last set (the push's or
        a retry's) and whether a retry is pending."""
        got = json.loads(get_text(f"http://127.0.0.1:{self.api_port}/status"))
        return [r for r in got["replies"] if r["type_url"] == ECDS_TYPE], got["nodes"]

    def replies(self):
        return self.status()[0]

    def answered(self, n, since):
        """Envoy `n`'s ECDS replies after the first `since`, and the control
        plane's state for it; None while a retry is pending."""
        replies, nodes = self.status()
        st = nodes[f"envoy-{n}"]
        if st["retry_pending"]:
            return None
        return [r for r in replies[since:] if r["node"] == f"envoy-{n}"], st

    def applied(self, n, since, before):
        """Whether Envoy `n` has applied the control plane's current version
        for it. After a NACK the snapshot cache resends the refused version
        and Envoy ACKs that identical resource without applying it, so an
        ACK counts only when it is of the exact current version with no
        retry pending; and Envoy itself must show it: one more applied
        config (config_reload - config_fail), a new Wasm VM, the version in
        its config dump."""
        got = self.answered(n, since)
        if got is None:
            return False
        mine, st = got
        if not mine or mine[-1].get("error") or mine[-1]["version"] != st["version"]:
            return False
        applied = (self.ecds_stat(n, "config_reload") - before["reload"]) - \
            (self.ecds_stat(n, "config_fail") - before["fail"])
        return applied >= 1 and self.vms_created(n) > before["vms"] and self.serving(n)[0] == st["version"]

    def refused(self, n, since, before):
        """Whether Envoy `n` has refused every attempt: the push and each
        retry NACKed, no retry pending, and Envoy's config_fail counted
        each refusal."""
        got = self.answered(n, since)
        if got is None:
            return False
        mine, st = got
        nacks = sum(1 for r in mine if r.get("error"))
        return st["retries"] == NACK_RETRIES and nacks == 1 + NACK_RETRIES and \
            self.ecds_stat(n, "config_fail") - before["fail"] >= 1 + NACK_RETRIES

    def series(self, n):
        """red-filter's request counters on Envoy `n`: {(route, code): value}."""
        text = get_text(f"http://127.0.0.1:{self.admin[n]}/stats/prometheus")
        out = Counter()
        # While an old and a new VM overlap, Envoy may list a name twice.
        for l, v in samples(text, "uwsgi_red_requests_total"):
            out[(l["route"], l["code"])] += v
        return dict(out)

    def config_errors(self, n):
        text = get_text(f"http://127.0.0.1:{self.admin[n]}/stats/prometheus")
        return sum(v for _, v in samples(text, "uwsgi_red_internal_errors_total", reason="config"))

    def stat(self, n, name):
        text = get_text(f"http://127.0.0.1:{self.admin[n]}/stats?filter=^{name}$")
        k, _, v = text.strip().partition(": ")
        assert k == name, text
        return int(v)

    def vms_created(self, n):
        """Base Wasm VMs Envoy has created (its wasm debug log): one per
        filter configuration it applied."""
        return self.envoys[n].log().count("Base Wasm created")

    def ecds_stat(self, n, which):
        return self.stat(n, f"extension_config_discovery.http_filter.red.{which}")

    def ecds_config(self, n):
        """(version, plugin config) of the filter in Envoy's ECDS config dump."""
        d = json.loads(get_text(f"http://127.0.0.1:{self.admin[n]}/config_dump?resource=ecds_filters"))
        (c,) = d["configs"]
        return c["version_info"], c["ecds_filter"]["typed_config"]["config"]

    def serving(self, n):
        """(version, module file, sha256) of the filter Envoy reports it serves."""
        version, config = self.ecds_config(n)
        remote = config["vm_config"]["code"]["remote"]
        return version, remote["http_uri"]["uri"].rsplit("/", 1)[1], remote["sha256"]


class Load:
    """One keep-alive client per Envoy, sending PATHS in turn until stopped;
    counts responses by path class and every failure (exception or
    non-200). One request in flight per client, so once joined every
    request sent has been answered."""

    def __init__(self, fleet):
        self.fleet = fleet
        self.sent = Counter()
        self.by_path = {n: Counter() for n in NODES}
        self.failed = Counter()
        self.stop_ev = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(n,)) for n in NODES]

    def run(self, n):
        c = HTTPConnection("127.0.0.1", self.fleet.listen[n], timeout=20)
        i = 0
        while not self.stop_ev.is_set():
            i += 1
            k = i % len(PATHS)
            try:
                c.request("GET", PATHS[k][0].replace("{i}", str(i)))
                r = c.getresponse()
                r.read()
                ok = r.status == 200
            except OSError:
                ok = False
                c.close()
                c = HTTPConnection("127.0.0.1", self.fleet.listen[n], timeout=20)
            self.by_path[n][k] += 1
            self.sent[n] += 1
            if not ok:
                self.failed[n] += 1
        c.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        for t in self.threads:
            t.join(30)

    def more(self, count):
        """Until every client has sent `count` more requests."""
        start = dict(self.sent)
        wait_for(lambda: all(self.sent[n] - start.get(n, 0) >= count for n in NODES), 60, 0.02,
                 what=f"{count} more requests on every Envoy")


class Sampler(threading.Thread):
    """Reads every Envoy's red-filter counters every 50 ms during a
    scenario; a series that goes down or disappears is a reset, recorded
    with the last value seen (so the loss is detected, never silent)."""

    def __init__(self, fleet):
        super().__init__()
        self.fleet = fleet
        self.stop_ev = threading.Event()
        self.last = {n: fleet.series(n) for n in NODES}
        self.resets = {n: [] for n in NODES}

    def run(self):
        while not self.stop_ev.wait(0.05):
            for n in NODES:
                try:
                    self.observe(n)
                except (OSError, AssertionError):
                    pass  # a slow admin answer: the next poll compares against the last one seen

    def observe(self, n):
        now = self.fleet.series(n)
        for key, v in self.last[n].items():
            if now.get(key, 0) < v:
                self.resets[n].append((key, v, now.get(key)))
        self.last[n] = now

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop_ev.set()
        self.join(10)
        for n in NODES:
            self.observe(n)


ROWS = []


def scenario(f, name, config, module, sha=None, accepted=True):
    """Pushes one filter under steady load on all three Envoys and returns
    what happened, per Envoy. Accepted: every Envoy ACKs this version (or a
    retry of it) and applies it. Refused: every attempt is NACKed and Envoy
    keeps serving, and reporting, the previous version. The scenario waits
    (bounded) for that outcome on every Envoy before it measures, so the
    next scenario starts from a settled fleet."""
    before = {n: dict(series=f.series(n), serving=f.serving(n), reload=f.ecds_stat(n, "config_reload"),
                      vms=f.vms_created(n),
                      fail=f.ecds_stat(n, "config_fail"),
                      rq=f.stat(n, "http.ingress_http.downstream_rq_completed")) for n in NODES}
    seen = len(f.replies())
    with Load(f) as load, Sampler(f) as sampler:
        load.more(PHASE)
        version = f.push(config, module, sha)

        def settled():
            done = f.applied if accepted else f.refused
            return all(done(n, seen, before[n]) for n in NODES)
        try:
            wait_for(settled, 30, 0.1, what=f"{name}: every Envoy {'applied' if accepted else 'refused'} "
                     f"version {version}")
        except AssertionError as e:
            raise AssertionError(f"{e}; control plane: {f.status()[1]}") from None
        load.more(PHASE)
    replies = f.replies()[seen:]
    rows = {}
    for n in NODES:
        after = f.series(n)
        counted = sum(after.values()) - sum(before[n]["series"].values())
        lost = sum(v - (now or 0) for _k, v, now in sampler.resets[n])
        rows[n] = dict(
            sent=load.sent[n], failed=load.failed[n], counted=counted, resets=sampler.resets[n], lost=lost,
            rq=f.stat(n, "http.ingress_http.downstream_rq_completed") - before[n]["rq"],
            reload=f.ecds_stat(n, "config_reload") - before[n]["reload"],
            fail=f.ecds_stat(n, "config_fail") - before[n]["fail"],
            nacks=[r["error"] for r in replies if r["node"] == f"envoy-{n}" and r.get("error")],
            vms=f.vms_created(n) - before[n]["vms"], before=before[n]["serving"], serving=f.serving(n))
        r = rows[n]
        print(f"XDS {name} envoy-{n}: sent {r['sent']} failed {r['failed']} counted {r['counted']} "
              f"(resets {len(r['resets'])}, lost at reset {r['lost']:g}) envoy_rq {r['rq']} "
              f"config_reload +{r['reload']} config_fail +{r['fail']} NACKs {len(r['nacks'])} "
              f"new VMs {r['vms']} config_dump {r['serving'][0]} {r['serving'][1]}")
    ROWS.append((name, rows))
    for n, r in rows.items():
        assert r["failed"] == 0, (n, r)
        # Envoy's own request counter continues exactly across every push.
        assert r["rq"] == r["sent"], (n, r)
        # Served with the example's capability list, which covers every
        # call red-filter makes.
        allowed = f.ecds_config(n)[1]["capability_restriction_config"]["allowed_capabilities"]
        assert sorted(allowed) == sorted(f.capabilities), (n, allowed)
        assert "restricted proxy-wasm capability" not in f.envoys[n].log(), n
    return version, rows


def clean_window(f, count=60):
    """A short load after a scenario: what red-filter counts of it."""
    before = {n: sum(f.series(n).values()) for n in NODES}
    with Load(f) as load:
        load.more(count)
    got = {n: (load.sent[n], load.failed[n], sum(f.series(n).values()) - before[n]) for n in NODES}
    print("XDS   then: sent / failed / counted", "; ".join(f"envoy-{n} {s} / {fl} / {c}" for n, (s, fl, c) in got.items()))
    return got


@pytest.fixture(scope="module")
def fleet(hosts, tmp_path_factory):
    return Fleet(hosts, tmp_path_factory.mktemp("xds"))


def check_accepted(f, rows, version, module, fails=(0,)):
    """An applied push: every Envoy ACKs it and reports it, one new VM each,
    nothing is counted twice, and the new VM counts exactly. A red-filter
    series may restart at the switch (Envoy frees the old VM's stats
    unless the new VM has defined the same name first): a counter reset,
    which the Sampler reports."""
    for n, r in rows.items():
        assert r["serving"][1:] == (f"{module}.wasm", f.sha[module]) and r["serving"][0].split("-")[0] == version
        # config_reload counts every attempt, config_fail the refused ones.
        assert r["fail"] in fails and (r["reload"], len(r["nacks"]), r["vms"]) == (1 + r["fail"], r["fail"], 1), (n, r)
        # Never doubled. Whether a series restarts depends on whether the
        # new VM defines it before the old one's stats are freed (the
        # Sampler reports what it saw); the exact check is the window after.
        assert r["counted"] <= r["sent"], (n, r)
    for n, (sent, failed, counted) in clean_window(f).items():
        assert (failed, counted) == (0, sent), n


def test_a_config_push(fleet):
    """New route_patterns: every Envoy ACKs, nothing fails, and requests are
    labelled by the new templates from then on."""
    version, rows = scenario(fleet, "a-config", CONFIG_B, "v1")
    check_accepted(fleet, rows, version, "v1")
    for n in NODES:
        assert ("/orders/{order}/lines", "200") in fleet.series(n)


def test_b_module_upgrade(fleet):
    """v1 -> v2 from the remote source with its sha256: refused once per
    Envoy while the module is fetched in the background (cache miss),
    applied on the control plane's next attempt."""
    version, rows = scenario(fleet, "b-upgrade", CONFIG_B, "v2")
    # Refused until the background fetch has filled the cache: once, or
    # twice on a machine slow enough that the fetch outlasts the retry's 1 s.
    check_accepted(fleet, rows, version, "v2", fails=(1, 2))
    assert all("Unable to create Wasm plugin red" in r["nacks"][0] for r in rows.values())


@pytest.mark.parametrize("what", ["wrong-sha256", "corrupt-module"])
def test_c_bad_module_keeps_the_previous_version(fleet, what):
    """Every attempt is NACKed (config_fail each time) and the previous
    filter keeps serving: it counts every request exactly, without a reset
    (a wrong sha256 never gets as far as a VM; a corrupt module's VM is
    created on each attempt after the fetch and fails to load). Envoy's ECDS config dump is no witness here: it lists
    the refused resource (its version and sha256) as if it were current."""
    module, sha = ("v1", "0" * 64) if what == "wrong-sha256" else ("corrupt", None)
    version, rows = scenario(fleet, f"c-{what}", CONFIG_B, module, sha, accepted=False)
    for n, r in rows.items():
        vms = 0 if what == "wrong-sha256" else NACK_RETRIES
        assert (r["reload"], r["fail"], r["vms"]) == (1 + NACK_RETRIES, 1 + NACK_RETRIES, vms), (n, r)
        assert len(r["nacks"]) == 1 + NACK_RETRIES
        assert all("Unable to create Wasm plugin red" in e for e in r["nacks"]), r["nacks"]
        assert (r["counted"], r["resets"]) == (r["sent"], []), (n, r)
        assert r["serving"][0].split("-")[0] == version and r["serving"][2] == (sha or fleet.sha[module])
    log = fleet.envoys["a"].log()
    assert "gRPC config for type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig rejected" in log


def test_c_refused_configuration(fleet):
    """A configuration the plugin refuses is valid to Envoy (ACK, a new VM):
    the plugin logs the key, counts reason="config" and passes every
    request through unmeasured. Nothing fails; the counting stops, visibly."""
    version, rows = scenario(fleet, "c-refused-config", CONFIG_REFUSED, "v2")
    for n, r in rows.items():
        assert r["serving"][:2] == (version, "v2.wasm")
        assert (r["reload"], r["fail"], r["nacks"], r["vms"]) == (1, 0, [], 1), (n, r)
        assert fleet.config_errors(n) >= 1
        assert fleet.series(n) == {}
    for n, (sent, failed, counted) in clean_window(fleet).items():
        assert (failed, counted) == (0, 0), n
    assert "red-filter: invalid plugin configuration at `max_seris`: unknown key" in fleet.envoys["a"].log()


def test_d_rollback(fleet):
    """Back to v1 and the first configuration: ACKed at once (v1 is still in
    Envoy's module cache), and counting resumes exactly (the requests before
    the switch passed the refused configuration unmeasured)."""
    version, rows = scenario(fleet, "d-rollback", CONFIG_A, "v1")
    check_accepted(fleet, rows, version, "v1")
    assert ("/orders/:id/lines", "200") in fleet.series("a")
