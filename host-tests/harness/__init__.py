"""One host-test harness for host-tests/, bench/ and the demo.

- render(example, substitutions): example configs with checked substitutions
  (each original text must occur the stated number of times).
- Envoy configurations: red_filter_config, uwsgi_stats_config,
  uwsgi_tcp_example_config, tcp_proxy_config (envoy.py) — the only renderer.
- Hosts / start_*: uWSGI, gunicorn, Envoy, nginx, Prometheus on free
  loopback ports, stopped by PID.
Usage: host-tests/harness/README.md.
"""
from .client import get_text, http, wait_for
from .envoy import (OTEL_BUCKETS_US, RED_TAGS, Envoy, cluster_yaml, demo_config, envoy_validate, plugin_config_sub,
                    red_filter_config, stats_tags_yaml, tcp_proxy_config, uwsgi_stats_config,
                    uwsgi_tcp_example_config, yaml_single_quoted)
from .hosts import (Hosts, influx_query, influxd_bin, nginx_globals, start_envoy, start_gunicorn, start_influxdb,
                    start_nginx, start_prometheus, start_registry, start_telegraf, start_uwsgi, start_uwsgi_ini,
                    telegraf_bin)
from .paths import APPS, CACHE, DIST, EXAMPLES, ROOT, VENV
from .procs import (Proc, cli_bin, envoy_bin, fail, free_port, gunicorn_bin, nginx_bin, prometheus_bin, registry_bin,
                    require_binary, skopeo_bin, uwsgi_bin, wait_port, wasm)
from .prom import parse_prometheus, samples, value
from .render import RenderError, Sub, render, render_to

__all__ = [n for n in dir() if not n.startswith("_")]
