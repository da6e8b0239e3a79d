"""The mesh and gateway manifests in examples/ against the real schemas:

- examples/istio/traffic-extension.yaml: Istio TrafficExtension (>= 1.30),
  examples/istio/red-filter.yaml: WasmPlugin (< 1.30), both against the
  openAPIV3Schema of the CRDs in the istio.io/api Go module;
- examples/envoy-gateway/envoy-extension-policy.yaml: EnvoyExtensionPolicy
  against the CRD in the github.com/envoyproxy/gateway Go module;
- examples/kong/kong.yaml: the filter chain's `config` against the
  `config_schema` of dist/red-filter.meta.json (what Kong validates with).

scripts/setup.d/crds.sh fetches the CRDs from the Go module cache (never
committed) and converts them to JSON. Validation is JSON Schema (python
`jsonschema`) over the structural schema: `x-kubernetes-*` keys and CEL
rules are not evaluated, and unknown fields are refused as
`kubectl --validate=strict` refuses them (Kubernetes would otherwise prune
them silently). Every embedded plugin configuration also passes
`uwsgi-red check-config` (dist/uwsgi-red, the plugin's own parser).
"""
import copy
import json
import subprocess
from pathlib import Path

import jsonschema
import pytest

from harness import DIST, EXAMPLES, ROOT, cli_bin

ISTIO = "istio.io/api@v1.32.0/customresourcedefinitions.gen.json"
GATEWAY = "github.com/envoyproxy/gateway@v1.9.1/gateway.envoyproxy.io_envoyextensionpolicies.json"


def run_setup(script):
    r = subprocess.run(["bash", str(ROOT / "scripts" / "setup.d" / script)], capture_output=True, text=True,
                       timeout=900)
    if r.returncode != 0:
        pytest.fail(f"scripts/setup.d/{script} failed:\n{r.stderr[-3000:]}")
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def crds():
    return Path(run_setup("crds.sh"))


@pytest.fixture(scope="module")
def yaml2json():
    binary = run_setup("xds.sh")

    def load(path):
        r = subprocess.run([binary, "yaml2json", str(path)], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)
    return load


def check_config(plugin, config):
    """`uwsgi-red check-config` on the JSON text of `config`: (exit code, output)."""
    text = config if isinstance(config, str) else json.dumps(config)
    r = subprocess.run([cli_bin(), "check-config", plugin, "-"], input=text.encode(), capture_output=True, timeout=30)
    return r.returncode, (r.stdout + r.stderr).decode(errors="replace")


def crd_version(crds, file, kind, version):
    docs = json.loads((crds / file).read_text())
    found = [d for d in docs if d.get("kind") == "CustomResourceDefinition" and d["spec"]["names"]["kind"] == kind]
    assert len(found) == 1, f"{file}: {len(found)} CRDs of kind {kind}"
    versions = {v["name"]: v for v in found[0]["spec"]["versions"]}
    assert version in versions, f"{kind}: served versions {sorted(versions)}"
    return versions[version]


