"""pytest glue for the host tests. Everything lives in harness/ (shared
with bench/ and the demo); the names are re-exported here so that
`from conftest import ...` in existing tests keeps working.

A missing host binary is a test failure with install instructions, never a
skip: CI must not go green without the host having run.
"""
import pytest

from harness import (APPS, CACHE, DIST, ROOT, VENV, Envoy, Hosts, Proc, envoy_bin,  # noqa: F401
                     envoy_validate, free_port, get_text, gunicorn_bin, http, nginx_bin, parse_prometheus,
                     prometheus_bin, render, require_binary, samples, uwsgi_bin, value, wait_for, wait_port,
                     wasm)


@pytest.fixture(scope="session")
def logdir(tmp_path_factory):
    return tmp_path_factory.mktemp("hosts")


@pytest.fixture(scope="module")
def hosts(tmp_path_factory, request):
    """Hosts started in this module, stopped by PID when the module ends."""
    with Hosts(tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])) as h:
        yield h
