"""Where things are: the repository, built plugins, test apps, caches."""
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DIST = ROOT / "dist"
EXAMPLES = ROOT / "examples"
APPS = ROOT / "host-tests" / "apps"
CACHE = Path(os.environ.get("UWSGI_RED_CACHE", Path.home() / ".cache" / "uwsgi-red"))
VENV = Path(os.environ.get("UWSGI_RED_VENV", CACHE / "venv"))
