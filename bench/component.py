"""Component-boundary cost: `uwsgi.decode-head-spans` (the recommended form:
spans into the caller's packet) and `uwsgi.decode-head` (the text form: every
var as its own string) on one captured nginx packet
(core/tests/vectors/pkt_get_query_many_headers.bin, 30 vars) through
dist/uwsgi-red.component.wasm under wasmtime, each against the same Rust
implementation called natively (so the native side builds exactly the values
the host receives); plus the component's size.

The timing loop is the Rust binary `component-bench` (bench/crates/component-bench,
over host-tests/wasmtime-host; bounded: 5 rounds of 5000 calls per variant, the
variants interleaved, best round). Timings are noisy on a shared machine, so
when valgrind is installed each variant also runs under callgrind
(BENCH_CALLGRIND=0 skips it): collection switched on only inside the
measured loop (`--toggle-collect=*cg_window*`, after a warm-up call), the
instructions divided by the calls. The count is the same from run to run and
independent of machine load. Prints:
  BENCH component_call_ratio <wasmtime / native, spans form> x
  BENCH component_text_call_ratio <wasmtime / native, text form> x
  BENCH component_wasm_bytes <size> bytes
  BENCH component_<variant>_instructions <per call> instructions   (callgrind)
  BENCH component_call_instructions_ratio <v> x                      (spans form)
  BENCH component_text_call_instructions_ratio <v> x
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACT = ROOT / "dist" / "uwsgi-red.component.wasm"
BIN = ROOT / "target" / "host-test" / "component-bench"
CG_CALLS = 1000
# component-bench --callgrind variants, as (variant, BENCH name part).
CG_VARIANTS = [("wasm-spans", "decode_head_spans"), ("native-spans", "native_decode_head_spans"),
               ("wasm-text", "decode_head"), ("native-text", "native_decode_head_owned"),
               ("wasm-empty", "empty_call")]


def callgrind(variant, workdir):
    out = Path(workdir) / f"cg.{variant}.out"
    p = subprocess.run(["valgrind", "--tool=callgrind", "--smc-check=all-non-file",
                        "--toggle-collect=*cg_window*", f"--callgrind-out-file={out}",
                        str(BIN), "--callgrind", variant, str(CG_CALLS)],
                       cwd=ROOT, capture_output=True, text=True, timeout=1800)
    if p.returncode != 0:
        sys.exit(f"callgrind {variant} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    m = re.search(r"Collected : (\d+)", p.stderr)
    if not m:
        sys.exit(f"callgrind {variant}: no count:\n{p.stderr[-3000:]}")
    return int(m.group(1)) / CG_CALLS


def main():
    if not ARTIFACT.exists():
        sys.exit(f"{ARTIFACT} missing: run ./build.sh build first")
    argv = ["cargo", "build", "--locked", "-q", "-p", "component-bench", "--features", "host",
            "--profile", "host-test", "--bin", "component-bench"]
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        sys.exit(f"component-bench build failed ({p.returncode}):\n{p.stderr[-4000:]}")
    p = subprocess.run([str(BIN)], cwd=ROOT, capture_output=True, text=True, timeout=3600)
    if p.returncode != 0:
        sys.exit(f"component-bench failed ({p.returncode}):\n{p.stderr[-4000:]}")
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith(("BENCH ", "# "))]
    if not any(ln.startswith("BENCH component_call_ratio ") for ln in lines):
        sys.exit(f"component-bench printed no ratio:\n{p.stdout}")
    print("\n".join(lines), flush=True)

    if os.environ.get("BENCH_CALLGRIND") == "0" or not shutil.which("valgrind"):
        print("# callgrind skipped (BENCH_CALLGRIND=0 or no valgrind)")
        return
    with tempfile.TemporaryDirectory() as work:
        ir = {v: callgrind(v, work) for v, _ in CG_VARIANTS}
    print(f"# callgrind: instructions per call, {CG_CALLS} calls after one warm-up call")
    for v, name in CG_VARIANTS:
        print(f"BENCH component_{name}_instructions {ir[v]:.0f} instructions")
    print(f"BENCH component_call_instructions_ratio {ir['wasm-spans'] / ir['native-spans']:.2f} x")
    print(f"BENCH component_text_call_instructions_ratio {ir['wasm-text'] / ir['native-text']:.2f} x")


if __name__ == "__main__":
    main()
