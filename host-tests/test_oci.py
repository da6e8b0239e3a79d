"""OCI distribution to a mesh.

scripts/oci.py (what `./build.sh oci` runs) writes OCI image layouts of the
built plugins, reproducibly. A real registry (Debian docker-registry) on
loopback takes them from `skopeo copy`, digests unchanged; a real Envoy then
loads red-filter and uwsgi-stats from the registry's blob URL through
vm_config.code.remote with the module's sha256, using the pluginConfig /
EnvoyFilter values of examples/istio/, and counts exactly; a wrong sha256 is
refused (no module, traffic unaffected).
"""
import gzip
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile

import pytest

from harness import (DIST, ROOT, Sub, free_port, get_text, http, red_filter_config, render, skopeo_bin, value,
                     wait_for, wasm)

ISTIO = ROOT / "examples" / "istio"
PLUGINS = {"red-filter": ["red"], "uwsgi-stats": ["uwsgi_stats", "uwsgi_stats_admin"], "uwsgi-tcp": ["uwsgi_tcp"]}
WASM_LAYER = "application/vnd.module.wasm.content.layer.v1+wasm"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def write_layouts(out, sources=None):
    specs = [f"{name}={(sources or {}).get(name, wasm(name))}:{','.join(ids)}" for name, ids in PLUGINS.items()]
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "oci.py"), str(out), *specs],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return json.loads((out / "digests.json").read_text())


def tree(root):
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def blob(layout, digest):
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def manifests(layout):
    index = json.loads((layout / "index.json").read_text())
    return {m["annotations"]["org.opencontainers.image.ref.name"]: (m, json.loads(blob(layout, m["digest"])))
            for m in index["manifests"]}


def json_value(path, key="value: {"):
    """The JSON object following `key` in a YAML manifest (the examples write
    Envoy fragments as JSON flow mappings, which are YAML too)."""
    text = path.read_text()
    assert text.count(key) == 1, f"{path}: expected one {key!r}"
    obj, _ = json.JSONDecoder().raw_decode(text, text.index(key) + len(key) - 1)
    return obj


def wasm_plugin_fields(path):
    text = path.read_text()
    fields = dict(re.findall(r"^  (url|pluginName|failStrategy|phase): (\S+)$", text, re.M))
    fields["pluginConfig"] = json.loads(re.search(r"^  pluginConfig: (\{.*\})$", text, re.M).group(1))
    return fields


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    out = tmp_path_factory.mktemp("oci")
    return out, write_layouts(out)


# ------------------------------------------------------------------ layouts

def test_layouts_are_reproducible(layouts, tmp_path):
    out, digests = layouts
    # Same bytes from a copy with another name and mtime: same layout, byte for byte.
    copies = {}
    for name in PLUGINS:
        c = tmp_path / f"copy-{name}.wasm"
        c.write_bytes(open(wasm(name), "rb").read())
        os.utime(c, (1_000_000_000, 1_000_000_000))
        copies[name] = c
    again = write_layouts(tmp_path / "again", copies)
    assert again == {k: dict(v, layout=str(tmp_path / "again" / k)) for k, v in digests.items()}
    for name in PLUGINS:
        assert tree(out / name) == tree(tmp_path / "again" / name)


