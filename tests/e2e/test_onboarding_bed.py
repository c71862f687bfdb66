"""First run on the test bed (issue 18, "Done when"): from an empty profile, the real
onboarding window finds the controller from the employee's work email, saves it, and the
client signs in and reaches "connected" with a resource reachable through the tunnel
(root).

The reference controller serves its own ``/.well-known/rustronaut`` at
``https://acme.example`` (behind the bed's TLS front, certificate from the bed's test
CA, which plays the OS trust store); the bed's public DNS names ``acme.example`` and
publishes ``_rustronaut`` TXT records. No controller URL and no managed settings exist
anywhere before the window runs. With the same bed and the same profile, hostile answers
are refused in words and nothing is saved: a record pointing at a plain-http controller,
a TXT record naming another controller than the web site, and a rogue LAN host claiming
the domain (its DNS, its own certificate, a record and a TXT record naming itself).
See controller/demo/bed.py and controller/demo/harness.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from controller.demo.bed import ONBOARDING_DOMAIN, ROGUE_CONTROLLER, Bed, make_bed, run
from controller.demo.harness import ONBOARDING_EMAIL, onboard, session

pytestmark = [pytest.mark.e2e, pytest.mark.root, pytest.mark.netns, pytest.mark.timeout(180)]

CONTROLLER = f"https://{ONBOARDING_DOMAIN}"
WIKI = "http://wiki.corp.example/"


@pytest.fixture(scope="module")
def bed() -> Iterator[Bed]:
    with make_bed(onboarding=True, rogue_lan=True) as b:
        yield b
    assert not [ns for ns in run(["ip", "netns", "list"]).stdout.split() if b.tag in ns]
    assert not list(b.workdir.parent.glob(f"rte-bed-{b.tag}-*"))


def _refused(row: dict[str, Any], words: str) -> None:
    """The window refused in words with a next step, and the profile is still empty."""
    assert row["stage"] == "failed", row
    assert words in row["status"], row
    assert row["next_step"], row
    assert "Errno" not in row["status"]
    assert "Traceback" not in row["status"]
    assert row["saved"] is None, row
    assert row["controller_url"] == "", row  # nothing saved


async def test_hostile_records_are_refused_in_words_and_nothing_is_saved(bed: Bed) -> None:
    plain, split = await onboard(bed, ["alice@plain.example", "alice@split.example"])
    assert plain["empty_before"]  # an empty profile: the window is what a first run shows
    _refused(plain, "is not secure (http://)")
    _refused(split, "split.example names two different controllers")
    assert "'https://elsewhere.example' in its DNS records" in split["status"]

    # The rogue LAN's resolver claims acme.example: its address, its TXT record naming
    # itself, and an https site with a certificate of its own making pointing at itself.
    queries = bed.rogue_dns_queries()
    bed.point_resolver_at_rogue()
    try:
        (rogue,) = await onboard(bed, [ONBOARDING_EMAIL])
    finally:
        bed.restore_resolver()
    assert bed.rogue_dns_queries() > queries  # the rogue really answered
    _refused(rogue, "presented a certificate Rustronaut does not trust")
    assert ROGUE_CONTROLLER not in rogue["status"]


async def test_a_domain_without_a_web_record_is_found_through_its_txt_record(bed: Bed) -> None:
    (row,) = await onboard(bed, ["carol@dns-only.example"], confirm=False)
    assert row["stage"] == "found", row
    assert row["url"] == CONTROLLER
    assert row["how"] == "Published in the DNS records of dns-only.example."
    assert row["controller_url"] == ""  # shown for confirmation only


async def test_onboarding_from_an_empty_profile_reaches_connected(bed: Bed) -> None:
    wiki = bed.resource_packets("wiki")
    async with session(bed, onboarding=ONBOARDING_EMAIL) as s:
        found = s.onboarding
        assert found is not None
        assert found["empty_before"]  # no controller URL, no managed settings
        assert (found["url"], found["saved"], found["controller_url"]) == (CONTROLLER,) * 3
        assert found["how"] == f"Published by {ONBOARDING_DOMAIN} on its web site."
        assert not any((bed.workdir / "managed-empty").iterdir())

        snap = await s.wait_state("connected", within=30)
        assert snap["user"] is not None
        assert s.tunnel_exists()
        got = s.curl(WIKI)
        assert got.returncode == 0, got
        assert got.stdout.endswith("200"), got
        assert "through the Rustronaut tunnel" in got.stdout
        assert bed.resource_packets("wiki") > wiki
        # Nothing managed: the controller's policy root was pinned on first use.
        assert "first one seen" in (snap["policy_trust_notice"] or "")
