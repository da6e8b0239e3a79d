"""Envoy bootstraps with tcp_proxy listeners, optionally behind the
uwsgi-tcp network filter: shared by the host tests and bench/uwsgi_tcp.py."""

RED_TAGS = ("method", "code", "code_class", "route", "service", "protocol", "reason")


def envoy_yaml(admin, listeners, clusters, wasm_path, plugin_config, buckets_us, flush_interval=None):
    """listeners: (name, port, cluster, with_filter); clusters: (name, port)."""
    tags = "".join(f'  - {{tag_name: {k}, regex: "({k}=\\\\.=(.*?);\\\\.;)"}}\n' for k in RED_TAGS)
    ls = ""
    for name, port, cluster, with_filter in listeners:
        filt = f"""
      - name: envoy.filters.network.wasm
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm
          config:
            name: uwsgi_tcp
            root_id: uwsgi_tcp
            configuration:
              "@type": type.googleapis.com/google.protobuf.StringValue
              value: '{plugin_config}'
            vm_config:
              vm_id: uwsgi_tcp
              runtime: envoy.wasm.runtime.v8
              code: {{local: {{filename: {wasm_path}}}}}""" if with_filter else ""
        ls += f"""
  - name: {name}
    address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}
    filter_chains:
    - filters:{filt}
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: {name}
          cluster: {cluster}"""
    cs = "".join(f"""
  - name: {name}
    type: STATIC
    connect_timeout: 1s
    load_assignment:
      cluster_name: {name}
      endpoints:
      - lb_endpoints:
        - endpoint: {{address: {{socket_address: {{address: 127.0.0.1, port_value: {port}}}}}}}""" for name, port in clusters)
    flush = f"stats_flush_interval: {flush_interval}\n" if flush_interval else ""
    return f"""admin:
  address: {{socket_address: {{address: 127.0.0.1, port_value: {admin}}}}}
stats_config:
  stats_tags:
{tags}  histogram_bucket_settings:
  - match: {{suffix: "_microseconds"}}
    buckets: [{", ".join(str(b) for b in buckets_us)}]
{flush}static_resources:
  listeners:{ls}
  clusters:{cs}
"""
