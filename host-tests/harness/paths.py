"""Where things are: the repository, built plugins, test apps, caches."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# UWSGI_RED_DIST: test another build's modules (default: this checkout's dist/).
DIST = Path(os.environ.get("UWSGI_RED_DIST", ROOT / "dist"))
EXAMPLES = ROOT / "examples"
APPS = ROOT / "host-tests" / "apps"
CACHE = Path(os.environ.get("UWSGI_RED_CACHE", Path.home() / ".cache" / "uwsgi-red"))
VENV = Path(os.environ.get("UWSGI_RED_VENV", CACHE / "venv"))
