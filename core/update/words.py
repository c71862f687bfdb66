"""The employee's words for updates: one line, with a next step.

:func:`code_words` is the one place that turns an ``update_*`` code into a title and a
next step (:class:`~core.update.errors.UpdateError` carries them); :func:`outcome_words`
words a check's :class:`~core.update.updater.Outcome` (the engine's notice, ``rustronaut
update``) and :func:`settled_words` what became of an update started earlier
(:mod:`core.update.pending`). :func:`worth_a_notice` says which refusals the employee is
told about unasked: a tampered, stale or older release, or a failed installer (IT must
hear of those); not a transient download failure, a stopped helper, an update turned off
or a version pinned by IT (logged only, tried again at the next check). Imports nothing
of ``core.update`` at run time (the errors import it). Pure; any thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from core.i18n import QT_TRANSLATE_NOOP, translate

if TYPE_CHECKING:
    from core.update.errors import UpdateError
    from core.update.updater import Outcome

__all__ = [
    "NOTICE_CODES",
    "UPDATE_CODES",
    "code_words",
    "outcome_words",
    "refusal_words",
    "settled_words",
    "worth_a_notice",
]


#: Refusals shown as a notice by the scheduled check.
NOTICE_CODES: Final = frozenset(
    {
        "update_signature",
        "update_malformed",
        "update_stale",
        "update_rollback",
        "update_size",
        "update_hash",
        "update_install",
    }
)

_TAMPER_NEXT: Final = QT_TRANSLATE_NOOP(
    "core.update.words",
    "Nothing was installed. Tell IT: the update server may be misconfigured or tampered with.",
)
_RETRY_NEXT: Final = QT_TRANSLATE_NOOP(
    "core.update.words",
    "Nothing was installed; Rustronaut tries again in a few hours. If it keeps happening, "
    "contact IT.",
)

_UNKNOWN: Final = (QT_TRANSLATE_NOOP("core.update.words", "it could not be checked"), _RETRY_NEXT)

#: code -> (what happened, next step); both marked for translation.
_REASONS: Final[dict[str, tuple[str, str]]] = {
    "update_signature": (
        QT_TRANSLATE_NOOP(
            "core.update.words", "it is not signed by your organization's update key"
        ),
        _TAMPER_NEXT,
    ),
    "update_malformed": (
        QT_TRANSLATE_NOOP("core.update.words", "its manifest is malformed"),
        _TAMPER_NEXT,
    ),
    "update_stale": (
        QT_TRANSLATE_NOOP(
            "core.update.words", "its signed manifest has expired (an old release was offered)"
        ),
        _TAMPER_NEXT,
    ),
    "update_rollback": (
        QT_TRANSLATE_NOOP(
            "core.update.words", "it is older than a release already seen (a rollback)"
        ),
        _TAMPER_NEXT,
    ),
    "update_size": (
        QT_TRANSLATE_NOOP(
            "core.update.words", "the download is not the size its signed manifest names"
        ),
        _TAMPER_NEXT,
    ),
    "update_hash": (
        QT_TRANSLATE_NOOP("core.update.words", "the installer does not match its signed hash"),
        _TAMPER_NEXT,
    ),
    "update_install": (
        QT_TRANSLATE_NOOP("core.update.words", "the installer failed"),
        QT_TRANSLATE_NOOP(
            "core.update.words",
            "Rustronaut keeps running the installed version. Collect diagnostics "
            "(rustronaut diag) and contact IT.",
        ),
    ),
    "update_pinned": (
        QT_TRANSLATE_NOOP("core.update.words", "your organization pins another version"),
        QT_TRANSLATE_NOOP("core.update.words", "Nothing to do: IT chooses the version."),
    ),
    "update_disabled": (
        QT_TRANSLATE_NOOP(
            "core.update.words", "your organization has turned automatic updates off"
        ),
        QT_TRANSLATE_NOOP(
            "core.update.words", "Nothing to do: IT installs updates on this computer."
        ),
    ),
    "update_platform": (
        QT_TRANSLATE_NOOP("core.update.words", "this computer is not updated by Rustronaut itself"),
        QT_TRANSLATE_NOOP(
            "core.update.words",
            "On Linux, update with your package manager (apt or dnf), as IT set it up.",
        ),
    ),
    "update_helper": (
        QT_TRANSLATE_NOOP("core.update.words", "the Rustronaut helper service is not running"),
        QT_TRANSLATE_NOOP(
            "core.update.words",
            "Restart the computer (or reinstall Rustronaut), then run: rustronaut update",
        ),
    ),
    "update_busy": (
        QT_TRANSLATE_NOOP("core.update.words", "another update is being installed"),
        QT_TRANSLATE_NOOP("core.update.words", "Wait a few minutes, then run: rustronaut update"),
    ),
    "update_fetch": (
        QT_TRANSLATE_NOOP("core.update.words", "the update server could not be reached"),
        _RETRY_NEXT,
    ),
    "update_download": (
        QT_TRANSLATE_NOOP("core.update.words", "the installer could not be downloaded"),
        _RETRY_NEXT,
    ),
    "update_current": (
        QT_TRANSLATE_NOOP("core.update.words", "this version is already installed"),
        QT_TRANSLATE_NOOP("core.update.words", "Nothing to do."),
    ),
    "update_failed": _UNKNOWN,
}

#: Every ``update_*`` error code (each is also in ``core.errors.CODES``).
UPDATE_CODES: Final = frozenset(_REASONS)


def worth_a_notice(exc: UpdateError) -> bool:
    """Whether the scheduled check tells the employee about this refusal (see above)."""
    return exc.code in NOTICE_CODES


def code_words(code: str) -> tuple[str, str]:
    """``("Update refused: <why>", "<next step>")`` for ``code``, in the installed
    language (an unknown code gets the words of ``update_failed``)."""
    why, next_step = _REASONS.get(code, _UNKNOWN)
    headline = translate("core.update.words", "Update refused: {reason}").format(
        reason=translate("core.update.words", why)
    )
    return headline, translate("core.update.words", next_step)


def refusal_words(exc: UpdateError) -> tuple[str, str]:
    """``exc``'s headline and next step (:func:`code_words` of its code)."""
    return code_words(exc.code)


def outcome_words(outcome: Outcome, installed: str) -> str:
    """One line for a check's ``outcome`` (``installed``: this build's version)."""
    if outcome.state == "started":
        return translate("core.update.words", "Installing update {version}…").format(
            version=outcome.version
        )
    if outcome.state == "available":
        return translate("core.update.words", "Update {version} is available").format(
            version=outcome.version
        )
    if outcome.state == "current":
        return translate("core.update.words", "Rustronaut {version} is up to date").format(
            version=installed
        )
    return translate(
        "core.update.words", "Automatic updates are off or not set up on this computer"
    )


def settled_words(installed: bool, version: str) -> tuple[str, str]:
    """What became of the update to ``version`` started earlier: ``("Updated to
    <version>", "")`` or ``("The update to <version> did not install", <next step>)``."""
    if installed:
        return translate("core.update.words", "Updated to {version}").format(version=version), ""
    return (
        translate("core.update.words", "The update to {version} did not install").format(
            version=version
        ),
        translate(
            "core.update.words",
            "Rustronaut keeps running the installed version and tries again at the next "
            "check. If it keeps failing, collect diagnostics (rustronaut diag) and contact IT.",
        ),
    )
