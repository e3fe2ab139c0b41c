"""Version states and effectivity windows, shared by BOM and routing versions.

Invariants:
- A version moves draft -> released -> obsolete, never back; released content is immutable.
- Effectivity is a closed interval of dates: ``valid_from`` and ``valid_to`` are both effective days
  (``valid_to`` inclusive; ``None`` means open-ended). ``valid_to`` is never before ``valid_from``.
- Only released versions are effective; two released versions of one item never overlap.
- The one change a released version accepts is being end-dated when a newer revision supersedes it
  (``valid_to`` moves to the day before the new revision starts); its content never changes.
"""

from __future__ import annotations

from datetime import date, timedelta
from enum import StrEnum

from mes_common.errors import DomainError


class VersionState(StrEnum):
    DRAFT = "draft"
    RELEASED = "released"
    OBSOLETE = "obsolete"


class VersionError(DomainError):
    """A version that cannot be saved, released or obsoleted (names item, revision and why)."""

    code = "bad_version"


def check_window(what: str, valid_from: date, valid_to: date | None) -> None:
    if valid_to is not None and valid_to < valid_from:
        raise VersionError(f"{what}: valid_to {valid_to.isoformat()} is before valid_from {valid_from.isoformat()}")


def effective_on(valid_from: date, valid_to: date | None, day: date) -> bool:
    """True when ``day`` lies in the window (both ends inclusive)."""
    return valid_from <= day and (valid_to is None or day <= valid_to)


def overlaps(a_from: date, a_to: date | None, b_from: date, b_to: date | None) -> bool:
    """True when two inclusive windows share at least one day."""
    return (b_to is None or a_from <= b_to) and (a_to is None or b_from <= a_to)


def window_text(valid_from: date, valid_to: date | None) -> str:
    return f"{valid_from.isoformat()}..{valid_to.isoformat() if valid_to else 'open'}"


def check_transition(what: str, current: VersionState, target: VersionState) -> None:
    allowed = {
        VersionState.DRAFT: {VersionState.RELEASED},
        VersionState.RELEASED: {VersionState.OBSOLETE},
        VersionState.OBSOLETE: set(),
    }
    if target not in allowed[current]:
        raise VersionError(f"{what} is {current.value}; it cannot become {target.value}")


def check_no_overlap(
    what: str, revision: str, valid_from: date, valid_to: date | None, released: list[tuple[str, date, date | None]]
) -> None:
    """Refuse a release whose window shares a day with another released revision of the same item."""
    for other_rev, other_from, other_to in released:
        if other_rev != revision and overlaps(valid_from, valid_to, other_from, other_to):
            raise VersionError(
                f"{what}: window {window_text(valid_from, valid_to)} overlaps released revision {other_rev} "
                f"({window_text(other_from, other_to)}); end-date or obsolete it first"
            )


def superseded_end(valid_from: date, other_from: date, other_to: date | None) -> date | None:
    """The new ``valid_to`` of an earlier released revision that a new one starting ``valid_from`` supersedes,
    or None when it is not superseded (it starts on/after the new one, or already ends before it)."""
    if other_from >= valid_from or (other_to is not None and other_to < valid_from):
        return None
    return valid_from - timedelta(days=1)
