"""The nginx the benchmarks compare with: static files from one directory, tuned as a site would run it
(sendfile, keep-alive, no access log), its pid, logs and temporary files in the run's own directory."""

from __future__ import annotations

from pathlib import Path


def nginx_conf(tmp: Path, listen: str, docroot: Path, locations: str) -> Path:
    """Write ``tmp/nginx.conf``: one server on ``listen`` (``ip:port``) serving ``docroot``, with
    ``locations`` (nginx ``location`` blocks) inside it; returns its path."""
    conf = tmp / "nginx.conf"
    conf.write_text(f"""
user root;
worker_processes auto;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen {listen};
        root {docroot};
{locations}
    }}
}}
""")
    return conf
