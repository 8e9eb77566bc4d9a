"""The forge registry (czann_ci/publish/forges.py): each forge is one ``*_forge.py`` module that registers
its row, every row answers everything the CI step asks of a forge, and nothing outside czann_ci/publish
branches on a forge's name."""

from __future__ import annotations

import ast
import inspect
import pkgutil
from pathlib import Path

import pytest

import czann_ci
import czann_ci.publish
from czann_ci.errors import UsageError
from czann_ci.publish.forges import CiContext, rows, uses_workflow_commands
from czann_ci.release.forge import ReleaseForge, check_release_access

PACKAGE = Path(czann_ci.__file__).parent


def test_every_forge_module_registers_one_row_named_after_it() -> None:
    modules = {m.name for m in pkgutil.iter_modules(czann_ci.publish.__path__) if m.name.endswith("_forge")}
    assert (
        {f"{name}_forge" for name in rows()} == modules == {"github_forge", "gitlab_forge", "forgejo_forge"}
    )
    orders = [row.order for row in rows().values()]
    assert len(set(orders)) == len(orders)  # detection order is never a tie


@pytest.mark.parametrize("name", ["github", "gitlab", "forgejo"])
def test_every_row_opens_a_forge_with_the_whole_protocol(name: str) -> None:
    forge = rows()[name].open("https://forge.example/api", "acme/models", "t" * 20, token_kind="private")
    try:
        wanted = {n for n, _ in inspect.getmembers(ReleaseForge) if not n.startswith("_")}
        assert wanted <= set(dir(forge)), wanted - set(dir(forge))
        assert forge.kind == name and "t" * 20 not in repr(forge)
    finally:
        forge.close()


@pytest.mark.parametrize(
    ("forge", "context", "expected"),
    [
        (
            "github",
            {"server_url": "https://github.com", "repository": "acme/models"},
            "https://github.com/acme/models/releases/download/m-v1.0.0/a%20b.czann",
        ),
        (
            "forgejo",
            {"server_url": "https://codeberg.org", "repository": "acme/models"},
            "https://codeberg.org/acme/models/releases/download/m-v1.0.0/a%20b.czann",
        ),
        (
            "gitlab",
            {"web_url": "https://gitlab.example/acme/models"},
            "https://gitlab.example/acme/models/-/releases/m-v1.0.0/downloads/a b.czann",
        ),
    ],
)
def test_each_row_says_where_a_release_file_is_served(
    forge: str, context: dict[str, str], expected: str
) -> None:
    variables = {
        "github": {
            "GITHUB_ACTIONS": "true",
            "GITHUB_SERVER_URL": context.get("server_url", ""),
            "GITHUB_REPOSITORY": context.get("repository", ""),
        },
        "forgejo": {
            "FORGEJO_ACTIONS": "true",
            "FORGEJO_SERVER_URL": context.get("server_url", ""),
            "FORGEJO_REPOSITORY": context.get("repository", ""),
        },
        "gitlab": {"GITLAB_CI": "true", "CI_PROJECT_URL": context.get("web_url", "")},
    }[forge]
    ctx = CiContext.from_env(variables)
    link = rows()[ctx.forge].asset_link(ctx)
    assert link is not None and link("m-v1.0.0", "a b.czann") == expected
    bare = CiContext.from_env({k: v for k, v in variables.items() if k.endswith(("ACTIONS", "_CI"))})
    assert rows()[bare.forge].asset_link(bare) is None  # no project page: no link


def test_only_gitlabs_job_token_is_refused_for_tags_and_comments() -> None:
    refused = {name for name, row in rows().items() if row.job_token_refusal}
    assert refused == {name for name, row in rows().items() if row.job_token_comment_refusal} == {"gitlab"}
    with pytest.raises(UsageError) as caught:
        check_release_access("gitlab", "release", "7", "t" * 20, "job")
    assert "CZANN_TOKEN" in caught.value.message
    for name in ("github", "forgejo", "local"):
        check_release_access(name, "release", "acme/models", "t" * 20, "job")


def test_workflow_commands_follow_the_row() -> None:
    assert [uses_workflow_commands(n) for n in ("github", "forgejo", "gitlab", "local")] == [
        True,
        True,
        False,
        False,
    ]


def _forge_name_comparisons(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            names = [s.value for s in sides if isinstance(s, ast.Constant) and s.value in rows()]
            if names:
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno} compares with {names[0]!r}")
    return found


def test_nothing_outside_the_forge_modules_branches_on_a_forge_name() -> None:
    """A new forge is its module, its row and its tests: a comparison like ``ctx.forge == "gitlab"`` elsewhere
    would be a tenth place to edit."""
    found = [
        line
        for path in sorted(PACKAGE.rglob("*.py"))
        if "publish" not in path.relative_to(PACKAGE).parts
        for line in _forge_name_comparisons(path)
    ]
    assert found == []
