"""Automated model release tagging: diff two archives, decide the next SemVer, write the model card,
claim the tag and publish the release (docs/how-to/release-automation.md)."""

RELEASE, PLAN = "release", "plan"
MODES = (RELEASE, PLAN)  # release: tag, release, upload; plan: decide only, no write request
