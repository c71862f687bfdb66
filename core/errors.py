"""What every error the employee can see must carry: a title, the detail and a next step.

Each package keeps its own exception tree (drawn in its docstring) and gives its base error
class-level ``title``, ``next_step`` and ``code`` defaults, overridden by subclasses where
the words differ; ``detail`` is the message (what went wrong, naming the bad part). That
shape is the :class:`UserFacing` protocol: structural, so ``wg_backends`` (which imports
nothing from ``core``) satisfies it without importing this module, and mypy checks every
package's base against it (``tests/core/test_user_facing_types.py``).

``core.engine.errors.explain`` is the one place that turns any exception into the
employee's words; the CLI prints those words and exits with the code's exit status.

Class-level words are marked for translation with ``QT_TRANSLATE_NOOP(<module>, text)``
and stay English on the class; :func:`translated` (used by ``explain``) gives them in the
installed language.

``code`` is one of :data:`CODES`, the stable machine-readable causes shared by
``ErrorInfo.code`` and the local API's error replies (docs/local-api.md). Never put a
class name, an errno string or a traceback in ``title``, ``detail`` or ``next_step``.
"""

from __future__ import annotations

from typing import Final, Protocol, runtime_checkable

from core.i18n import QT_TRANSLATE_NOOP, translate

__all__ = ["CODES", "GENERIC_NEXT_STEP", "UserFacing", "UserFacingError", "translated"]

#: Every stable error code (ErrorInfo.code, local API error replies).
CODES: Final = frozenset(
    {
        "signed_out",
        "sign_in_failed",
        "always_on",
        "reason_too_short",
        "controller_unreachable",
        "tls",
        "clock_skew",
        "captive_portal",
        "helper_unavailable",
        "helper_refused",
        "tunnel_down",
        "policy_invalid",
        "device_revoked",
        "no_gateway",
        "setting_locked",
        "setting_invalid",
        "engine_not_running",
        "engine_already_running",
        "bad_request",
        "unsupported_version",
        "internal",
        # core.update (core.update.words.UPDATE_CODES): a signed update refused or failed
        "update_fetch",
        "update_download",
        "update_signature",
        "update_malformed",
        "update_stale",
        "update_rollback",
        "update_current",
        "update_pinned",
        "update_disabled",
        "update_platform",
        "update_size",
        "update_hash",
        "update_install",
        "update_helper",
        "update_busy",
        "update_failed",
    }
)

#: The next step when nothing more specific is known.
GENERIC_NEXT_STEP: Final = QT_TRANSLATE_NOOP(
    "core.errors",
    "Try again. If it keeps happening, collect diagnostics (rustronaut diag) and contact IT.",
)


@runtime_checkable
class UserFacing(Protocol):
    """An error that can be shown to the employee as it is.

    ``title`` is a short headline, ``detail`` what went wrong (the message), ``next_step``
    what the employee can do, ``code`` one of :data:`CODES`. All plain text.
    """

    title: str
    next_step: str
    code: str

    @property
    def detail(self) -> str:
        """What went wrong, in words (no class name, no errno, no traceback)."""
        ...


def translated(exc: object, attr: str) -> str:
    """``exc``'s words ``attr`` (``title``, ``next_step``) in the installed language.

    Class-level words are marked with ``QT_TRANSLATE_NOOP`` in the context of the module
    that defines them (``default_<attr>`` counts: ``core.auth`` keeps its default next
    step there), so they are translated in the context of each class in the MRO that
    holds them until one has a translation. Words set per instance are returned as they
    are: whoever made them translated them then. Never raises.
    """
    value = getattr(exc, attr, "")
    if not isinstance(value, str) or not value:
        return ""
    for cls in type(exc).__mro__:
        for name in (attr, f"default_{attr}"):
            if cls.__dict__.get(name) == value:
                out = translate(cls.__module__, value)
                if out != value:
                    return out
    return value


class UserFacingError(Exception):
    """A convenient base for ``core`` packages' errors: class-level words, message as detail.

    Subclasses override ``title``, ``next_step`` and ``code`` as class attributes (or set
    them per instance when the words depend on the failure); each instance holds them in
    the language installed when it was made (:func:`translated`).
    """

    title: str = QT_TRANSLATE_NOOP("core.errors", "Something went wrong")
    next_step: str = GENERIC_NEXT_STEP
    code: str = "internal"

    def __init__(self, *args: object) -> None:
        super().__init__(*args)
        # Each error carries its words in the language installed when it was raised (the
        # class keeps English): whoever shows ``title``/``next_step`` needs no lookup.
        self.title = translated(self, "title")
        self.next_step = translated(self, "next_step")

    @property
    def detail(self) -> str:
        """The message (``str(self)``)."""
        return str(self)
