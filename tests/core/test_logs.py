"""Logging set-up and redaction, with real secrets: JWTs, X25519 keys, PEM keys, tokens."""

from __future__ import annotations

import base64
import io
import json
import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa, x25519
from hypothesis import given, settings
from hypothesis import strategies as st
from joserfc import jwe, jwt
from joserfc.jwk import ECKey, OctKey

from core import logs
from core.logs import RedactingFilter, RedactingRotatingFileHandler, redact

pytestmark = pytest.mark.unit


_SIGNING_KEY = ECKey.generate_key("P-256")


def real_jwt() -> str:
    """An ID-token-shaped JWS signed ES256 (what an OIDC provider issues)."""
    claims = {"iss": "https://idp.example.com", "sub": "alice", "aud": "rustronaut-desktop"}
    return jwt.encode({"alg": "ES256", "kid": "k1"}, claims, _SIGNING_KEY)


def real_jwe() -> str:
    key = OctKey.generate_key(256)
    return jwe.encrypt_compact({"alg": "dir", "enc": "A256GCM"}, b"refresh-me", key)


def wg_private_key() -> str:
    raw = x25519.X25519PrivateKey.generate().private_bytes_raw()
    return base64.b64encode(raw).decode()


def pem(kind: str) -> str:
    if kind == "rsa-traditional":
        key = rsa.generate_private_key(65537, 2048)
        fmt = serialization.PrivateFormat.TraditionalOpenSSL
    elif kind == "ec-pkcs8":
        key = ec.generate_private_key(ec.SECP256R1())  # type: ignore[assignment]
        fmt = serialization.PrivateFormat.PKCS8
    elif kind == "ed25519-openssh":
        key = ed25519.Ed25519PrivateKey.generate()  # type: ignore[assignment]
        fmt = serialization.PrivateFormat.OpenSSH
    else:
        key = rsa.generate_private_key(65537, 2048)
        enc = serialization.BestAvailableEncryption(b"pw")
        return key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, enc
        ).decode()
    return key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption()).decode()


def body_of(pem_text: str) -> str:
    lines = pem_text.strip().splitlines()
    return next(line for line in lines[1:-1] if ":" not in line and line)


TOKEN = "SlAV32hkKG" + "x9Qe2_Zz-0aB"


@pytest.mark.parametrize(
    "make",
    [
        lambda s: f"ID token {s}" if s.startswith("eyJ") else f"ID token={s}",
        lambda s: f"Authorization: Bearer {s}",
        lambda s: f"authorization={s}",
        lambda s: f"GET /x HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {s}\r\n\r\n",
        lambda s: f"headers: {{'authorization': 'Bearer {s}', 'accept': '*/*'}}",
        lambda s: json.dumps({"access_token": s, "token_type": "Bearer"}),
        lambda s: json.dumps({"refresh_token": s, "expires_in": 300}),
        lambda s: json.dumps({"id_token": s}, indent=2),
        lambda s: str({"access_token": s, "scope": "openid"}),
        lambda s: f"grant_type=refresh_token&refresh_token={s}&client_id=desk",
        lambda s: f"POST body: code={s}&code_verifier={s}&redirect_uri=http://127.0.0.1:5/cb",
        lambda s: f"https://127.0.0.1:8000/cb?code={s}&state=xyz",
        lambda s: f"client_secret={s}",
        lambda s: f"password={s} user=alice",
        lambda s: f"Namespace(password='{s}', verbose=True)",
        lambda s: f"proxy https://alice:{s}@proxy.example.com:3128",
        lambda s: f"Cookie: session={s}; theme=dark",
        lambda s: f"Set-Cookie: sid={s}; HttpOnly",
    ],
)
@pytest.mark.parametrize("secret_kind", ["jwt", "jwe", "opaque"])
def test_tokens_and_credentials_are_redacted(make, secret_kind: str) -> None:  # type: ignore[no-untyped-def]
    secret = {"jwt": real_jwt, "jwe": real_jwe, "opaque": lambda: TOKEN}[secret_kind]()
    text = make(secret)
    clean = redact(text)
    for part in secret.split("."):
        if len(part) >= 8:
            assert part not in clean, clean
    assert "REDACTED" in clean
    assert redact(clean) == clean


