"""Subcommands of ``rustronaut``: every module here defines ``register(subparsers)``.

``register`` adds one or more subparsers and sets ``func`` on each: a callable taking the
parsed ``argparse.Namespace`` and returning the process exit code (sync or async).
"""
