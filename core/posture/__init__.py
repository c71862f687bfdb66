"""Device posture: typed facts about this device, collected per OS, watched for drift.

Collectors (one small module per fact family and OS: ``linux/``, ``windows/``,
``macos/``, plus ``common/`` for checks that work everywhere) call OS tools through an
injected ``CommandRunner`` and turn their output into ``core.wire.posture.Fact`` values.
Each collector stands alone: a missing tool, a hang (bounded by a per-call timeout) or
odd output makes *its* facts unknown with a reason — never a crash, never a wrong true.
``collectors_for`` picks the platform's set; ``collect`` runs them concurrently;
``PostureMonitor`` re-collects on a schedule, runs cheap watchers every few seconds and
reports changed facts; ``remediation`` says how to fix a failed fact on each OS.

Errors::

    PostureError                 anything posture-specific (ValueError)
     ├── CommandError            an OS tool could not give an answer
     │    ├── ToolMissingError   the tool is not installed (not on PATH)
     │    ├── ToolTimeoutError   the tool did not finish within its timeout
     │    └── ToolFailedError    the tool exited non-zero in a way the parser cannot use
     ├── ParseError              the tool's output is not what the parser knows
     └── PostureConfigError      IT's posture configuration is invalid

Collectors raise these; ``collect`` maps them to unknown facts with a reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.lazy import lazy_exports
from core.posture.remediation import remediation

if TYPE_CHECKING:
    from core.posture.collector import (
        CollectContext,
        Collector,
        PostureConfig,
        Unknown,
        collect,
        run_collector,
    )
    from core.posture.errors import (
        CommandError,
        ParseError,
        PostureConfigError,
        PostureError,
        ToolFailedError,
        ToolMissingError,
        ToolTimeoutError,
    )
    from core.posture.factory import collectors_for, current_os
    from core.posture.model import FactChange, diff_facts
    from core.posture.monitor import PostureMonitor
    from core.posture.report import make_report, signed_report
    from core.posture.runner import CommandResult, CommandRunner, SubprocessRunner

__all__ = [
    "CollectContext",
    "Collector",
    "CommandError",
    "CommandResult",
    "CommandRunner",
    "FactChange",
    "ParseError",
    "PostureConfig",
    "PostureConfigError",
    "PostureError",
    "PostureMonitor",
    "SubprocessRunner",
    "ToolFailedError",
    "ToolMissingError",
    "ToolTimeoutError",
    "Unknown",
    "collect",
    "collectors_for",
    "current_os",
    "diff_facts",
    "make_report",
    "remediation",
    "run_collector",
    "signed_report",
]

# Exports load on first use (PEP 562): importing one submodule (``core.posture.errors``…)
# or the package does not pull in every submodule and its third-party dependencies.
_LAZY: dict[str, str] = {
    "CollectContext": "core.posture.collector",
    "Collector": "core.posture.collector",
    "CommandError": "core.posture.errors",
    "CommandResult": "core.posture.runner",
    "CommandRunner": "core.posture.runner",
    "FactChange": "core.posture.model",
    "ParseError": "core.posture.errors",
    "PostureConfig": "core.posture.collector",
    "PostureConfigError": "core.posture.errors",
    "PostureError": "core.posture.errors",
    "PostureMonitor": "core.posture.monitor",
    "SubprocessRunner": "core.posture.runner",
    "ToolFailedError": "core.posture.errors",
    "ToolMissingError": "core.posture.errors",
    "ToolTimeoutError": "core.posture.errors",
    "Unknown": "core.posture.collector",
    "collect": "core.posture.collector",
    "collectors_for": "core.posture.factory",
    "current_os": "core.posture.factory",
    "diff_facts": "core.posture.model",
    "make_report": "core.posture.report",
    "run_collector": "core.posture.collector",
    "signed_report": "core.posture.report",
}


__getattr__, __dir__ = lazy_exports(globals(), _LAZY)
