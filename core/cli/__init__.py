"""The ``rustronaut`` command-line front end.

``core.cli.main`` builds one argparse parser; each module of ``core.cli.commands``
contributes subcommands through ``register(subparsers)``, so features add commands
without editing a shared list. Commands print human tables by default and ``--json``
where the command supports it. No Qt here.
"""
