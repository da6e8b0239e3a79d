"""dist/uwsgi-red.component.wasm in three component-model hosts.

- wit-check (host-tests/wasmtime-host/src/bin/wit-check.rs: wasmparser's
  validator and wit-component's printer, the versions wasmtime builds on):
  the artifact validates and exports exactly the world of wit/uwsgi-red.wit
  (same interfaces, same types and functions); its only imports are WASI
  ones from Rust's std.
- wasmtime: host-tests/wasmtime-host runs every core vector through every WIT
  function and compares with native core. Its wasmtime build is behind the
  crate's `host` feature, so `cargo test --workspace` (which runs before
  dist/ exists) skips it and it is compiled once, here, in the `host-test`
  profile.
- jco (Node): the transpiled component must give the values of a fixture
  written by the native core in this same session.
"""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from conftest import ROOT, require_binary, wasm

CARGO_HOST = ["cargo", "--locked"]
HOST_CRATE = ["-p", "uwsgi-red-wasmtime-host", "--features", "host", "--profile", "host-test"]
WIT_PACKAGE = "uwsgi-red:core@0.1.0"


def run(argv, timeout, env=None, cwd=ROOT):
    t = time.monotonic()
    p = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, **(env or {})})
    took = time.monotonic() - t
    print(f"$ {' '.join(map(str, argv))}  ({took:.1f}s, exit {p.returncode})")
    return p


def setup_tool(script):
    """Path printed by scripts/setup.d/<script> --path; fails when not installed."""
    path = subprocess.run(["bash", str(ROOT / "scripts/setup.d" / script), "--path"], capture_output=True,
                          text=True, check=True).stdout.strip()
    if not Path(path).exists():
        pytest.fail(f"{path} missing: run bash scripts/setup.d/{script} (./build.sh test does)")
    return path


@pytest.fixture(scope="module")
def component():
    return wasm("uwsgi-red.component")


@pytest.fixture(scope="module")
def wit_check():
    """wit-check, built with the wasmtime test crate's features and profile so
    the later `cargo test` of that crate reuses every compiled dependency."""
    p = run([*CARGO_HOST, "build", *HOST_CRATE, "--bin", "wit-check"], timeout=3600)
    assert p.returncode == 0, p.stderr[-6000:]
    path = ROOT / "target" / "host-test" / "wit-check"
    assert path.is_file(), f"cargo build gave no {path}"
    return str(path)


@pytest.fixture(scope="module")
def wasmtime_run(component):
    """The wasmtime test crate, built and run once for the module."""
    p = run([*CARGO_HOST, "test", *HOST_CRATE, "--", "--nocapture"], timeout=3600)
    return p


# ------------------------------------------------------------------ wit-check

def test_artifact_validates(component, wit_check):
    p = run([wit_check, "validate", component], timeout=120)
    assert p.returncode == 0, p.stderr


