"""Every key Fluent Bit 5.1.1 declares for in_http and in_elasticsearch is accepted.

The lists are Fluent Bit 5.1.1's config maps: the plugin's own
(plugins/in_http/http.c, plugins/in_elasticsearch/in_elasticsearch.c), the
shared HTTP server's (src/http_server/flb_http_server_config_map.c), a server
input's ``net.*`` (src/flb_downstream.c), ``oauth2.*`` JWT validation
(src/flb_oauth2_jwt.c) and the ``tls.*`` keys of an input (src/flb_input.c).
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import pytest
import trustme

from relaybit.config.origin import Origin
from relaybit.config.schema import RawProperty
from relaybit.plugins.base import INPUT_COMMON, InputContext
from relaybit.plugins.inputs.elasticsearch import ElasticsearchInput
from relaybit.plugins.inputs.http import HttpInput

HTTP_SERVER = {
    "http_server.http2": "off",
    "http_server.idle_timeout": "5s",
    "http_server.buffer_max_size": "2M",
    "http_server.buffer_chunk_size": "256K",
    "http_server.max_connections": "100",
    "http_server.workers": "1",
    "http_server.ingress_queue_event_limit": "100",
    "http_server.ingress_queue_byte_limit": "1M",
    "http2": "on",
    "buffer_max_size": "1M",
    "buffer_chunk_size": "64K",
    "max_connections": "50",
    "workers": "1",
}
NET = {
    "net.share_port": "off",
    "net.backlog": "64",
    "net.io_timeout": "5s",
    "net.accept_timeout": "5s",
    "net.accept_timeout_log_error": "off",
    "net.keepalive": "on",
}
OAUTH2 = {
    "oauth2.validate": "on",
    "oauth2.issuer": "https://issuer.test",
    "oauth2.jwks_url": "http://127.0.0.1:9/jwks.json",
    "oauth2.allowed_audience": "logs",
    "oauth2.allowed_clients": "agent-a",
    "oauth2.jwks_refresh_interval": "60",
}
TLS = {
    "tls": "on",
    "tls.verify": "off",
    "tls.verify_client_cert": "off",
    "tls.verify_hostname": "off",
    "tls.debug": "1",
    "tls.vhost": "logs.example",
    "tls.ca_path": "/etc/ssl/certs",
    "tls.ca_file": "ca.pem",
    "tls.crt_file": "server.crt",
    "tls.key_file": "server.key",
    "tls.key_passwd": "",
    "tls.min_version": "TLSv1.2",
    "tls.max_version": "TLSv1.3",
    "tls.ciphers": "ECDHE+AESGCM",
}
IN_HTTP = {
    "add_remote_addr": "on",
    "remote_addr_key": "ADDR",
    "success_header": "X-Ok yes",
    "tag_key": "t",
    "successful_response_code": "200",
    "enable_health_endpoint": "on",
}
IN_ELASTICSEARCH = {
    "tag_key": "t",
    "meta_key": "@m",
    "hostname": "es.local",
    "version": "8.1.0",
}


@pytest.fixture
def certs(tmp_path: Path) -> Path:
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(tmp_path / "server.crt")
    cert.private_key_pem.write_to_path(tmp_path / "server.key")
    ca.cert_pem.write_to_path(tmp_path / "ca.pem")
    return tmp_path


@pytest.mark.parametrize(
    ("cls", "own"), [(HttpInput, IN_HTTP), (ElasticsearchInput, IN_ELASTICSEARCH)]
)
def test_every_fluent_bit_key_is_accepted(cls: Any, own: dict[str, str], certs: Path) -> None:
    keys = {**own, **HTTP_SERVER, **NET, **OAUTH2, **TLS, "port": "0", "listen": "127.0.0.1"}
    origin = Origin("fb.conf", 1)
    raw = [RawProperty(k, v, origin) for k, v in keys.items()]
    opts = (INPUT_COMMON + cls.options).resolve(raw, section="[INPUT] x")
    for key in keys:
        assert opts.is_set(key), key
    ctx = InputContext(name="x.0", plugin="x", options=opts, emit=_emit, config_dir=certs)
    plugin = cls(ctx)
    settings = plugin.server.settings
    assert settings.max_body == 2 << 20  # the http_server.* spelling wins over the alias
    assert settings.http2 is False and settings.max_connections == 100
    assert settings.ssl is not None and plugin.jwt is not None
    assert settings.ssl.minimum_version == ssl.TLSVersion.TLSv1_2


async def _emit(tag: str, data: bytes, records: int) -> None:
    return None
