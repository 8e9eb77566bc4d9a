"""Shared pytest fixtures. Each block names the engineer area that owns it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

# ---- BEGIN fake forge fixtures (owner: publishing, see tests/forge_server.py) ----------------------
from forge_server import FakeForge, ForgeSetup, seed


@pytest.fixture
def forge() -> Iterator[ForgeSetup]:
    """A fake GitHub + GitLab on 127.0.0.1 (random port) with a write token, the GitHub repository
    ``acme/models`` and the GitLab project ``acme/models``; stopped after the test."""
    with FakeForge() as server:
        yield seed(server)


# ---- END fake forge fixtures -------------------------------------------------------------------------
