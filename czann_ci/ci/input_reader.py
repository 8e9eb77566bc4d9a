"""The step's inputs as the runner hands them over: INPUT_<NAME> (GitHub, Forgejo) or CZANN_<NAME> (GitLab)."""

from __future__ import annotations

from collections.abc import Mapping

from czann_ci.errors import UsageError

TRUE_SPELLINGS = ("true", "True", "TRUE")
FALSE_SPELLINGS = ("false", "False", "FALSE")


class InputReader:
    """Looks up an input under every spelling a runner may use, first non-empty wins."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self.env = env

    def raw(self, name: str) -> str:
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