def strict(schema):
    """The CRD's structural schema as plain JSON Schema: `x-kubernetes-*`
    dropped, `nullable` as a null type, and objects with declared
    properties closed (kubectl --validate=strict) unless they keep unknown
    fields on purpose."""
    if isinstance(schema, list):
        return [strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: strict(v) for k, v in schema.items() if not k.startswith("x-kubernetes-") and k != "nullable"}
    if "properties" in schema:
        # properties' own names are data, not keywords
        out["properties"] = {k: strict(v) for k, v in schema["properties"].items()}
    if schema.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
    if (out.get("type") == "object" and "properties" in out and "additionalProperties" not in out
            and not schema.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def validator(crds, file, kind, version):
    v = crd_version(crds, file, kind, version)
    assert v["served"] is True, f"{kind} {version} is not served"
    schema = strict(v["schema"]["openAPIV3Schema"])
    # apiVersion, kind and metadata are the API server's, not in every CRD schema.
    schema.setdefault("properties", {}).update({"apiVersion": {"type": "string"}, "kind": {"type": "string"},
                                                "metadata": {"type": "object"}})
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def errors(v, doc):
    return sorted(f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in v.iter_errors(doc))


# (example, CRD file, kind, version, path to the plugin configuration)
MANIFESTS = [
    ("istio/traffic-extension.yaml", ISTIO, "TrafficExtension", "v1alpha1", ("spec", "wasm", "pluginConfig")),
    ("istio/red-filter.yaml", ISTIO, "WasmPlugin", "v1alpha1", ("spec", "pluginConfig")),
    ("envoy-gateway/envoy-extension-policy.yaml", GATEWAY, "EnvoyExtensionPolicy", "v1alpha1",
     ("spec", "wasm", 0, "config")),
]


def dig(doc, path):
    for p in path:
        doc = doc[p]
    return doc


@pytest.mark.parametrize("example,file,kind,version,config_at", MANIFESTS, ids=[m[0] for m in MANIFESTS])
def test_manifest_matches_the_crd(crds, yaml2json, example, file, kind, version, config_at):
    docs = yaml2json(EXAMPLES / example)
    assert [d["kind"] for d in docs] == [kind]
    doc = docs[0]
    assert doc["apiVersion"].endswith("/" + version)
    v = validator(crds, file, kind, version)
    assert errors(v, doc) == []
    # The validator bites: a misspelt key and a wrong enum value are refused.
    bad = copy.deepcopy(doc)
    parent = dig(bad, config_at[:-1])
    parent["failStrateg"] = "FAIL_OPEN"
    assert any("failStrateg" in e for e in errors(v, bad)), errors(v, bad)
    if kind != "EnvoyExtensionPolicy":
        bad = copy.deepcopy(doc)
        dig(bad, config_at[:-1])["failStrategy"] = "FAIL_SOMETIMES"
        assert any("FAIL_SOMETIMES" in e for e in errors(v, bad)), errors(v, bad)


@pytest.mark.parametrize("example,file,kind,version,config_at", MANIFESTS, ids=[m[0] for m in MANIFESTS])
def test_embedded_plugin_config_passes_check_config(yaml2json, example, file, kind, version, config_at):
    config = dig(yaml2json(EXAMPLES / example)[0], config_at)
    code, out = check_config("red-filter", config)
    assert (code, out.startswith("red-filter: configuration ok")) == (0, True), out
    # And check-config is not a rubber stamp.
    code, out = check_config("red-filter", {**config, "max_seris": 1})
    assert code == 1 and "max_seris" in out, out


def test_traffic_extension_is_in_istio_api_1_32(crds):
    """TrafficExtension (Istio >= 1.30) is served by the istio.io/api v1.32.0
    CRDs, with the Wasm fields under `wasm:` and FAIL_RELOAD among the fail
    strategies."""
    v = crd_version(crds, ISTIO, "TrafficExtension", "v1alpha1")
    assert v["served"] is True
    wasm = v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["wasm"]["properties"]
    assert {"url", "sha256", "imagePullPolicy", "pluginConfig", "pluginName", "failStrategy"} <= set(wasm)
    assert "FAIL_RELOAD" in wasm["failStrategy"]["enum"]


def test_kong_filter_chain(yaml2json):
    """The Kong filter chain's config passes the schema Kong would check it
    with (dist/red-filter.meta.json `config_schema`) and check-config."""
    doc = yaml2json(EXAMPLES / "kong" / "kong.yaml")[0]
    (chain,) = doc["services"][0]["filter_chains"]
    (flt,) = chain["filters"]
    assert flt["name"] == "red-filter"  # the module's file name in wasm_filters_path
    meta = json.loads((DIST / "red-filter.meta.json").read_text())
    assert set(meta) == {"config_schema"}
    v = jsonschema.Draft4Validator(meta["config_schema"])
    assert errors(v, flt["config"]) == []
    assert check_config("red-filter", flt["config"])[0] == 0
    assert any("max_seris" in e for e in errors(v, {**flt["config"], "max_seris": 1}))
