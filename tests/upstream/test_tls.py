import ssl
from pathlib import Path

import pytest
import trustme

from relaybit.errors import ConfigError
from relaybit.upstream.node import TLSSettings
from relaybit.upstream.tls import client_context, server_context, server_hostname


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def test_off_gives_none() -> None:
    assert client_context(TLSSettings()) is None
    assert server_context(TLSSettings()) is None
    assert server_hostname(TLSSettings(), "h") is None


def test_client_verify_on_by_default_with_ca_file(ca: trustme.CA, tmp_path: Path) -> None:
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls = TLSSettings(enabled=True, ca_file="ca.pem")
    ctx = client_context(tls, tmp_path)
    assert ctx is not None
    assert ctx.verify_mode == ssl.CERT_REQUIRED and not ctx.check_hostname
    assert client_context(tls, tmp_path) is ctx  # cached
    hostname_ctx = client_context(TLSSettings(enabled=True, verify_hostname=True), None)
    assert hostname_ctx is not None and hostname_ctx.check_hostname


def test_client_verify_off(ca: trustme.CA) -> None:
    ctx = client_context(TLSSettings(enabled=True, verify=False))
    assert ctx is not None and ctx.verify_mode == ssl.CERT_NONE


def test_sni_is_vhost_or_host() -> None:
    assert server_hostname(TLSSettings(enabled=True), "node1") == "node1"
    assert server_hostname(TLSSettings(enabled=True, vhost="v.example"), "node1") == "v.example"


def test_client_certificate_with_password(ca: trustme.CA, tmp_path: Path) -> None:
    cert = ca.issue_cert("client.example")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "c.pem"))
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(cert.private_key_pem.bytes(), password=None)
    (tmp_path / "k.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.BestAvailableEncryption(b"pw"),
        )
    )
    good = TLSSettings(enabled=True, crt_file="c.pem", key_file="k.pem", key_passwd="pw")
    assert client_context(good, tmp_path) is not None
    bad = TLSSettings(enabled=True, crt_file="c.pem", key_file="k.pem", key_passwd="nope")
    with pytest.raises(ConfigError, match=r"tls\.crt_file"):
        client_context(bad, tmp_path)


def test_server_needs_cert_and_key(ca: trustme.CA, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tls\.crt_file"):
        server_context(TLSSettings(enabled=True))
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "s.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "s.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    plain = server_context(TLSSettings(enabled=True, crt_file="s.pem", key_file="s.key"), tmp_path)
    assert plain is not None and plain.verify_mode == ssl.CERT_NONE
    mutual = server_context(
        TLSSettings(enabled=True, crt_file="s.pem", key_file="s.key", ca_file="ca.pem"), tmp_path
    )
    assert mutual is not None and mutual.verify_mode == ssl.CERT_REQUIRED


def test_missing_ca_file_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"tls\.ca_file"):
        client_context(TLSSettings(enabled=True, ca_file="nope.pem"), tmp_path)


def test_verify_client_cert_decides(ca: trustme.CA, tmp_path: Path) -> None:
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "s.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "s.key"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    tls = TLSSettings(enabled=True, crt_file="s.pem", key_file="s.key", ca_file="ca.pem")
    off = server_context(tls, tmp_path, require_client_cert=False)
    assert off is not None and off.verify_mode == ssl.CERT_NONE
    no_ca = TLSSettings(enabled=True, crt_file="s.pem", key_file="s.key")
    with pytest.raises(ConfigError, match="needs tls"):
        server_context(no_ca, tmp_path, require_client_cert=True)


def test_min_max_version_and_ciphers(ca: trustme.CA, tmp_path: Path) -> None:
    """tls.min_version / tls.max_version / tls.ciphers on clients and servers (Fluent Bit 5)."""
    cert = ca.issue_cert("localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(tmp_path / "s.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "s.key"))
    tls = TLSSettings(
        enabled=True,
        crt_file="s.pem",
        key_file="s.key",
        min_version="tlsv1.2",
        max_version="tlsv1.2",
        ciphers="ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256",
    )
    for ctx in (server_context(tls, tmp_path), client_context(tls, tmp_path)):
        assert ctx is not None
        assert ctx.minimum_version == ssl.TLSVersion.TLSv1_2
        assert ctx.maximum_version == ssl.TLSVersion.TLSv1_2
        names = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
        assert names <= {"ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES128-GCM-SHA256"}
    bad = TLSSettings(enabled=True, ciphers="NO-SUCH-CIPHER")
    with pytest.raises(ConfigError, match=r"tls\.ciphers"):
        client_context(bad, tmp_path)
