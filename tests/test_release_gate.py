"""The quality gate (issue 24) through the CI step against the GitHub and GitLab stand-ins on 127.0.0.1:
release and plan modes evaluate the new model beside the previous release on the lab's images, refuse a
worse one before anything is written, and carry the metrics in the card, the outputs and a
``.metrics.json`` asset that the next release reads.

"Better" and "worse" hold by construction (tests/test_evaluate.py): on synthetic nuclei, 8 bright and 4
dim, a threshold segmenter below the dim nuclei finds all of them (mean IoU 1), one between dim and bright
misses the dim ones (mean IoU about 0.83, known from the pixel counts)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from forge_server import ForgeSetup
from model_factory import write_json
from ruamel.yaml import YAML
from test_action_release import OUTPUT_RE
from test_evaluate import FINDS_ALL, MISSES_DIM, SEG_META, TILE, misses_dim_expected, nuclei, threshold_graph
from test_evaluate import write_png as write_image

from czann_ci.ci.step import run_action

ACTION_YML = Path(__file__).resolve().parents[1] / "action.yml"

pytest.importorskip("skimage", reason="pip install -e '.[images]'")

SHA = {name: name * 40 for name in "abcdef"}
META = {**SEG_META, "ModelName": "nuclei"}
COLOUR_META = {**META, "InputShape": [TILE, TILE, 3]}
WRITES = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CZANN_RETRY_SCALE", "0.001")


@pytest.fixture(params=["github", "gitlab", "forgejo"])
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def metrics_schema_errors(document: dict[str, Any]) -> list[str]:
    """docs/metrics.schema.json's verdict on a .metrics.json (its metrics are evaluation.schema.json's)."""
    import jsonschema
    from referencing import Registry, Resource

    docs = Path(__file__).resolve().parents[1] / "docs"
    evaluation = json.loads((docs / "evaluation.schema.json").read_text("utf-8"))
    schema = json.loads((docs / "metrics.schema.json").read_text("utf-8"))
    registry = Registry().with_resources([(evaluation["$id"], Resource.from_contents(evaluation))])
    validator = jsonschema.Draft202012Validator(schema, registry=registry)
    return [error.message for error in validator.iter_errors(document)]


def expected_misses() -> float:
    _, bright, dim = nuclei()
    return misses_dim_expected(int(bright.sum()), int(dim.sum()), int((~(bright | dim)).sum()))["score"]


class Repo:
    """One model repository on one forge: each run is a fresh checkout holding the model of that commit."""

    def __init__(self, forge: ForgeSetup, kind: str, root: Path) -> None:
        self.forge, self.kind, self.root, self.server = forge, kind, root, forge.server

    def checkout(self, threshold: float, *, channels: int = 1, images: str = "labelled") -> Path:
        ws = self.root / f"ws-{len(list(self.root.glob('ws-*')))}"
        (ws / "models").mkdir(parents=True)
        onnx.save_model(threshold_graph(threshold, channels=channels), str(ws / "models" / "nuclei.onnx"))
        write_json(ws / "models" / "nuclei.json", COLOUR_META if channels == 3 else META)
        image, bright, dim = nuclei()
        if images == "none":  # a release made before the lab used the gate
            return ws
        (ws / "eval").mkdir()
        write_image(ws / "eval" / "cells.png", image)
        if images == "labelled":
            (ws / "labels").mkdir()
            write_image(ws / "labels" / "cells_labels.png", (bright | dim).astype(np.uint8))
        return ws

    def env(self, ws: Path, commit: str, **inputs: str) -> dict[str, str]:
        given = {
            "mode": "release",
            "tag-prefix": "nuclei-v",
            "token": self.forge.token,
        }
        if (ws / "eval").is_dir():
            given["eval-images"] = "eval"
        if (ws / "labels").is_dir():
            given["eval-labels"] = "labels"
        given.update({key.replace("_", "-"): value for key, value in inputs.items()})
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if self.kind == "github":
            env.update(
                GITHUB_ACTIONS="true",
                GITHUB_WORKSPACE=str(ws),
                GITHUB_OUTPUT=str(ws / "github_output"),
                GITHUB_STEP_SUMMARY=str(ws / "github_summary"),
                GITHUB_REF="refs/heads/main",
                GITHUB_SHA=commit,
                GITHUB_REPOSITORY=self.forge.github_repo,
                GITHUB_API_URL=self.server.github_api_url,
                GITHUB_SERVER_URL="https://github.example",
            )
            prefix = "INPUT_"
        elif self.kind == "forgejo":  # forgejo-runner sets each context variable as GITHUB_* and FORGEJO_*
            context = {
                "ACTIONS": "true",
                "WORKSPACE": str(ws),
                "REF": "refs/heads/main",
                "SHA": commit,
                "REPOSITORY": self.forge.forgejo_repo,
                "SERVER_URL": self.server.forgejo_url,
                "API_URL": self.server.forgejo_api_url,
            }
            for name, value in context.items():
                env[f"GITHUB_{name}"] = env[f"FORGEJO_{name}"] = value
            env.update(
                GITHUB_OUTPUT=str(ws / "github_output"), GITHUB_STEP_SUMMARY=str(ws / "github_summary")
            )
            prefix = "INPUT_"
        else:
            env.update(
                GITLAB_CI="true",
                CI_PROJECT_DIR=str(ws),
                CI_COMMIT_SHA=commit,
                CI_API_V4_URL=self.server.gitlab_api_url,
                CI_PROJECT_ID=str(self.forge.gitlab_project_id),
                CI_PROJECT_URL="https://gitlab.example/acme/models",
                CI_JOB_TOKEN=self.forge.token,
                CZANN_DOTENV=str(ws / "czann.env"),
            )
            prefix = "CZANN_"
        for key, value in {"model": "models/nuclei.onnx", "metadata": "models/nuclei.json", **given}.items():
            env[prefix + (key.upper() if prefix == "INPUT_" else key.upper().replace("-", "_"))] = value
        return env

    def run(
        self,
        threshold: float,
        commit: str,
        capsys: pytest.CaptureFixture[str],
        *,
        on_change_request: int | None = None,
        **inputs: str,
    ) -> Run:
        ws = self.checkout(
            threshold, channels=int(inputs.pop("channels", 1)), images=inputs.pop("images", "labelled")
        )
        env = self.env(ws, commit, **inputs)
        if on_change_request is not None:  # a pull request (GitHub, Forgejo) or merge request (GitLab)
            if self.kind != "gitlab":
                env["GITHUB_REF"] = f"refs/pull/{on_change_request}/merge"
                if self.kind == "forgejo":
                    env["FORGEJO_REF"] = env["GITHUB_REF"]
            else:
                env["CI_MERGE_REQUEST_IID"] = str(on_change_request)
        mark = len(self.server.requests_seen)
        code = run_action(env)
        writes = [f"{r.method} {r.path}" for r in self.server.requests_seen[mark:] if r.method in WRITES]
        return Run(self, ws, env, code, capsys.readouterr().out, writes)

    # -- what the forge holds ----------------------------------------------------------------------------
    def tags(self) -> dict[str, str]:
        if self.kind == "github":
            return self.server.github_tags(self.forge.github_repo)
        if self.kind == "forgejo":
            return self.server.forgejo_tags(self.forge.forgejo_repo)
        return self.server.gitlab_tags(self.forge.gitlab_project_id)

    def release(self, tag: str) -> dict[str, Any] | None:
        if self.kind != "gitlab":
            listed = (
                self.server.github_releases(self.forge.github_repo)
                if self.kind == "github"
                else self.server.forgejo_releases(self.forge.forgejo_repo)
            )
            found = [r for r in listed if r["tag_name"] == tag]
            if not found:
                return None
            names = sorted(a["name"] for a in found[0]["assets"] if a.get("state", "uploaded") == "uploaded")
            return {"files": names, "body": found[0]["body"] or "", "draft": found[0]["draft"]}
        release = self.server.gitlab_release(self.forge.gitlab_project_id, tag)
        if release is None:
            return None
        names = sorted(link["name"] for link in release["assets"]["links"])
        return {"files": names, "body": release["description"], "draft": False}

    def comments(self, number: int) -> list[dict[str, Any]]:
        if self.kind == "github":
            return self.server.github_comments(self.forge.github_repo, number)
        if self.kind == "forgejo":
            return self.server.forgejo_comments(self.forge.forgejo_repo, number)
        return self.server.gitlab_notes(self.forge.gitlab_project_id, number)

    def asset(self, tag: str, name: str) -> bytes:
        if self.kind == "github":
            return self.server.github_asset_bytes(self.forge.github_repo, tag, name)
        if self.kind == "forgejo":
            return self.server.forgejo_asset_bytes(self.forge.forgejo_repo, tag, name)
        version = tag.removeprefix("nuclei-v")
        return self.server.gitlab_file_bytes(self.forge.gitlab_project_id, "nuclei", version, name)


class Run:
    def __init__(
        self, repo: Repo, ws: Path, env: dict[str, str], code: int, log: str, writes: list[str]
    ) -> None:
        self.repo, self.ws, self.env, self.code, self.log, self.writes = repo, ws, env, code, log, writes

    def outputs(self) -> dict[str, str]:
        if self.repo.kind != "gitlab":
            text = Path(self.env["GITHUB_OUTPUT"]).read_text("utf-8")
            return {name: value for name, _, value in OUTPUT_RE.findall(text)}
        lines = (self.ws / "czann.env").read_text("utf-8").splitlines()
        pairs = (line.split("=", 1) for line in lines)
        return {key.removeprefix("CZANN_").lower().replace("_", "-"): value for key, value in pairs}

    def summary(self) -> str:
        path = Path(self.env.get("GITHUB_STEP_SUMMARY", self.ws / "none"))
        return path.read_text("utf-8") if path.is_file() else ""


@pytest.fixture
def repo(forge: ForgeSetup, kind: str, tmp_path: Path) -> Repo:
    return Repo(forge, kind, tmp_path)


def test_a_better_model_releases_with_the_metrics_and_the_history(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    misses = expected_misses()
    first = repo.run(MISSES_DIM, SHA["a"], capsys)
    assert first.code == 0, first.log
    out = first.outputs()
    assert float(out["score"]) == pytest.approx(misses, abs=1e-5)
    assert "previous-score" not in out or out["previous-score"] == ""
    files = repo.release("nuclei-v1.0.0")["files"]  # type: ignore[index]
    assert "nuclei-1.0.0.czann.metrics.json" in files and "nuclei-1.0.0.czann.evaluation.png" in files
    recorded = json.loads(repo.asset("nuclei-v1.0.0", "nuclei-1.0.0.czann.metrics.json"))
    assert (recorded["version"], recorded["score_name"], recorded["history"]) == ("1.0.0", "mean IoU", [])
    assert recorded["score"] == pytest.approx(misses)

    better = repo.run(FINDS_ALL, SHA["b"], capsys)
    assert better.code == 0, better.log
    out = better.outputs()
    assert (out["version"], out["bump"]) == ("1.1.0", "minor")
    assert float(out["score"]) == 1.0
    assert float(out["previous-score"]) == pytest.approx(misses, abs=1e-5)
    assert float(out["score-change"]) == pytest.approx(1.0 - misses, abs=1e-5)
    release = repo.release("nuclei-v1.1.0")
    assert release is not None and not release["draft"]
    assert sorted(release["files"]) == sorted(
        f"nuclei-1.1.0.czann{suffix}" for suffix in ("", ".sha256", ".metrics.json", ".evaluation.png")
    )
    body = release["body"]
    assert f"mean IoU {misses:.3f} -> 1.000 (+{1 - misses:.3f}) on 1 image(s)" in body
    assert f"| mean IoU (score) | {misses:.3f} | 1.000 | +{1 - misses:.3f} |" in body
    link = {
        "github": "https://github.example/acme/models/releases/download/nuclei-v1.1.0/",
        "forgejo": f"{repo.server.forgejo_url}/acme/models/releases/download/nuclei-v1.1.0/",
        "gitlab": "https://gitlab.example/acme/models/-/releases/nuclei-v1.1.0/downloads/",
    }[repo.kind]
    assert f"![image | labels | previous | new]({link}nuclei-1.1.0.czann.evaluation.png)" in body
    assert f"Score history (each as measured at its release): 1.0.0 {misses:.3f}." in body
    recorded = json.loads(repo.asset("nuclei-v1.1.0", "nuclei-1.1.0.czann.metrics.json"))
    assert recorded["previous"] == {"version": "1.0.0", "score": pytest.approx(misses)}
    assert recorded["history"] == [{"version": "1.0.0", "score": pytest.approx(misses), "images": 1}]
    assert recorded["metrics"]["overall"]["iou"] == 1.0
    assert metrics_schema_errors(recorded) == []
    picture = repo.asset("nuclei-v1.1.0", "nuclei-1.1.0.czann.evaluation.png")
    assert picture.startswith(b"\x89PNG")


def test_a_worse_model_is_refused_before_anything_is_written(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    misses = expected_misses()
    assert repo.run(FINDS_ALL, SHA["a"], capsys).code == 0
    worse = repo.run(MISSES_DIM, SHA["b"], capsys)
    assert worse.code == 1, worse.log
    line = (
        f"score: mean IoU {misses:.3f} is {1 - misses:.3f} below 1.0.0's 1.000 (max-score-drop 0.02); "
        "set allow-score-drop: true to release it anyway"
    )
    assert line in worse.log and "Traceback" not in worse.log
    assert worse.writes == []
    assert set(repo.tags()) == {"nuclei-v1.0.0"} and repo.release("nuclei-v1.1.0") is None
    out = worse.outputs()
    assert float(out["score"]) == pytest.approx(misses, abs=1e-5) and float(out["previous-score"]) == 1.0
    if repo.kind == "github":
        summary = worse.summary()
        assert "## ❌ czann: failed" in summary and "| mean IoU (score) | 1.000 | " in summary


def test_allow_score_drop_releases_it_with_the_drop_in_the_card(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    misses = expected_misses()
    assert repo.run(FINDS_ALL, SHA["a"], capsys).code == 0
    allowed = repo.run(MISSES_DIM, SHA["b"], capsys, allow_score_drop="true")
    assert allowed.code == 0, allowed.log
    assert float(allowed.outputs()["score-change"]) == pytest.approx(misses - 1.0, abs=1e-5)
    body = repo.release("nuclei-v1.1.0")["body"]  # type: ignore[index]
    assert f"**Released with a drop:** mean IoU is {1 - misses:.3f} below 1.0.0's" in body
    recorded = json.loads(repo.asset("nuclei-v1.1.0", "nuclei-1.1.0.czann.metrics.json"))
    assert recorded["allowed_drop"] is True and recorded["change"] == pytest.approx(misses - 1.0)


def test_min_score_refuses_a_first_release_below_it(repo: Repo, capsys: pytest.CaptureFixture[str]) -> None:
    refused = repo.run(MISSES_DIM, SHA["a"], capsys, min_score="0.9")
    assert refused.code == 1
    assert f"score: mean IoU {expected_misses():.3f} is below min-score 0.9; lower min-score" in refused.log
    assert refused.writes == [] and repo.tags() == {}


def test_a_previous_release_of_another_interface_is_not_compared(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    """Three input channels before, one now: the old model cannot read the grey images. The diff makes
    the release major; the gate says why it compared nothing and releases."""
    assert repo.run(FINDS_ALL, SHA["a"], capsys, channels="3", images="none").code == 0
    second = repo.run(MISSES_DIM, SHA["b"], capsys)
    assert second.code == 0, second.log
    assert second.outputs()["bump"] == "major"
    body = repo.release("nuclei-v2.0.0")["body"]  # type: ignore[index]
    assert "1.0.0 cannot be evaluated on these images" in body and "nothing compared" in body
    assert second.outputs().get("previous-score", "") == ""


def test_plan_mode_reports_the_score_and_writes_nothing(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    misses = expected_misses()
    assert repo.run(MISSES_DIM, SHA["a"], capsys).code == 0
    plan = repo.run(FINDS_ALL, SHA["b"], capsys, mode="plan")
    assert plan.code == 0, plan.log
    assert plan.writes == []
    headline = (
        "nuclei-v1.1.0 (minor: weights changed (1 of 4 tensors); interface unchanged); "
        f"mean IoU {misses:.3f} -> 1.000 (+{1 - misses:.3f})"
    )
    assert f"plan: {headline}" in plan.log
    if repo.kind == "github":
        assert f"**{headline}**" in plan.summary()
    assert (plan.ws / "dist" / "nuclei-1.1.0.czann.metrics.json").is_file()

    worse = repo.run(MISSES_DIM, SHA["c"], capsys, mode="plan")  # same as the release: nothing to plan
    assert worse.code == 0 and worse.outputs()["bump"] == "none" and worse.writes == []


@pytest.mark.parametrize(
    ("inputs", "code", "message"),
    [
        ({"eval-images": "nowhere"}, 2, "eval-images: 'nowhere' does not exist"),
        ({"eval-images": "empty"}, 2, "eval-images: 'empty' is a folder without image files"),
        ({"eval-images": "eval/*.tif"}, 2, "eval-images: 'eval/*.tif' matches no file"),
        ({"eval-labels": "other"}, 6, "eval-labels: no label file pairs with this image"),
        ({"min-score": "1.5"}, 2, "min-score: must be between 0 and 1"),
        ({"eval-labels": "", "min-score": "0.5"}, 2, "min-score: needs eval-labels"),
        ({"eval-images": "/etc"}, 2, "is outside the workspace"),
    ],
)
def test_bad_gate_inputs_are_one_line_and_nothing_is_sent(
    forge: ForgeSetup,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    inputs: dict,
    code: int,
    message: str,
) -> None:
    repo = Repo(forge, "github", tmp_path)
    ws = repo.checkout(FINDS_ALL)
    (ws / "empty").mkdir()
    (ws / "other").mkdir()
    for name in ("dots", "rings"):  # two label files: each pairs by name, and neither with cells.png
        write_image(ws / "other" / f"{name}_labels.png", np.zeros((8, 8), np.uint8))
    env = repo.env(ws, SHA["a"], **inputs)
    assert run_action(env) == code
    log = capsys.readouterr().out
    assert message in log and "Traceback" not in log
    assert forge.server.requests_seen == []


def test_every_default_of_action_yml_without_eval_images_is_no_gate(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """GitHub (and the GitLab component) pass every input's default, max-score-drop 0.02 and
    allow-score-drop false among them: that is not asking for a gate, only a changed value is."""
    defaults = {
        name: str(spec["default"])
        for name, spec in YAML(typ="safe").load(ACTION_YML.read_text())["inputs"].items()
        if "default" in spec and spec["default"] != ""
    }
    assert {"max-score-drop", "allow-score-drop"} <= set(defaults)
    repo = Repo(forge, "github", tmp_path)
    ws = repo.checkout(FINDS_ALL, images="none")
    given = {**defaults, "mode": "validate", "model": "models/nuclei.onnx", "metadata": "models/nuclei.json"}
    assert run_action(repo.env(ws, SHA["a"], **given)) == 0, capsys.readouterr().out
    asked = repo.env(ws, SHA["a"], **{**given, "allow-score-drop": "true"})
    assert run_action(asked) == 2
    assert "allow-score-drop: is set but eval-images is empty" in capsys.readouterr().out


def test_validate_mode_reports_the_score_and_gates_only_with_min_score(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo(forge, "github", tmp_path)
    report = repo.run(MISSES_DIM, SHA["a"], capsys, mode="validate")
    assert report.code == 0, report.log
    assert float(report.outputs()["score"]) == pytest.approx(expected_misses(), abs=1e-5)
    assert "### Quality on the validation images" in report.summary()
    gated = repo.run(MISSES_DIM, SHA["a"], capsys, mode="validate", min_score="0.95")
    assert gated.code == 1 and "is below min-score 0.95" in gated.log
    assert forge.server.requests_seen == []


# Finds no nucleus at all (above the bright ones): mean IoU about 0.49, far below a release that finds some.
FINDS_NONE = 0.9


def test_plan_mode_on_a_pull_request_keeps_one_comment_up_to_date(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    misses = expected_misses()
    assert repo.run(MISSES_DIM, SHA["a"], capsys).code == 0
    first = repo.run(FINDS_ALL, SHA["b"], capsys, mode="plan", comment="true", on_change_request=7)
    assert first.code == 0, first.log
    comments_path = {
        "github": "/issues/7/comments",
        "forgejo": "/issues/7/comments",
        "gitlab": "/merge_requests/7/notes",
    }[repo.kind]
    assert (
        len(first.writes) == 1
        and first.writes[0].startswith("POST ")
        and first.writes[0].endswith(comments_path)
    )
    [comment] = repo.comments(7)
    assert comment["body"].startswith("<!-- czann-ci:nuclei-v -->\n**czann plan:** nuclei-v1.1.0 (minor: ")
    assert f"mean IoU {misses:.3f} -> 1.000 (+{1 - misses:.3f})" in comment["body"]
    assert f"| mean IoU (score) | {misses:.3f} | 1.000 | +{1 - misses:.3f} |" in comment["body"]
    assert (
        "Picture (image | labels | previous | new): `dist/nuclei-1.1.0.czann.evaluation.png`"
        in comment["body"]
    )

    # the next push to the pull request: a model that finds nothing; the plan is refused, the comment says so
    second = repo.run(FINDS_NONE, SHA["c"], capsys, mode="plan", comment="true", on_change_request=7)
    assert second.code == 1
    assert (
        "is below 1.0.0's" not in second.log
        and f"below 1.0.0's {misses:.3f} (max-score-drop 0.02)" in second.log
    )
    edit = {"github": "PATCH", "forgejo": "PATCH", "gitlab": "PUT"}[repo.kind]
    assert [write.split(" ")[0] for write in second.writes] == [edit]
    [comment] = repo.comments(7)
    assert "**Refused:** mean IoU" in comment["body"] and "set allow-score-drop: true" in comment["body"]
    assert set(repo.tags()) == {"nuclei-v1.0.0"}


def test_gitlab_comment_needs_a_token_that_may_write_notes(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo(forge, "gitlab", tmp_path)
    ws = repo.checkout(FINDS_ALL)
    env = repo.env(ws, SHA["a"], mode="plan", comment="true")
    del env["CZANN_TOKEN"]  # only CI_JOB_TOKEN
    assert run_action(env) == 2
    assert "comment: is true, but CI_JOB_TOKEN may not write merge request notes" in capsys.readouterr().out
    assert forge.server.requests_seen == []


def test_an_evaluation_that_fails_half_way_is_one_line_and_nothing_is_written(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    """The second image is a truncated PNG: the first was evaluated, then the run stops (exit 6)."""
    assert repo.run(MISSES_DIM, SHA["a"], capsys).code == 0
    ws = repo.checkout(FINDS_ALL)
    whole = (ws / "eval" / "cells.png").read_bytes()
    (ws / "eval" / "zz_cut.png").write_bytes(whole[: len(whole) // 2])
    (ws / "labels" / "zz_cut_labels.png").write_bytes((ws / "labels" / "cells_labels.png").read_bytes())
    env = repo.env(ws, SHA["b"])
    mark = len(repo.server.requests_seen)
    assert run_action(env) == 6
    log = capsys.readouterr().out
    assert "zz_cut.png" in log and "Traceback" not in log
    assert [r for r in repo.server.requests_seen[mark:] if r.method in WRITES] == []
    assert set(repo.tags()) == {"nuclei-v1.0.0"}


def test_an_unreadable_metrics_file_gives_no_history_and_blocks_nothing(tmp_path: Path) -> None:
    from czann_ci.release.gate import read_history

    said: list[str] = []
    broken = tmp_path / "nuclei-1.0.0.czann.metrics.json"
    broken.write_text('{"version": "1.0.0", "score": ', encoding="utf-8")
    assert read_history(broken, said.append) == ()
    assert said == [
        "release: nuclei-1.0.0.czann.metrics.json cannot be read (JSONDecodeError); the card shows no score history"
    ]
    chained = tmp_path / "nuclei-1.1.0.czann.metrics.json"
    chained.write_text(
        json.dumps(
            {
                "version": "1.1.0",
                "score": 0.9,
                "images": ["a.png", "b.png"],
                "history": [{"version": "1.0.0", "score": 0.8, "images": 2}],
            }
        ),
        encoding="utf-8",
    )
    assert [(entry.version, entry.score, entry.images) for entry in read_history(chained, said.append)] == [
        ("1.0.0", 0.8, 2),
        ("1.1.0", 0.9, 2),
    ]


def test_without_labels_the_agreement_is_reported_and_nothing_is_gated(
    repo: Repo, capsys: pytest.CaptureFixture[str]
) -> None:
    first = repo.run(FINDS_ALL, SHA["a"], capsys, images="unlabelled")
    assert first.code == 0, first.log
    assert "release: not scored (no eval-labels and no previous release to compare with)" in first.log
    changed = repo.run(FINDS_NONE, SHA["b"], capsys, images="unlabelled")  # finds nothing: no score, no gate
    assert changed.code == 0, changed.log
    out = changed.outputs()
    assert (out["version"], out.get("score", ""), out.get("previous-score", "")) == ("1.1.0", "", "")
    body = repo.release("nuclei-v1.1.0")["body"]  # type: ignore[index]
    assert "mean IoU agreement with 1.0.0: " in body and "(no labels)" in body
    recorded = json.loads(repo.asset("nuclei-v1.1.0", "nuclei-1.1.0.czann.metrics.json"))
    assert recorded["score"] is None and 0.0 <= recorded["agreement"] < 1.0
    assert metrics_schema_errors(recorded) == []


@pytest.mark.parametrize(
    ("score", "previous", "limits", "refusal"),
    [
        (0.70, 0.72, {}, ""),  # a drop of exactly max-score-drop releases
        (0.70, 0.73, {}, "mean IoU 0.700 is 0.030 below 1.0.0's 0.730 (max-score-drop 0.02)"),
        (0.70, 0.73, {"max_drop": 0.05}, ""),
        (0.70, 0.73, {"allow_drop": True}, ""),
        (0.70, 0.73, {"allow_drop": True, "min_score": 0.75}, "mean IoU 0.700 is below min-score 0.75"),
        (0.75, None, {"min_score": 0.75}, ""),  # a first release at the floor
        (0.70, 0.90, {"gating": False}, ""),  # validate/package/publish without min-score: reported only
    ],
)
def test_the_limits(score: float, previous: float | None, limits: dict, refusal: str) -> None:
    from czann_ci.evaluation.quality import QualityReport
    from czann_ci.release.gate import GateRequest, judge

    report = QualityReport(
        kind="segmentation",
        score=score,
        previous_version="1.0.0" if previous else "",
        previous_score=previous,
    )
    judge(report, GateRequest(pairs=(), **limits))
    assert report.refusal.startswith(refusal) and bool(report.refusal) == bool(refusal)
    assert report.allowed_drop == (limits.get("allow_drop", False) and not refusal)


def test_publish_mode_with_min_score_uploads_nothing_below_it(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = Repo(forge, "github", tmp_path)
    refused = repo.run(
        MISSES_DIM, SHA["a"], capsys, mode="publish", release_tag="nuclei-v1.0.0", min_score="0.9"
    )
    assert refused.code == 1 and "score: mean IoU" in refused.log and "is below min-score 0.9" in refused.log
    assert refused.writes == [] and repo.release("nuclei-v1.0.0") is None
    published = repo.run(
        FINDS_ALL, SHA["a"], capsys, mode="publish", release_tag="nuclei-v1.0.0", min_score="0.9"
    )
    assert published.code == 0, published.log
    assert float(published.outputs()["score"]) == 1.0 and repo.release("nuclei-v1.0.0") is not None


def test_a_token_that_may_not_comment_fails_the_plan_in_one_line(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A pull request from a fork gets a read-only token: the plan is made, the comment is refused (exit 4)."""
    repo = Repo(forge, "github", tmp_path)
    assert repo.run(MISSES_DIM, SHA["a"], capsys).code == 0
    reader = "czt_" + "r" * 32
    forge.server.add_token(reader, access="read")
    plan = repo.run(
        FINDS_ALL, SHA["b"], capsys, mode="plan", comment="true", token=reader, on_change_request=7
    )
    assert plan.code == 4
    error = [line for line in plan.log.splitlines() if line.startswith("::error")]
    assert (
        len(error) == 1
        and "pull request 7" in error[0]
        and reader not in plan.log.replace(f"::add-mask::{reader}", "")
    )
    assert "**nuclei-v1.1.0 (minor: " in plan.summary() and "| mean IoU (score) |" in plan.summary()
    assert (
        plan.writes == [f"POST /api/v3/repos/{forge.github_repo}/issues/7/comments"]
        and repo.comments(7) == []
    )


def test_zen_label_values_map_labels_of_another_convention(
    forge: ForgeSetup, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """ZEN's training labels use 1..n: background 1, nuclei 2. Without eval-label-values a 2 is no class."""
    repo = Repo(forge, "github", tmp_path)
    ws = repo.checkout(FINDS_ALL)
    _, bright, dim = nuclei()
    write_image(ws / "labels" / "cells_labels.png", (bright | dim).astype(np.uint8) + 1)
    env = repo.env(ws, SHA["a"], mode="validate", eval_label_values="1,2")
    assert run_action(env) == 0, capsys.readouterr().out
    assert float(Run(repo, ws, env, 0, "", []).outputs()["score"]) == 1.0
    env = repo.env(ws, SHA["a"], mode="validate")
    (ws / "github_output").unlink()
    assert run_action(env) == 6
    log = capsys.readouterr().out
    assert (
        "values: value 2 is no class (the classes are background=0, nuclei=1; eval-label-values gives" in log
    )
    env = repo.env(ws, SHA["a"], mode="validate", eval_label_values="1,2,3")
    assert run_action(env) == 2
    assert "eval-label-values: gives 3 values for the model's 2 classes" in capsys.readouterr().out
