"""Regenerate (or with ``--check`` verify) the IT templates and the generated docs.

Usage: ``.venv/bin/python scripts/gen_templates.py [--check] [--root DIR]``.

``core.settings.templates`` renders everything from the settings model; the CLI reference
needs the ``rustronaut`` parser, which lives a layer above settings, so this script (not
the settings package) imports the CLI and hands its parser down.
"""

from __future__ import annotations

import sys

from core.cli.main import build_parser
from core.settings.templates import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:], cli_parser=build_parser()))
