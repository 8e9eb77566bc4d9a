"""Importing bioimageio.spec for a conversion leaves IPython alone: not imported by the spec outside a
notebook, importable afterwards, and untouched where it was already imported. Each case runs in a
fresh interpreter, since the spec is imported once per process."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
from requires import missing

pytest.importorskip("bioimageio.spec", reason=missing("bioimageio.spec"))
pytest.importorskip("IPython", reason=missing("IPython"))


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_the_spec_is_imported_without_ipython_which_stays_importable() -> None:
    out = run_python(
        """
        import sys
        from czann_ci.bioimageio.package import import_spec
        spec = import_spec()
        print("IPython" in sys.modules, spec.load_model_description.__name__)
        import IPython
        print(IPython.__name__)
        """
    )
    assert out.splitlines() == ["False load_model_description", "IPython"]


def test_where_ipython_is_imported_the_spec_uses_it() -> None:
    out = run_python(
        """
        import sys
        import IPython
        from czann_ci.bioimageio.package import import_spec
        import_spec()
        print(sys.modules["IPython"] is IPython, sys.modules["bioimageio.spec._pretty_validation_errors"]._enabled)
        """
    )
    assert out == "True True"