def test_validator_refuses_a_broken_artifact(component, wit_check, tmp_path):
    """The check above could pass vacuously; a truncated component must not."""
    data = Path(component).read_bytes()
    broken = tmp_path / "truncated.wasm"
    broken.write_bytes(data[: len(data) // 2])
    p = run([wit_check, "validate", str(broken)], timeout=120)
    assert p.returncode == 1, (p.returncode, p.stderr)
    assert "does not validate" in p.stderr, p.stderr


def interfaces(wit_text):
    """{interface name: normalised body} of package WIT_PACKAGE in printed WIT.

    Comments and indentation are dropped: the artifact's printout nests the
    package in a `package ... { }` block and may carry no docs.
    """
    lines = [ln.strip() for ln in wit_text.splitlines()]
    lines = [ln for ln in lines if ln and not ln.startswith("//")]
    out, name, body, depth = {}, None, [], 0
    in_pkg = False
    for ln in lines:
        if ln.startswith("package "):
            in_pkg = ln.startswith(f"package {WIT_PACKAGE}")
            continue
        if name is None:
            m = re.match(r"interface ([\w-]+) \{$", ln)
            if m and in_pkg:
                name, body, depth = m.group(1), [], 1
            continue
        depth += ln.count("{") - ln.count("}")
        if depth == 0:
            out[name] = "\n".join(body)
            name = None
        else:
            body.append(ln)
    return out


def world_items(wit_text, kind):
    return sorted(set(re.findall(rf"^\s*{kind} ([\w:/@.-]+);", wit_text, re.M)))


def test_exported_world_matches_wit(component, wit_check):
    art = run([wit_check, "wit", component], timeout=120)
    assert art.returncode == 0, art.stderr
    src = run([wit_check, "wit", str(ROOT / "wit")], timeout=120)
    assert src.returncode == 0, src.stderr

    want = interfaces(src.stdout)
    assert sorted(want) == ["logs", "metrics", "red", "stats", "uwsgi"], want.keys()
    got = interfaces(art.stdout)
    assert sorted(got) == sorted(want), art.stdout[:3000]
    for name in want:
        assert got[name] == want[name], f"interface {name} differs:\n{got[name]}\n---\n{want[name]}"

    exports = world_items(art.stdout, "export")
    assert exports == sorted(f"uwsgi-red:core/{i}@0.1.0" for i in want), exports
    imports = world_items(art.stdout, "import")
    assert imports, "Rust std on wasm32-wasip2 imports WASI; an empty list means the parse broke"
    assert all(i.startswith("wasi:") for i in imports), imports


# ------------------------------------------------------------------- wasmtime

def test_wasmtime_runs_every_vector_like_native_core(wasmtime_run):
    p = wasmtime_run
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-6000:]
    m = re.search(r"(\d+) cases equal", out)
    assert m and int(m.group(1)) > 500, out[-3000:]
    results = re.findall(r"test result: ok\. (\d+) passed; (\d+) failed", out)
    assert results and all(f == "0" for _, f in results), out[-3000:]
    assert sum(int(n) for n, _ in results) >= 4, results


# ------------------------------------------------------------------------ jco

@pytest.fixture(scope="module")
def fixture_json(wasmtime_run, tmp_path_factory):
    assert wasmtime_run.returncode == 0, "wasmtime host build failed (see the wasmtime test)"
    path = tmp_path_factory.mktemp("jco") / "fixture.json"
    p = run([*CARGO_HOST, "run", "-q", *HOST_CRATE, "--bin", "jco-fixture", "--", str(path)], timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return path


@pytest.fixture(scope="module")
def transpiled(component):
    jco = setup_tool("jco.sh")
    # Inside the jco install dir, so the output's imports of
    # @bytecodealliance/preview2-shim resolve to its node_modules.
    out = Path(jco).resolve().parents[2] / "out" / str(os.getpid())
    p = run([jco, "transpile", component, "-o", str(out), "--name", "uwsgi-red", "--quiet"], timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    js = out / "uwsgi-red.js"
    assert js.exists(), list(out.iterdir())
    yield js
    subprocess.run(["rm", "-rf", str(out)], check=False)


def test_jco_runs_every_vector_like_native_core(transpiled, fixture_json):
    node = require_binary("node", "apt-get install nodejs (Node >= 20)")
    p = run([node, "--test", "--test-reporter=tap", str(ROOT / "host-tests/jco/component.test.mjs")],
            timeout=600, env={"UWSGI_RED_COMPONENT_JS": str(transpiled), "UWSGI_RED_FIXTURE": str(fixture_json)})
    out = p.stdout + p.stderr
    assert p.returncode == 0, out[-6000:]
    passed = int(re.search(r"^# pass (\d+)$", out, re.M).group(1))
    failed = int(re.search(r"^# fail (\d+)$", out, re.M).group(1))
    assert failed == 0 and passed == 13, out[-3000:]