def test_layout_holds_both_istio_variants(layouts):
    out, digests = layouts
    for name, root_ids in PLUGINS.items():
        layout = out / name
        module = open(wasm(name), "rb").read()
        assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
        refs = manifests(layout)
        assert sorted(refs) == ["compat", "oci"]
        for desc, man in refs.values():
            assert desc["mediaType"] == MANIFEST == man["mediaType"]
            raw = blob(layout, desc["digest"])
            assert desc["size"] == len(raw) and desc["digest"] == "sha256:" + hashlib.sha256(raw).hexdigest()

        # compat: exactly one tar+gzip layer holding only plugin.wasm
        _, compat = refs["compat"]
        assert compat["annotations"]["module.wasm.image/variant"] == "compat"
        assert [l["mediaType"] for l in compat["layers"]] == [OCI_LAYER_GZIP]
        tgz = blob(layout, compat["layers"][0]["digest"])
        with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as t:
            assert t.getnames() == ["plugin.wasm"]
            assert t.extractfile("plugin.wasm").read() == module
        cfg = json.loads(blob(layout, compat["config"]["digest"]))
        assert cfg["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(gzip.decompress(tgz)).hexdigest()]

        # oci: runtime config + the module itself, uncompressed (Istio wants two layers)
        _, oci = refs["oci"]
        assert [l["mediaType"] for l in oci["layers"]] == ["application/vnd.module.wasm.config.v1+json", WASM_LAYER]
        wasm_layer = oci["layers"][1]
        assert blob(layout, wasm_layer["digest"]) == module
        assert wasm_layer["digest"] == digests[name]["wasm"] == "sha256:" + hashlib.sha256(module).hexdigest()
        runtime = json.loads(blob(layout, oci["config"]["digest"]))
        assert runtime["type"] == "envoy_proxy" and runtime["config"]["root_ids"] == root_ids
        assert runtime["abiVersions"] and all(v.startswith("proxy_abi_version_") for v in runtime["abiVersions"])


# ------------------------------------------------------------------ registry

@pytest.fixture(scope="module")
def registry(hosts, layouts):
    """Registry on loopback with every layout pushed by skopeo, digests kept."""
    out, _ = layouts
    reg = hosts.registry("oci-registry")
    for name in PLUGINS:
        for ref in ("compat", "oci"):
            r = subprocess.run([skopeo_bin(), "copy", "--preserve-digests", "--dest-tls-verify=false",
                                f"oci:{out / name}:{ref}", f"docker://127.0.0.1:{reg.port}/uwsgi-red/{name}:{ref}"],
                               capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, r.stdout + r.stderr
    return reg


def registry_manifest(reg, repo, ref):
    status, headers, body = http("GET", f"http://127.0.0.1:{reg.port}/v2/{repo}/manifests/{ref}",
                                 headers={"Accept": MANIFEST})
    assert status == 200, body
    return headers["Docker-Content-Digest"], json.loads(body)


def test_registry_serves_what_the_layouts_hold(registry, layouts):
    out, _ = layouts
    for name in PLUGINS:
        for ref, (desc, man) in manifests(out / name).items():
            digest, served = registry_manifest(registry, f"uwsgi-red/{name}", ref)
            assert digest == desc["digest"] and served == man
        # What Istio's compat extractor does: plugin.wasm out of the one layer.
        _, compat = registry_manifest(registry, f"uwsgi-red/{name}", "compat")
        status, _, tgz = http("GET", f"http://127.0.0.1:{registry.port}/v2/uwsgi-red/{name}/blobs/"
                                     f"{compat['layers'][0]['digest']}")
        assert status == 200
        with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as t:
            assert t.extractfile("plugin.wasm").read() == open(wasm(name), "rb").read()


def remote_code(reg_port, repo, module_digest, sha256, cluster="oci_registry"):
    return ("code: {remote: {http_uri: {uri: \"http://127.0.0.1:%d/v2/%s/blobs/%s\", cluster: %s, timeout: 10s}, "
            "sha256: \"%s\"}}" % (reg_port, repo, module_digest, cluster, sha256))


def image_from_istio_example(registry):
    """(repo, tag) of examples/istio/red-filter.yaml's url, checked against the push."""
    url = wasm_plugin_fields(ISTIO / "red-filter.yaml")["url"]
    m = re.fullmatch(r"oci://registry\.example\.com:5000/(?P<repo>[^:@]+):(?P<tag>[\w.-]+)", url)
    assert m, url
    return m["repo"], m["tag"]


def red_envoy(hosts, registry, upstream, sha_override=None, name="oci-envoy"):
    """Envoy with red-filter fetched from the registry blob of the image the
    Istio example names, with the example's pluginName and pluginConfig and
    the stats_config of examples/istio/stats-tags.yaml."""
    repo, tag = image_from_istio_example(registry)
    manifest_digest, man = registry_manifest(registry, repo, tag)
    layer = [l for l in man["layers"] if l["mediaType"] == WASM_LAYER]
    assert len(layer) == 1
    module_digest = layer[0]["digest"]
    fields = wasm_plugin_fields(ISTIO / "red-filter.yaml")
    listen, admin = free_port(), free_port()
    cfg = red_filter_config(listen, admin, upstream, fields["pluginConfig"])
    stats_config = json.dumps(json_value(ISTIO / "stats-tags.yaml")["stats_config"])
    cfg = render(cfg, [
        (f"code: {{local: {{filename: {DIST}/red-filter.wasm}}}}",
         remote_code(registry.port, repo, module_digest, sha_override or module_digest.split(":", 1)[1])),
        ("                root_id: red\n", f"                root_id: {fields['pluginName']}\n"),
        # Istio's failStrategy becomes Envoy's failure_policy.
        ("failure_policy: FAIL_RELOAD", f"failure_policy: {fields['failStrategy']}"),
        ("  clusters:\n", "  clusters:\n" + f"""  - name: oci_registry
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: oci_registry
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {registry.port}}}}}}}
"""),
        # the stats_config block of the example bootstrap -> the Istio EnvoyFilter's
        Sub(re.compile(r"^stats_config:\n(?:[ #].*\n)+", re.M), f"stats_config: {stats_config}\n"),
    ])
    assert fields["failStrategy"] == "FAIL_OPEN" and "failure_policy: FAIL_OPEN" in cfg
    env = hosts.envoy(name, cfg, admin, listen_port=listen)
    return env, {"image": f"{repo}:{tag}", "manifest": manifest_digest, "module": module_digest}


def remote_stats(env):
    text = get_text(f"http://127.0.0.1:{env.admin_port}/stats?filter=^wasm.remote_load_fetch")
    return {k: int(v) for k, v in (line.split(": ") for line in text.strip().splitlines())}


def test_envoy_loads_red_filter_from_registry_and_counts(hosts, registry):
    up = hosts.uwsgi("oci-uwsgi", processes=2, threads=4)
    env, loaded = red_envoy(hosts, registry, up.port)
    assert remote_stats(env) == {"wasm.remote_load_fetch_failures": 0, "wasm.remote_load_fetch_successes": 1}
    sent = [f"/users/{i}" for i in range(7)] + ["/notfound"] * 3
    for path in sent:
        status, _, _ = http("GET", f"http://127.0.0.1:{env.listen_port}{path}")
        assert status == (404 if path == "/notfound" else 200)
    def counted():
        text = env.prometheus()
        return text if value(text, "uwsgi_red_requests_total") == len(sent) else None
    text = wait_for(counted, 10, what="all requests counted")
    # The stats_tags from the Istio EnvoyFilter restored the labels.
    assert value(text, "uwsgi_red_requests_total", route="/users/{id}", method="GET", code="200") == 7
    assert value(text, "uwsgi_red_requests_total", route="/notfound", code="404", code_class="4xx") == 3
    print(f"\nEnvoy loaded red-filter from image {loaded['image']} manifest {loaded['manifest']} "
          f"module {loaded['module']}")


def test_envoy_refuses_a_wrong_sha256(hosts, registry):
    up = hosts.uwsgi("oci-uwsgi-bad", processes=1, threads=4)
    wrong = hashlib.sha256(b"not the module").hexdigest()
    env, _ = red_envoy(hosts, registry, up.port, sha_override=wrong, name="oci-envoy-bad-sha")
    def failed():
        stats = remote_stats(env)
        return stats if stats["wasm.remote_load_fetch_failures"] >= 1 else None
    stats = wait_for(failed, 15, what="the failed fetch")
    assert stats == {"wasm.remote_load_fetch_failures": 1, "wasm.remote_load_fetch_successes": 0}
    assert "Plugin red failed to load" in env.log()
    # A refused metrics plugin costs no request: traffic passes, nothing is counted.
    for i in range(5):
        status, _, body = http("GET", f"http://127.0.0.1:{env.listen_port}/users/{i}")
        assert status == 200 and body.startswith(b"Hello GET /users/")
    assert "uwsgi_red_requests_total" not in env.prometheus()


def uwsgi_stats_bootstrap(registry, admin, stats_port, module_hex):
    """examples/istio/uwsgi-stats.yaml's bootstrap fragment with the loopback
    registry, the stats port and the module digest substituted, plus admin
    and the stats-tags fragment: the bootstrap an Istio sidecar would get."""
    fragment = render(json.dumps(json_value(ISTIO / "uwsgi-stats.yaml")), [
        ("registry.example.com:5000", f"127.0.0.1:{registry.port}"),
        ('"address": "registry.example.com", "port_value": 5000',
         f'"address": "127.0.0.1", "port_value": {registry.port}'),
        ('"port_value": 9191', f'"port_value": {stats_port}'),
        ("MODULE_SHA256", module_hex, 2),
    ])
    return json.dumps({"admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin}}},
                       "stats_flush_interval": "1s", **json_value(ISTIO / "stats-tags.yaml"),
                       **json.loads(fragment)})


def test_envoy_loads_uwsgi_stats_from_registry(hosts, registry):
    app = hosts.uwsgi("oci-uwsgi-stats", processes=3, stats=True)
    _, man = registry_manifest(registry, "uwsgi-red/uwsgi-stats", "oci")
    module_digest = [l for l in man["layers"] if l["mediaType"] == WASM_LAYER][0]["digest"]
    admin = free_port()
    boot = uwsgi_stats_bootstrap(registry, admin, app.stats_port, module_digest.split(":", 1)[1])
    env = hosts.envoy("oci-envoy-uwsgi-stats", boot, admin)
    assert remote_stats(env) == {"wasm.remote_load_fetch_failures": 0, "wasm.remote_load_fetch_successes": 1}
    wait_for(lambda: value(env.prometheus(), "uwsgi_up", target="app") == 1, 15, what="first poll")
    assert value(env.prometheus(), "uwsgi_workers", target="app") == 3
    manifest_digest, _ = registry_manifest(registry, "uwsgi-red/uwsgi-stats", "oci")
    print(f"\nEnvoy loaded uwsgi-stats from image uwsgi-red/uwsgi-stats:oci manifest {manifest_digest} "
          f"module {module_digest}")
