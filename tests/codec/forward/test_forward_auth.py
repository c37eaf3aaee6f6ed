from relaybit.codec.forward import auth

SALT = b"0123456789abcdef0123456789abcdef"
NONCE = bytes(range(16))
KEY = b"secret"


def test_ping_digest_vector() -> None:
    assert auth.ping_digest(SALT, b"client.example.com", NONCE, KEY) == (
        b"c04595ac2136aee29622265d29f517a8f5ac08375f131395a0d0e89d5494bd30"
        b"60d2d4f48f757b6caa3bab42127669cf6d775250a56a076ad55920925500a35f"
    )


def test_pong_digest_vector() -> None:
    assert auth.pong_digest(SALT, b"server.example.com", NONCE, KEY) == (
        b"84f113ff067cc7c078417277349c6e49a4c889eabad5ef2c82b364c62f27b9ef"
        b"e6889ec4d4430509b6b8006d44042d3dd95873fc519269ad6928003ddd1daeb1"
    )


def test_password_digest_vector() -> None:
    assert auth.password_digest(bytes(range(0x10, 0x20)), b"alice", b"s3cr3t") == (
        b"b469e5b2e02edec4e396b98615030e025c688a2629056b456822ec2d885c34a5"
        b"94af48a45833a6c09b17b9aec1ccd0adcab444dda4c70ebc510dbe6c485a8c80"
    )


def _check(key: bytes, user: bytes, password: bytes) -> bytes | None:
    auth_salt = bytes(range(0x10, 0x20))
    return auth.check_ping(
        nonce=NONCE,
        auth_salt=auth_salt,
        shared_key=KEY,
        users={b"alice": b"s3cr3t"},
        hostname=b"client",
        salt=SALT,
        digest=auth.ping_digest(SALT, b"client", NONCE, key),
        username=user,
        user_digest=auth.password_digest(auth_salt, user, password),
    )


def test_check_ping_accepts_and_names_the_reason() -> None:
    assert _check(KEY, b"alice", b"s3cr3t") is None
    assert _check(b"wrong", b"alice", b"s3cr3t") == auth.REASON_SHARED_KEY
    assert _check(KEY, b"alice", b"nope") == auth.REASON_USER
    assert _check(KEY, b"bob", b"s3cr3t") == auth.REASON_USER


def test_salt_is_ascii_and_random() -> None:
    a, b = auth.new_salt(), auth.new_salt()
    assert a != b and len(a) == 32 and a.isascii()
    assert len(auth.new_nonce()) == 16