@pytest.mark.parametrize(
    "make",
    [
        lambda k: f"[Interface]\nPrivateKey = {k}\nAddress = 10.0.0.2/32\n",
        lambda k: f"interface: wg0\n  public key: x\n  private key: {k}\n  listening port: 51820",
        lambda k: json.dumps({"private_key": k, "public_key": "pub"}),
        lambda k: f"TunnelSpec(private_key='{k}', mtu=1420)",
        lambda k: f"PresharedKey={k}",
        lambda k: f"privateKey: {k}",
    ],
)
def test_wireguard_private_keys_are_redacted(make) -> None:  # type: ignore[no-untyped-def]
    key = wg_private_key()
    clean = redact(make(key))
    assert key not in clean
    assert key[:20] not in clean
    assert "REDACTED" in clean


def test_wireguard_public_keys_and_ordinary_text_survive() -> None:
    public = base64.b64encode(x25519.X25519PrivateKey.generate().public_key().public_bytes_raw())
    text = (
        f"peer {public.decode()} endpoint 192.0.2.1:51820; exit code 1; returncode=2; "
        "token_endpoint=https://idp/token; policy version 7; code=3"
    )
    assert redact(text) == text


@pytest.mark.parametrize("kind", ["rsa-traditional", "ec-pkcs8", "ed25519-openssh", "encrypted"])
@pytest.mark.parametrize("shape", ["raw", "repr", "truncated", "embedded"])
def test_pem_private_keys_are_redacted(kind: str, shape: str) -> None:
    key = pem(kind)
    text = {
        "raw": key,
        "repr": repr(key),
        "truncated": key[: len(key) // 2],
        "embedded": f"loaded key:\n{key}\nand moved on",
    }[shape]
    clean = redact(text)
    assert body_of(key) not in clean
    assert "PRIVATE KEY-----[REDACTED]-----END" in clean
    assert redact(clean) == clean
    if shape == "embedded":
        assert clean.endswith("and moved on")


def test_public_pem_is_kept() -> None:
    public = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    assert redact(public) == public


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_redact_is_idempotent_on_any_text(text: str) -> None:
    once = redact(text)
    assert redact(once) == once


@settings(max_examples=50, deadline=None)
@given(claims=st.dictionaries(st.text(min_size=1, max_size=8), st.text(max_size=40), max_size=5))
def test_any_signed_jwt_is_redacted(claims: dict[str, str]) -> None:
    key = OctKey.import_key(b"k" * 32)
    token = jwt.encode({"alg": "HS256"}, claims, key)
    clean = redact(f"token={token!r} and {token}")
    assert token.split(".")[2] not in clean


# --- the logging set-up -------------------------------------------------------------


@pytest.fixture
def clean_root() -> Iterator[None]:
    root = logging.getLogger()
    level = root.level
    yield
    for handler in list(root.handlers):
        if getattr(handler, "_rustronaut_handler", False):
            root.removeHandler(handler)
            handler.close()
    root.setLevel(level)


def test_setup_writes_redacted_private_log_file(
    tmp_path: Path, clean_root: None, capsys: pytest.CaptureFixture[str]
) -> None:
    jwt_token, wg_key, pem_key = real_jwt(), wg_private_key(), pem("ec-pkcs8")
    log_dir = tmp_path / "logs"
    path = logs.setup("app", "debug", log_dir=log_dir)
    assert path == log_dir / "app.log"
    log = logging.getLogger("core.test")
    log.info("token %s for %r", jwt_token, {"refresh_token": "r-" + TOKEN})
    log.debug("spec PrivateKey = %s", wg_key)
    try:
        raise ValueError(f"bad key material {pem_key} with Bearer {jwt_token}")
    except ValueError:
        log.exception("import failed for password=%s", "hunter2hunter2")
    log.warning("stack here access_token=%s", TOKEN, stack_info=True)
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = path.read_text()
    for secret in (jwt_token.split(".")[1], TOKEN, wg_key, body_of(pem_key), "hunter2hunter2"):
        assert secret not in text
    assert "Traceback (most recent call last)" in text
    assert "ValueError: bad key material -----BEGIN PRIVATE KEY-----[REDACTED]" in text
    assert "Stack (most recent call last)" in text
    assert "import failed for password=[REDACTED]" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(log_dir.stat().st_mode) == 0o700
    assert capsys.readouterr().err == ""  # the app has no console handler


def test_cli_console_gets_warnings_redacted_and_setup_is_idempotent(
    tmp_path: Path, clean_root: None, capsys: pytest.CaptureFixture[str]
) -> None:
    logs.setup("cli", log_dir=tmp_path)
    logs.setup("cli", log_dir=tmp_path)
    ours = [h for h in logging.getLogger().handlers if getattr(h, "_rustronaut_handler", False)]
    assert len(ours) == 2
    log = logging.getLogger("core.cli.test")
    log.info("quiet on the console")
    log.warning("refresh failed: %s", json.dumps({"refresh_token": TOKEN}))
    err = capsys.readouterr().err
    assert "quiet on the console" not in err
    assert 'refresh failed: {"refresh_token": "[REDACTED]"}' in err
    assert TOKEN not in (tmp_path / "cli.log").read_text()
    assert "quiet on the console" in (tmp_path / "cli.log").read_text()


def test_handlers_added_before_setup_also_see_redacted_records(
    tmp_path: Path, clean_root: None
) -> None:
    stream = io.StringIO()
    foreign = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(foreign)
    try:
        logs.setup("app", log_dir=tmp_path)
        logging.getLogger("core.test").warning("got %s", real_jwt())
    finally:
        root.removeHandler(foreign)
    assert stream.getvalue() == "got [REDACTED-JWT]\n"


def test_setup_defaults_to_the_platform_log_dir(
    tmp_path: Path, clean_root: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert logs.setup("app") == tmp_path / "rustronaut" / "log" / "app.log"


def test_setup_rejects_unknown_level(tmp_path: Path, clean_root: None) -> None:
    with pytest.raises(ValueError, match="unknown log level 'loud'"):
        logs.setup("cli", "loud", log_dir=tmp_path)


def test_rotated_files_stay_private(tmp_path: Path) -> None:
    handler = RedactingRotatingFileHandler(tmp_path / "x.log", maxBytes=200, backupCount=2)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("rotation.test")
    logger.propagate = False
    logger.addHandler(handler)
    try:
        for i in range(30):
            logger.warning("line %d with client_secret=%s", i, TOKEN)
    finally:
        logger.removeHandler(handler)
        handler.close()
    files = sorted(tmp_path.iterdir())
    assert [f.name for f in files] == ["x.log", "x.log.1", "x.log.2"]
    for f in files:
        assert stat.S_IMODE(f.stat().st_mode) == 0o600
        assert TOKEN not in f.read_text()


def test_filter_survives_bad_format_args() -> None:
    record = logging.LogRecord("t", logging.INFO, __file__, 1, "%d items %s", ("x",), None)
    assert RedactingFilter().filter(record) is True
    assert "unformattable" in record.getMessage()


def test_control_characters_in_a_record_cannot_forge_lines_or_drive_the_terminal(
    tmp_path: Path, clean_root: None
) -> None:
    """A provider's words in a log record: ESC sequences and newlines become visible
    escapes, so one record stays one line and a terminal tailing the log is not driven."""
    path = logs.setup("app", log_dir=tmp_path)
    provider_says = "boom\x1b[2J\x1b]8;;https://evil\x07\nFAKE ERROR root: all good\u202e"
    logging.getLogger("core.auth").warning("refused: %s", provider_says)
    for handler in logging.getLogger().handlers:
        handler.flush()
    text = path.read_text()
    assert "\x1b" not in text
    assert "\u202e" not in text
    assert not any(line.startswith("FAKE") for line in text.splitlines())
    assert "boom\\x1b[2J\\x1b]8;;https://evil\\x07\\nFAKE ERROR root: all good\\u202e" in text
