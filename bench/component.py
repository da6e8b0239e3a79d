"""Component-boundary cost: `uwsgi.decode-head` on one captured nginx packet
(core/tests/vectors/pkt_get_query_many_headers.bin, 30 vars) through
dist/uwsgi-red.component.wasm under wasmtime, against the same Rust
implementation called natively; plus the component's size.

The timing loop is the Rust binary `component-bench` of
host-tests/wasmtime-host (bounded: 5 rounds of 5000 calls per variant, best
round). Prints its BENCH lines:
  BENCH component_call_ratio <wasmtime / native> x
  BENCH component_wasm_bytes <size> bytes
"""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACT = ROOT / "dist" / "uwsgi-red.component.wasm"


def main():
    if not ARTIFACT.exists():
        sys.exit(f"{ARTIFACT} missing: run ./build.sh build first")
    argv = ["cargo", "run", "--locked", "-q", "-p", "uwsgi-red-wasmtime-host", "--features", "host",
            "--profile", "host-test", "--bin", "component-bench"]
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        sys.exit(f"component-bench failed ({p.returncode}):\n{p.stderr[-4000:]}")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith(("BENCH ", "# "))]
    if not any(ln.startswith("BENCH component_call_ratio ") for ln in lines):
        sys.exit(f"component-bench printed no ratio:\n{p.stdout}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
