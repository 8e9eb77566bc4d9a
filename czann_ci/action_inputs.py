"""The step's inputs: read from GitHub's ``INPUT_*`` (hyphens kept: ``INPUT_ZEN-BLUE``), their underscore
spelling, or GitLab's ``CZANN_*`` variables; checked strictly (booleans, choices, versions, paths)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from czann_ci.errors import UsageError
from czann_ci.pipeline import LAYOUTS, OUTPUT_FORMATS

MODES = ("validate", "package", "publish")
OVERWRITE_MODES = ("never", "if-changed", "always")
TRUE_SPELLINGS = ("true", "True", "TRUE")
FALSE_SPELLINGS = ("false", "False", "FALSE")
# Every input action.yml declares (tests check the two agree); argv_overrides may name only these.
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
    "release-tag",
    "tag-prefix",
    "draft",
    "prerelease",
    "overwrite",
    "checksum",
    "token",
    "api-url",
    "debug",
)
# SemVer 2.0.0, https://semver.org
SEMVER_RE = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?\Z"  # \Z: "$" also matches before a final newline
)
ZEN_VERSION_RE = re.compile(r"^\d+\.\d+(\.\d+)?$")


class InputReader:
    """Looks up an input under every spelling a runner may use, first non-empty wins."""

    def __init__(self, env: Mapping[str, str], overrides: Mapping[str, Any] | None = None) -> None:
        self.env = env
        self.overrides = {_kebab(key): value for key, value in (overrides or {}).items() if value is not None}

    def raw(self, name: str) -> str:
        if name in self.overrides:
            value = self.overrides[name]
            if isinstance(value, bool):
                return "true" if value else "false"
            return str(value).strip()
        upper = name.upper()
        for key in (f"INPUT_{upper}", f"INPUT_{upper.replace('-', '_')}", f"CZANN_{upper.replace('-', '_')}"):
            value = self.env.get(key, "").strip()
            if value:
                return value
        return ""

    def text(self, name: str, default: str = "") -> str:
        return self.raw(name) or default

    def boolean(self, name: str, default: bool = False) -> bool:
        value = self.raw(name)
        if not value:
            return default
        if value in TRUE_SPELLINGS:
            return True
        if value in FALSE_SPELLINGS:
            return False
        raise UsageError(f"must be true or false, got {value!r}", field=name)

    def choice(self, name: str, choices: tuple[str, ...], default: str = "") -> str:
        value = self.raw(name) or default
        if value and value not in choices:
            raise UsageError(f"must be one of {', '.join(choices)}, got {value!r}", field=name)
        return value


def _kebab(name: str) -> str:
    return name.strip().lower().replace("_", "-")


@dataclass(frozen=True)
class CiContext:
    """Where the step runs: the forge, the workspace and what was pushed."""

    forge: str  # github | gitlab | local
    workspace: Path
    pushed_tag: str
    repository: str
    api_url: str
    default_token: str
    server_url: str = ""
    commit: str = ""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> CiContext:
        if env.get("GITLAB_CI", "").lower() == "true" or env.get("CI_API_V4_URL"):
            return cls(
                forge="gitlab",
                workspace=Path(env.get("CI_PROJECT_DIR") or os.getcwd()),
                pushed_tag=env.get("CI_COMMIT_TAG", ""),
                repository=env.get("CI_PROJECT_ID", "") or env.get("CI_PROJECT_PATH", ""),
                api_url=env.get("CI_API_V4_URL", ""),
                default_token=env.get("CI_JOB_TOKEN", ""),
                server_url=env.get("CI_SERVER_URL", ""),
                commit=env.get("CI_COMMIT_SHA", ""),
            )
        ref = env.get("GITHUB_REF", "")
        return cls(
            forge="github" if env.get("GITHUB_ACTIONS", "").lower() == "true" or ref else "local",
            workspace=Path(env.get("GITHUB_WORKSPACE") or os.getcwd()),
            pushed_tag=ref[len("refs/tags/") :] if ref.startswith("refs/tags/") else "",
            repository=env.get("GITHUB_REPOSITORY", ""),
            api_url=env.get("GITHUB_API_URL", "https://api.github.com"),
            default_token=env.get("GITHUB_TOKEN", ""),
            server_url=env.get("GITHUB_SERVER_URL", ""),
            commit=env.get("GITHUB_SHA", ""),
        )


@dataclass(frozen=True)
class ActionInputs:
    """Every input, parsed, checked against each other and resolved against the workspace."""

    metadata: Path
    model: Path | None
    license: Path | None
    output: Path | None  # None: dist/<name>-<version>.<format>
    out_format: str
    spec: str | None
    zen_blue: str | None
    zen_core: str | None
    opset: int | None
    input_layout: str | None
    bgr_to_rgb: bool
    sigmoid_to_softmax: bool
    atol: float
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
    debug: bool


def read_inputs(reader: InputReader, ctx: CiContext) -> ActionInputs:
    """Parse and cross-check the inputs; raises UsageError naming the input at fault."""
    metadata_text = reader.text("metadata")
    if not metadata_text:
        raise UsageError("is required: the path of the metadata JSON", field="metadata")
    metadata = _existing(ctx.workspace, metadata_text, "metadata")
    model = _existing(ctx.workspace, reader.text("model"), "model") if reader.text("model") else None
    license_file = (
        _existing(ctx.workspace, reader.text("license"), "license") if reader.text("license") else None
    )
    output = (
        _inside_workspace(ctx.workspace, reader.text("output"), "output") if reader.text("output") else None
    )

    out_format = reader.choice("format", OUTPUT_FORMATS, "czann")
    spec = reader.text("spec") or None
    if spec is not None and out_format != "czann":
        raise UsageError(
            f"is {spec!r} but format is {out_format}: the legacy formats have no model.json spec; "
            "remove spec or set format: czann",
            field="spec",
        )
    zen_blue = _zen_version(reader, "zen-blue")
    zen_core = _zen_version(reader, "zen-core")
    opset = _integer(reader, "opset")
    input_layout = reader.choice("input-layout", LAYOUTS) or None
    atol = _number(reader, "atol", 1e-4)

    release_tag = reader.text("release-tag") or ctx.pushed_tag
    mode = reader.choice("mode", MODES) or ("publish" if ctx.pushed_tag else "package")
    if mode == "publish" and not release_tag:
        raise UsageError(
            "is publish but no tag was pushed and release-tag is empty: run on a tag push "
            "(on: push: tags: ['model-v*']), set release-tag, or use mode: package",
            field="mode",
        )
    tag_prefix = reader.text("tag-prefix", "model-v")
    version = _version_of(release_tag, tag_prefix, ctx.commit)
    overwrite = reader.choice("overwrite", OVERWRITE_MODES, "if-changed")
    token = reader.text("token") or ctx.default_token
    api_url = (reader.text("api-url") or ctx.api_url).rstrip("/")
    if mode == "publish":
        if not token:
            raise UsageError(
                "is empty: publishing needs a token (GitHub: permissions: contents: write; "
                "GitLab: CI_JOB_TOKEN or CZANN_TOKEN)",
                field="token",
            )
        if not api_url.startswith(("http://", "https://")):
            raise UsageError(f"must be an http(s) URL, got {api_url!r}", field="api-url")
        if not ctx.repository:
            raise UsageError(
                "publishing needs the repository (GITHUB_REPOSITORY or CI_PROJECT_ID) in the environment",
                field="mode",
            )
    return ActionInputs(
        metadata=metadata,
        model=model,
        license=license_file,
        output=output,
        out_format=out_format,
        spec=spec,
        zen_blue=zen_blue,
        zen_core=zen_core,
        opset=opset,
        input_layout=input_layout,
        bgr_to_rgb=reader.boolean("bgr-to-rgb"),
        sigmoid_to_softmax=reader.boolean("sigmoid-to-softmax"),
        atol=atol,
        mode=mode,
        release_tag=release_tag,
        tag_prefix=tag_prefix,
        version=version,
        draft=reader.boolean("draft"),
        prerelease=reader.boolean("prerelease"),
        overwrite=overwrite,
        checksum=reader.boolean("checksum", True),
        token=token,
        token_kind="private" if reader.text("token") else "job",
        api_url=api_url,
        debug=reader.boolean("debug"),
    )


def _existing(workspace: Path, text: str, name: str) -> Path:
    path = (workspace / text).resolve() if not Path(text).is_absolute() else Path(text)
    if not path.exists():
        raise UsageError(f"{text!r} does not exist (paths are relative to {workspace})", field=name)
    return path


def _inside_workspace(workspace: Path, text: str, name: str) -> Path:
    path = (workspace / text).resolve()
    if not path.is_relative_to(workspace.resolve()):
        raise UsageError(f"{text!r} points outside the workspace", field=name)
    return path


def _zen_version(reader: InputReader, name: str) -> str | None:
    value = reader.text(name)
    if value and not ZEN_VERSION_RE.match(value):
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
    if not 0 < number < float("inf"):
        raise UsageError(f"must be a positive finite number, got {value!r}", field=name)
    return number


def _version_of(tag: str, prefix: str, commit: str) -> str:
    if not tag:
        return f"dev-{commit[:7]}" if commit else "dev"
    if not tag.startswith(prefix):
        raise UsageError(
            f"tag {tag!r} does not start with tag-prefix {prefix!r}: push a tag like {prefix}1.0.0 "
            "or set tag-prefix",
            field="release-tag",
        )
    version = tag[len(prefix) :]
    if not SEMVER_RE.match(version):
        raise UsageError(
            f"tag {tag!r} gives version {version!r}, which is not SemVer "
            f"(MAJOR.MINOR.PATCH, e.g. {prefix}1.2.0)",
            field="release-tag",
        )
    return version
