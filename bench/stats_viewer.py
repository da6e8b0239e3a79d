"""Browser stats viewer: decode + derive of the largest stats vector in real
headless Chromium, from the same starting point the page's poll has (the
bytes of the fetched body, a Uint8Array): the Wasm module
(plugins/stats-viewer/www/pkg) through the page's own calls (decodeTargets,
the target's getters app.js reads, stats(), view(), rates() against the
previous snapshot) against UTF-8
decoding + JSON.parse + the same derivation in plain JS (www/js-derive.js);
21 rounds of 200 iterations each (alternating), median round. Runs
plugins/stats-viewer/e2e/viewer.e2e.mjs --bench-only against a loopback page
server. Prints:
  BENCH viewer_wasm_decode_derive_us <v> us
  BENCH viewer_js_parse_derive_us <v> us
  BENCH viewer_wasm_vs_js_ratio <wasm / js> x
With VIEWER_BASELINE_PKG=<folder under www/> (e.g. a copy of an older pkg/),
that build is timed in the same rounds too, for before/after from one run:
  BENCH viewer_baseline_wasm_decode_derive_us <v> us
  BENCH viewer_baseline_wasm_vs_js_ratio <baseline / js> x
"""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLUGIN = ROOT / "plugins" / "stats-viewer"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    if not (PLUGIN / "www" / "pkg" / "stats_viewer_bg.wasm").exists():
        sys.exit("plugins/stats-viewer/www/pkg missing: run ./build.sh build first")
    subprocess.run(["bash", str(ROOT / "scripts" / "setup.d" / "browser.sh")], check=True)
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "--bind", "127.0.0.1", "--directory",
                               str(PLUGIN / "www"), str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    sys.exit("page server did not start")
                time.sleep(0.05)
        env = {**os.environ, "VIEWER_PAGE_URL": f"http://127.0.0.1:{port}/",
               "VIEWER_VECTORS": str(ROOT / "core" / "tests" / "vectors")}
        p = subprocess.run(["node", str(PLUGIN / "e2e" / "viewer.e2e.mjs"), "--bench-only"], env=env,
                           cwd=PLUGIN, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    finally:
        server.terminate()
        server.wait(10)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith(("BENCH ", "# "))]
    if p.returncode != 0 or not any(ln.startswith("BENCH viewer_wasm_vs_js_ratio ") for ln in lines):
        sys.exit(f"viewer bench failed ({p.returncode}):\n{p.stdout[-4000:]}{p.stderr[-2000:]}")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
