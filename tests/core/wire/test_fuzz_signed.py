"""Fuzzing the signed-object decoders and the control-plane client's decoders.

Inputs are mostly almost-valid: real signed payloads (bundle, key endorsement, posture
report) with bytes inserted, replaced or cut, keys duplicated, numbers respelled, and
nesting deepened; plus arbitrary JSON and bytes. Signed-object cases are signed for real
(so the signature passes and the payload decoding is what is exercised) and go through
the real verifiers. The control-plane cases go through the real ``ControlPlaneClient``
over an in-memory httpx transport (its answer and error-answer decoders) and the event
stream's block parser.

The property: each decoder returns, or raises its own package's error — never anything
else (no ``RecursionError``, ``UnicodeDecodeError``, ``KeyError``...) — and peak memory
stays bounded. A few hundred examples per case in the default run; ≥ 100,000 under the
``fuzz`` marker (``pytest -m fuzz tests/core/wire/test_fuzz_signed.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import resource
import time
from collections.abc import Callable

import httpx
import msgspec
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.controlplane import ControlPlaneClient
from core.controlplane.client import _parse_sse
from core.controlplane.errors import ControlPlaneError
from core.policy.errors import BundleRejected
from core.policy.verify import verify_bundle
from core.wire.canonical import CanonicalJsonError, check_depth
from core.wire.endorsement import ENDORSEMENT_TYP, EndorsementError, endorse, verify_endorsement
from core.wire.policy import (
    BUNDLE_TYP,
    FactCondition,
    PolicyBundle,
    Resource,
    Rule,
    UserInfo,
    encode_bundle,
)
from core.wire.posture import POSTURE_TYP, Fact, PostureReport, PostureReportError, verify_report
from core.wire.signing import SignatureError, b64url, b64url_decode, key_id

pytestmark = pytest.mark.unit

FUZZ_EXAMPLES = 100_000
DEFAULT_EXAMPLES = 200
BATCH = 2_000
_MEMORY_SLACK_KB = 96 * 1024

KEY = Ed25519PrivateKey.generate()


def sign(payload: bytes, key: Ed25519PrivateKey, *, typ: str, kid: str | None = None) -> str:
    """A JWS compact string as ``core.wire.signing.sign`` makes it, without joserfc's
    per-call setup (the decoders, not the signer, are under test)."""
    header = msgspec.json.encode({"alg": "Ed25519", "kid": kid or KID, "typ": typ})
    signing_input = f"{b64url(header)}.{b64url(payload)}".encode("ascii")
    return f"{signing_input.decode('ascii')}.{b64url(key.sign(signing_input))}"


KID = key_id(KEY.public_key())
KEYS = {KID: KEY.public_key()}
NOW = int(time.time())


def _seed_bundle() -> bytes:
    return encode_bundle(
        PolicyBundle(
            version=7,
            device_id="dev-1",
            issued_at=NOW - 60,
            expires_at=NOW + 3600,
            user=UserInfo(subject="alice", groups=("eng",)),
            resources=(
                Resource(id="git", name="Git", hosts=("git.corp.example",), ports=(22, 443)),
            ),
            rules=(
                Rule(
                    id="r1",
                    effect="allow",
                    resources=("git",),
                    conditions=FactCondition(fact="posture.disk.encrypted", op="eq", value=True),
                ),
            ),
        )
    )


def _seed_report() -> bytes:
    report = PostureReport(
        device_id="dev-1",
        nonce="n" * 22,
        issued_at=float(NOW),
        facts=(Fact.of("disk.encrypted", True, float(NOW)),),
    )
    return msgspec.json.encode(report)


SEEDS = {
    "bundle": _seed_bundle(),
    "endorsement": b64url_decode(
        endorse(KEY.public_key(), KEY, not_before=NOW - 10, not_after=NOW + 10).split(".")[1]
    ),
    "report": _seed_report(),
}

_FRAGMENTS = [b'"version":', b"-0", b"1.0", b"1e2", b"[", b"{", b"]", b"}", b",", b'"',
              b"\\u0000", b"\xff", b"\xc3", b"NaN", b"Infinity", b'"version":9,', b"null",
              b" ", b"\\ud800", b'""', b":"]  # fmt: skip
_KEYS = [b"version", b"kid", b"nonce", b"device_id", b"role", b"type", b"status"]


def _random_json(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(8 if depth < 4 else 5)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.randint(-(2**70), 2**70)
    if kind == 3:
        return rng.choice([0.0, -0.0, 1.5, 1e300, -1e-300, rng.random()])
    if kind == 4:
        return "".join(chr(rng.randrange(0x20, 0x2FF)) for _ in range(rng.randrange(12)))
    if kind in (5, 6):
        return {
            rng.choice(["version", "kid", "x", "type", ""]): _random_json(rng, depth + 1)
            for _ in range(rng.randrange(4))
        }
    return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]


def mutate(seed: bytes, rng: random.Random) -> bytes:
    """``seed`` with a few edits: insert, replace or cut bytes; duplicate a key; nest."""
    data = bytearray(seed)
    for _ in range(rng.randrange(5)):
        at = rng.randrange(len(data) + 1)
        kind = rng.randrange(5)
        if kind == 0:
            data[at:at] = rng.choice(_FRAGMENTS)
        elif kind == 1:
            data[at : at + rng.randint(1, 8)] = rng.randbytes(rng.randrange(9))
        elif kind == 2:
            del data[at:]
        elif kind == 3 and data.endswith(b"}"):
            data[-1:] = b',"' + rng.choice(_KEYS) + b'":1}'
        else:
            depth = rng.choice([2, 63, 64, 65, 1_000, 3_000])
            data[at:at] = b"[" * depth + b"]" * rng.choice([0, depth])
    return bytes(data)


def _payloads(seed: bytes) -> st.SearchStrategy[bytes]:
    """Mostly mutations of ``seed``, some random JSON, some random bytes. One drawn
    integer drives a private RNG: Hypothesis's own bookkeeping would otherwise cost more
    than the decoders under test, and 100,000 examples must fit in a nightly run."""

    def make(n: int) -> bytes:
        rng = random.Random(n)
        pick = rng.randrange(10)
        if pick < 7:
            return mutate(seed, rng)
        if pick < 9:
            return msgspec.json.encode(_random_json(rng))
        return rng.randbytes(rng.randrange(257))

    return st.integers(0, 2**64).map(make)


def _check_bundle(payload: bytes) -> None:
    token = sign(payload, KEY, typ=BUNDLE_TYP, kid=KID)
    with contextlib.suppress(BundleRejected):
        verify_bundle(token, KEYS, device_id="dev-1", now=NOW)


def _check_endorsement(payload: bytes) -> None:
    token = sign(payload, KEY, typ=ENDORSEMENT_TYP, kid=KID)
    with contextlib.suppress(SignatureError, EndorsementError):
        verify_endorsement(token, KEYS, now=NOW)


def _check_report(payload: bytes) -> None:
    token = sign(payload, KEY, typ=POSTURE_TYP, kid=KID)
    with contextlib.suppress(SignatureError, PostureReportError):
        verify_report(
            token,
            KEY.public_key(),
            device_id="dev-1",
            expected_nonce="n" * 22,
            now=NOW,
            max_age_s=60,
        )


def _check_depth(payload: bytes) -> None:
    with contextlib.suppress(CanonicalJsonError):
        check_depth(payload)


def _check_sse(payload: bytes) -> None:
    with contextlib.suppress(ControlPlaneError):
        _parse_sse(b"event: policy_changed\ndata: " + payload.replace(b"\n", b" "))


_LOOP = asyncio.new_event_loop()


def _client_call(status: int) -> Callable[[bytes], None]:
    """The real client's answer (200) or error-answer (>= 300) decoding of ``body``; one
    client for every example (its connection pool is what a real client reuses too)."""
    current = [b""]
    ctype = "application/json" if status == 200 else "application/problem+json"

    def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, content=current[0], headers={"content-type": ctype})

    client = ControlPlaneClient("http://127.0.0.1:9", transport=httpx.MockTransport(answer))

    def check(body: bytes) -> None:
        current[0] = body

        async def call() -> None:
            with contextlib.suppress(ControlPlaneError):
                await client.discovery()

        _LOOP.run_until_complete(call())

    return check


_discovery_seed = msgspec.json.encode(
    {
        "api_version": "v1",
        "issuer": "https://id.example.com",
        "client_id": "c",
        "scopes": ["openid"],
        "policy_keys": {"keys": []},
    }
)
_problem_seed = b'{"type":"about:blank","title":"t","status":500,"detail":"d"}'

CASES: dict[str, tuple[Callable[[bytes], None], st.SearchStrategy[bytes]]] = {
    "bundle": (_check_bundle, _payloads(SEEDS["bundle"])),
    "endorsement": (_check_endorsement, _payloads(SEEDS["endorsement"])),
    "report": (_check_report, _payloads(SEEDS["report"])),
    "depth": (_check_depth, _payloads(SEEDS["bundle"])),
    "client-answer": (_client_call(200), _payloads(_discovery_seed)),
    "client-problem": (_client_call(503), _payloads(_problem_seed)),
    "client-event": (_check_sse, _payloads(b'{"type":"policy_changed","at":1}')),
}


def _run(prop: Callable[[bytes], None], strategy: st.SearchStrategy[bytes], n: int) -> None:
    """Run ``prop`` on ``n`` examples in rounds of at most ``BATCH`` (Hypothesis keeps
    every example of a run; rounds keep that bounded) and check peak memory."""
    logging.disable(logging.WARNING)  # refusals are logged; pytest would keep them all
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    test = settings(
        max_examples=min(n, BATCH),
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
    )(given(strategy)(prop))
    try:
        for _ in range(-(-n // BATCH)):
            test()
    finally:
        logging.disable(logging.NOTSET)
    grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown < _MEMORY_SLACK_KB, f"peak memory grew by {grown} KiB"


@pytest.mark.parametrize("case", list(CASES))
def test_decoders_never_crash(case: str) -> None:
    _run(*CASES[case], DEFAULT_EXAMPLES)


@pytest.mark.fuzz
@pytest.mark.timeout(7200)
@pytest.mark.parametrize("case", list(CASES))
def test_fuzz_decoders(case: str) -> None:
    _run(*CASES[case], FUZZ_EXAMPLES)


def test_seeds_are_valid() -> None:
    """The mutations start from documents that are accepted as they are."""
    _check_bundle(SEEDS["bundle"])
    verify_bundle(
        sign(SEEDS["bundle"], KEY, typ=BUNDLE_TYP, kid=KID), KEYS, device_id="dev-1", now=NOW
    )
    verify_endorsement(sign(SEEDS["endorsement"], KEY, typ=ENDORSEMENT_TYP, kid=KID), KEYS, now=NOW)
