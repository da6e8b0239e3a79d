"""Kept for existing callers: the builder is harness.tcp_proxy_config."""
from harness.envoy import RED_TAGS  # noqa: F401
from harness.envoy import tcp_proxy_config as envoy_yaml  # noqa: F401
