"""``wg show <if> dump`` parsing against real captured outputs."""

from __future__ import annotations

import pytest

from tests.wg_backends.fakes import data
from wg_backends.errors import BackendError
from wg_backends.status import parse_wg_dump

pytestmark = pytest.mark.unit


def test_client_dump_with_handshake() -> None:
    st = parse_wg_dump(data("wg-show-dump-client.txt"), interface="rtw0", backend="wg-quick",
                       now=1795778053)  # fmt: skip
    assert st.up
    assert st.public_key == "Ul+X0srYiOgjgExF1nqG2J4nXrMiR0Sfm1ckrTZ6kSY="
    assert st.listen_port == 60185
    (peer,) = st.peers
    assert peer.endpoint == "10.231.0.1:51820"
    assert peer.allowed_ips == ("10.232.0.0/24", "10.233.0.0/24")
    assert peer.latest_handshake == 1795778043
    assert peer.handshake_age == 10
    assert (st.rx_bytes, st.tx_bytes) == (1932, 932)
    assert peer.persistent_keepalive == 25
    assert st.handshake_age == 10
    assert st.endpoint == "10.231.0.1:51820"


def test_private_and_preshared_keys_never_kept() -> None:
    text = data("wg-show-dump-nohandshake.txt")
    private = text.split("\t")[0]
    st = parse_wg_dump(text, interface="rtw0", backend="wg-quick", now=0)
    assert private not in repr(st)
    assert private not in repr(st.peers)  # the psk there equals the private key of the capture


def test_dump_without_handshake_and_ipv6_endpoint() -> None:
    st = parse_wg_dump(data("wg-show-dump-nohandshake.txt"), interface="x", backend="b", now=5)
    first, second = st.peers
    assert first.endpoint is None
    assert first.latest_handshake is None
    assert first.handshake_age is None
    assert first.allowed_ips == ("10.9.0.0/24", "fd00:9::/64")
    assert second.endpoint == "[fd00::1]:51820"
    assert second.persistent_keepalive == 15
    assert st.handshake_age is None
    assert st.endpoint == "[fd00::1]:51820"


def test_gateway_dump() -> None:
    st = parse_wg_dump(data("wg-show-dump-gateway.txt"), interface="gw", backend="b", now=0)
    assert st.listen_port == 51820
    assert st.peers[0].allowed_ips == ("10.232.0.2/32",)


@pytest.mark.parametrize("text", ["", "a\tb\n", "a\tb\tc\td\nx\ty\n", "a\tb\t1\toff\n"
                                  "p\t(none)\t(none)\t(none)\tNaN\t0\t0\toff\n"])  # fmt: skip
def test_malformed_dump_raises(text: str) -> None:
    with pytest.raises(BackendError):
        parse_wg_dump(text, interface="x", backend="b")
