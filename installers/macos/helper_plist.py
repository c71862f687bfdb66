"""Write the packaged launchd plist of the helper from resources/helper/.

    python3 helper_plist.py OUT.plist [APP_PATH]

The resource (written for a venv install) runs ``python3 -I -m wg_backends.helper ARGS``;
the pkg ships the PyInstaller app, so ``ProgramArguments`` becomes the bundled helper
executable followed by the same ARGS. Every other key is kept as is. Exit 2 if the
resource is not in the expected shape (so a changed resource is noticed, not mangled).
Standard library only: runs on the macOS runner and in the Linux tests.
"""

from __future__ import annotations

import plistlib
import sys
from pathlib import Path

RESOURCE = (
    Path(__file__).resolve().parents[2] / "resources" / "helper" / "com.rustronaut.helper.plist"
)
DEFAULT_APP = "/Applications/Rustronaut.app"


def packaged(resource: bytes, app: str = DEFAULT_APP) -> dict[str, object]:
    """The packaged plist as a dict. Raises ValueError if the resource's shape changed."""
    data = plistlib.loads(resource)
    argv = data.get("ProgramArguments")
    if not (isinstance(argv, list) and argv[1:4] == ["-I", "-m", "wg_backends.helper"]):
        raise ValueError(f"unexpected ProgramArguments in {RESOURCE.name}: {argv!r}")
    data["ProgramArguments"] = [f"{app}/Contents/MacOS/rustronaut-helper", *argv[4:]]
    return data


def main(argv: list[str]) -> int:
    """Entry point; returns the exit code."""
    if len(argv) not in (1, 2):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        data = packaged(RESOURCE.read_bytes(), *(argv[1:] or [DEFAULT_APP]))
    except ValueError as exc:
        print(f"helper_plist: {exc}", file=sys.stderr)
        return 2
    Path(argv[0]).write_bytes(plistlib.dumps(data, fmt=plistlib.FMT_XML))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
