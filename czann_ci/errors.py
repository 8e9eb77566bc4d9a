"""User-facing errors. Each class carries the process exit code the CLI and the action use.

Exit codes: 0 success, 1 invalid model/metadata or failed validation, 2 usage error,
3 conversion failed, 4 publish failed, 5 the forge could not be reached, 6 invalid image.
"""

from __future__ import annotations

from collections.abc import Sequence


class CzannError(Exception):
    """Base of every error a user is meant to read: one line, no traceback."""

    exit_code = 1
    title = "error"  # what went wrong, in two words (annotation titles)

    def __init__(self, message: str, *, file: str | None = None, field: str | None = None) -> None:
        self.message = message
        self.file = file
        self.field = field
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.file}: {self.without_file()}" if self.file else self.without_file()

    def without_file(self) -> str:
        """The line without the file, for a place that shows the file apart (an annotation's ``file``)."""
        return f"{self.field}: {self.message}" if self.field else self.message


class InvalidModelError(CzannError):
    """The model or its metadata breaks the spec (exit 1). ``findings`` holds every problem found."""

    exit_code = 1
    title = "invalid model"

    def __init__(
        self, message: str, *, file: str | None = None, field: str | None = None, findings: Sequence = ()
    ) -> None:
        super().__init__(message, file=file, field=field)
        self.findings = list(findings)


class UsageError(CzannError):
    """A bad option, a missing file, contradictory inputs (exit 2)."""

    exit_code = 2
    title = "usage error"


class ConversionError(CzannError):
    """The source model could not be turned into ONNX (exit 3)."""

    exit_code = 3
    title = "conversion failed"


class PublishError(CzannError):
    """The release or the asset upload failed (exit 4)."""

    exit_code = 4
    title = "publish failed"


class ImageError(CzannError):
    """An image or label file cannot be read or does not fit the model (exit 6)."""

    exit_code = 6
    title = "invalid image"


class IncomparableBaselineError(UsageError):
    """A baseline model that answers another question than the evaluated one (another kind, other
    classes, other inputs): nothing to compare (exit 2). The release gate tells it from other usage
    errors by its class."""

    title = "incomparable baseline"


class ForgeUnreachableError(CzannError):
    """No connection to the forge's API could be made: a name that does not resolve, a refused or timed-out
    connection (exit 5). Not a PublishError: the forge never answered, so nothing was refused or failed
    there, and read-only modes end here too."""

    exit_code = 5
    title = "forge unreachable"


def first_line(error: object) -> str:
    """The first non-blank line of an exception's (or any object's) text, else its type name."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def shown(text: str, limit: int = 120) -> str:
    """A name or value from a file as one short printable line: control characters escaped, long text cut
    (a member name may be 65535 characters and hold newlines)."""
    printable = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text[: limit + 1])
    if len(text) > limit:
        return f"{printable[:limit]}... ({len(text):,} characters)"
    return printable


EXIT_CODES = {
    0: "success",
    InvalidModelError.exit_code: "invalid model or metadata, or failed validation",
    UsageError.exit_code: "usage error (bad option, missing file, contradictory inputs)",
    ConversionError.exit_code: "conversion failed",
    PublishError.exit_code: "publish failed",
    ForgeUnreachableError.exit_code: "the forge could not be reached",
    ImageError.exit_code: "invalid image (an image or label file cannot be read or does not fit the model)",
}
