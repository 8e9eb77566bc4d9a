"""The step's inputs: read from GitHub's ``INPUT_*`` (hyphens kept: ``INPUT_ZEN-BLUE``), their underscore
spelling, or GitLab's ``CZANN_*`` variables; checked strictly (booleans, choices, versions, paths)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from czann_ci.ci.gate import GATE_INPUT_NAMES, read_comment, read_gate
from czann_ci.ci.input_reader import TRUE_SPELLINGS, InputReader
from czann_ci.ci.paths import PathRule
from czann_ci.errors import UsageError
from czann_ci.format.specs import is_zen_version
from czann_ci.plan import DEFAULT_ATOL, LAYOUTS, OUTPUT_FORMATS, ConvertOptions, is_tolerance
from czann_ci.publish.forges import CiContext, commit_variable, row_of, token_help
from czann_ci.publish.models import OVERWRITE_MODES
from czann_ci.redaction import short_secret
from czann_ci.release import MODES as RELEASE_MODES
from czann_ci.release.forge import check_release_access
from czann_ci.sources.registry import carries_metadata, self_describing
from czann_ci.versions import BUMP_CHOICES, DEFAULT_INITIAL_VERSION, parse_version, require_version

if TYPE_CHECKING:
    from czann_ci.release.gate import GateRequest

MODES = ("validate", "package", "publish", *RELEASE_MODES)
FORGE_MODES = ("publish", *RELEASE_MODES)  # the modes that send requests to the forge
# Every input action.yml declares (tests check the two agree).
INPUT_NAMES = (
    "model",
    "metadata",
    "license",
    "output",
    "format",
    "spec",
    "zen-blue",
    "zen-core",
    "opset",
    "input-layout",
    "bgr-to-rgb",
    "sigmoid-to-softmax",
    "atol",
    "mode",
    "bump",
    "initial-version",
    "release-tag",
    "tag-prefix",
    "draft",
    "prerelease",
    "overwrite",
    "checksum",
    "token",
    "api-url",
    "preview",
    "force",
    "allow-outside",
    "debug",
    *GATE_INPUT_NAMES,
)


@dataclass(frozen=True)
class ActionInputs:
    """Every input, parsed, checked against each other and resolved against the workspace."""

    conversion: ConvertOptions  # what `czann convert` would be given (the output is chosen by the step)
    output: Path | None  # None: dist/<name>-<version>.<format>
    mode: str
    release_tag: str
    tag_prefix: str
    version: str
    draft: bool
    prerelease: bool
    overwrite: str
    checksum: bool
    token: str = field(repr=False)
    token_kind: str  # job (the CI's own job token) | private (a token given as an input)
    api_url: str
    preview: bool = False
    force: bool = False  # replace an existing output file (as `czann convert --force`)
    rule: PathRule | None = None
    bump: str = "auto"  # release and plan modes
    initial_version: str = DEFAULT_INITIAL_VERSION
    gate: GateRequest | None = None  # eval-images: the quality gate (action_gate.py)
    comment: bool = False  # plan mode: keep one comment on the pull/merge request up to date

    @property
    def metadata(self) -> Path | None:
        """The metadata file; None when the model is a bioimage.io package that describes itself."""
        return Path(self.conversion.meta) if self.conversion.meta is not None else None  # type: ignore[arg-type]


def read_inputs(reader: InputReader, ctx: CiContext) -> ActionInputs:
    """Parse and cross-check the inputs; raises UsageError naming the input at fault."""
    conversion, output = _read_conversion(reader, ctx)
    mode = reader.choice("mode", MODES) or ("publish" if ctx.pushed_tag else "package")
    release_tag = _release_tag(reader, ctx, mode)
    bump = reader.choice("bump", BUMP_CHOICES, "auto")
    initial_version = reader.text("initial-version", DEFAULT_INITIAL_VERSION)
    require_version(initial_version, "initial-version")
    tag_prefix = reader.text("tag-prefix", "model-v")
    token = reader.text("token") or ctx.default_token
    token_kind = "private" if reader.text("token") else "job"
    api_url = (reader.text("api-url") or ctx.api_url).rstrip("/")
    if mode in FORGE_MODES:
        _check_forge_context(mode, token, token_kind, api_url, ctx)
    return ActionInputs(
        conversion=conversion,
        output=output,
        mode=mode,
        release_tag=release_tag,
        tag_prefix=tag_prefix,
        version=_version_of(release_tag, tag_prefix, ctx.commit),
        draft=reader.boolean("draft"),
        prerelease=reader.boolean("prerelease"),
        overwrite=reader.choice("overwrite", OVERWRITE_MODES, "if-changed"),
        checksum=reader.boolean("checksum", True),
        token=token,
        token_kind=token_kind,
        api_url=api_url,
        preview=reader.boolean("preview"),
        force=reader.boolean("force"),
        rule=path_rule(reader, ctx),
        bump=bump,
        initial_version=initial_version,
        gate=read_gate(reader, path_rule(reader, ctx), mode),
        comment=read_comment(reader, mode, ctx.forge, token_kind),
    )


def _release_tag(reader: InputReader, ctx: CiContext, mode: str) -> str:
    """The tag to publish to: given, or pushed; release and plan modes decide it themselves."""
    if mode in RELEASE_MODES:
        if reader.text("release-tag"):
            raise UsageError(
                f"is set, but {mode} mode decides the tag itself (tag-prefix + the next version); remove it",
                field="release-tag",
            )
        return ""
    release_tag = reader.text("release-tag") or ctx.pushed_tag
    if mode == "publish" and not release_tag:
        raise UsageError(
            "is publish but no tag was pushed and release-tag is empty: run on a tag push "
            "(on: push: tags: ['model-v*']), set release-tag, or use mode: package",
            field="mode",
        )
    return release_tag


def _read_conversion(reader: InputReader, ctx: CiContext) -> tuple[ConvertOptions, Path | None]:
    rule = path_rule(reader, ctx)
    model = _optional_existing(reader, rule, "model")
    metadata = _optional_existing(reader, rule, "metadata")
    if metadata is None and not (model is not None and carries_metadata(model)):
        raise UsageError(
            f"is required: the path of the metadata JSON (only {self_describing()} as model needs none)",
            field="metadata",
        )
    license_file = _optional_existing(reader, rule, "license")
    output = rule.writable(Path(reader.text("output")), "output") if reader.text("output") else None
    out_format = reader.choice("format", OUTPUT_FORMATS, "czann")
    spec = reader.text("spec") or None
    if spec is not None and out_format != "czann":
        raise UsageError(
            f"is {spec!r} but format is {out_format}: the legacy formats have no model.json spec; "
            "remove spec or set format: czann",
            field="spec",
        )
    options = ConvertOptions(
        meta=metadata,
        model=model,
        license=license_file,
        out_format=out_format,
        spec=spec,
        zen_blue=_zen_version(reader, "zen-blue"),
        zen_core=_zen_version(reader, "zen-core"),
        opset=_integer(reader, "opset"),
        input_layout=reader.choice("input-layout", LAYOUTS) or None,
        bgr_to_rgb=reader.boolean("bgr-to-rgb"),
        sigmoid_to_softmax=reader.boolean("sigmoid-to-softmax"),
        atol=_number(reader, "atol", DEFAULT_ATOL),
    )
    return options, output


def _check_forge_context(mode: str, token: str, token_kind: str, api_url: str, ctx: CiContext) -> None:
    """Everything a mode that talks to the forge needs from the inputs and the CI context, checked before
    the model is converted. Plan mode only reads: it needs no token where the project is public."""
    if mode == "publish" and not token:
        raise UsageError(
            f"is empty: publishing needs a token ({token_help(ctx.forge)})",
            field="token",
        )
    short = short_secret(token)
    if short:
        raise UsageError(
            f"{short}; {mode} mode would send it to the forge: set it to the real token", field="token"
        )
    if not api_url.startswith(("http://", "https://")):
        raise UsageError(
            f"must be an http(s) URL, got {api_url!r} (from the api-url input or "
            f"{row_of(ctx.forge).api_url_variable})",
            field="api-url",
        )
    if mode not in RELEASE_MODES:
        if not ctx.repository:
            raise UsageError(
                f"publishing needs the repository ({row_of(ctx.forge).repository_variable}) in the environment",
                field="mode",
            )
        return
    check_release_access(ctx.forge, mode, ctx.repository, token, token_kind)
    if not ctx.commit:
        raise UsageError(
            f"{mode} mode needs the commit the pipeline runs for, but {commit_variable(ctx.forge)} is empty",
            field="mode",
        )


def debug_requested(reader: InputReader) -> bool:
    """``debug: true``, read before (and whatever becomes of) the other inputs."""
    return reader.raw("debug") in TRUE_SPELLINGS


def _optional_existing(reader: InputReader, rule: PathRule, name: str) -> Path | None:
    text = reader.text(name)
    return _existing(rule, text, name) if text else None


def _existing(rule: PathRule, text: str, name: str) -> Path:
    path = rule.readable(rule.workspace / text, name)  # an absolute text replaces the workspace part
    if not path.exists():
        raise UsageError(f"{text!r} does not exist (paths are relative to {rule.workspace})", field=name)
    return path


def path_rule(reader: InputReader, ctx: CiContext) -> PathRule:
    """The workspace and the folders outside it that the ``allow-outside`` input trusts (one per line)."""
    allowed = tuple(Path(line.strip()) for line in reader.text("allow-outside").splitlines() if line.strip())
    for folder in allowed:
        if not folder.is_absolute() or not folder.is_dir():
            raise UsageError(
                f"must name existing folders by absolute path, got {str(folder)!r}", field="allow-outside"
            )
    return PathRule.for_workspace(ctx.workspace, allowed)


def _zen_version(reader: InputReader, name: str) -> str | None:
    value = reader.text(name)
    if value and not is_zen_version(value):
        raise UsageError(f"must be a ZEN release like 3.10 (quote it in YAML), got {value!r}", field=name)
    return value or None


def _integer(reader: InputReader, name: str) -> int | None:
    value = reader.text(name)
    if not value:
        return None
    if not (value.isascii() and value.isdigit()):  # isdigit() alone takes "²", which int() refuses
        raise UsageError(f"must be a whole number, got {value!r}", field=name)
    return int(value)


def _number(reader: InputReader, name: str, default: float) -> float:
    value = reader.text(name)
    if not value:
        return default
    try:
        number = float(value)
    except ValueError:
        raise UsageError(f"must be a number, got {value!r}", field=name) from None
    if not is_tolerance(number):
        raise UsageError(f"must be a positive finite number, got {value!r}", field=name)
    return number


def _version_of(tag: str, prefix: str, commit: str) -> str:
    if not tag:
        return f"dev-{commit[:7]}" if commit else "dev"
    if not tag.startswith(prefix):
        raise UsageError(
            f"tag {tag!r} does not start with tag-prefix {prefix!r}: push a tag like {prefix}1.2.0 "
            "or set tag-prefix",
            field="release-tag",
        )
    version = tag[len(prefix) :]
    if parse_version(version) is None:  # the one SemVer rule (versions.py)
        raise UsageError(
            f"tag {tag!r} gives version {version!r}, which is not SemVer "
            f"(MAJOR.MINOR.PATCH, e.g. {prefix}1.2.0)",
            field="release-tag",
        )
    return version
