"""The release decision: from the previous version and the diff (and what was asked for) to the next version.

- First release (no previous version of this model): ``initial-version`` (default 1.0.0), bump ``initial``.
- Nothing changed: bump ``none``, nothing is released, whatever bump was asked for (a requested bump
  raises the level of a release; it never makes a release of an unchanged model).
- Otherwise the bump is the diff's, or the requested one when that is higher; a requested bump lower
  than the diff needs is refused (exit 1), naming the changes and the bump they need: a breaking change
  never ships as a patch.
- ``prerelease``: the version becomes the next release candidate of that version (``1.3.0-rc.1``, then
  ``-rc.2``), so stable releases keep their numbers and candidates never become the base of a diff.
"""

from __future__ import annotations

from dataclasses import dataclass

from czann_ci.compare.diff import ModelDiff
from czann_ci.errors import InvalidModelError
from czann_ci.versions import INITIAL, NONE, Version, level_rank, next_candidate_number


class BumpTooLowError(InvalidModelError):
    """The requested bump is lower than the model's changes need."""


@dataclass(frozen=True)
class Decision:
    bump: str  # initial | major | minor | patch | none
    version: Version | None  # None when nothing is released
    previous: Version | None
    diff: ModelDiff | None  # None on a first release


def decide(
    previous: Version | None,
    diff: ModelDiff | None,
    *,
    requested: str = "auto",
    initial: Version,
    prerelease: bool = False,
    taken: list[Version] | None = None,
) -> Decision:
    """``taken``: every version this model's tags already name (for release-candidate numbers)."""
    if previous is None or diff is None:
        version = initial
        if prerelease and not initial.is_prerelease:
            version = initial.candidate(next_candidate_number(initial, taken or []))
        return Decision(INITIAL, version, None, None)
    needed = diff.bump
    if needed == NONE:
        return Decision(NONE, None, previous, diff)
    if requested != "auto" and level_rank(requested) < level_rank(needed):
        reasons = "; ".join(dict.fromkeys(change.reason for change in diff.decisive()))
        raise BumpTooLowError(
            f"{requested} is lower than this model's changes need: {reasons} needs a {needed} release "
            f"(set bump: {needed} or auto)",
            field="bump",
        )
    bump = needed if requested == "auto" else requested
    version = previous.bumped(bump)
    if prerelease:
        version = version.candidate(next_candidate_number(version, taken or []))
    return Decision(bump, version, previous, diff)
