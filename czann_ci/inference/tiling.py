"""ZEN's tiling through ZEISS's cztile: tiles of InputShape whose borders (MinOverlap / 2 a side) are cut
off after inference; the centres cover the image exactly once. Tiles that reach past the edge of an image
smaller than a tile are filled with 0 there (ImageSource.read)."""

from __future__ import annotations

from itertools import groupby
from typing import Any

from czann_ci.errors import InvalidModelError


def plan_tiles(height: int, width: int, tile: tuple[int, int], border: tuple[int, int]) -> list[list[Any]]:
    """cztile's AlmostEqualBorderFixedTotalAreaStrategy2D tiles of the plane, as rows (same centre y)."""
    from cztile.fixed_total_area_strategy_2d import AlmostEqualBorderFixedTotalAreaStrategy2D
    from cztile.tiling_strategy import Region2D, TileInput

    if any(2 * b >= t for b, t in zip(border, tile, strict=True)):
        raise InvalidModelError(
            f"MinOverlap {[2 * b for b in border]} leaves nothing of a {list(tile)} tile", field="MinOverlap"
        )
    strategy = AlmostEqualBorderFixedTotalAreaStrategy2D(
        width=TileInput(tile[1], min_border_length=border[1]),
        height=TileInput(tile[0], min_border_length=border[0]),
    )
    tiles = sorted(strategy.calculate_2d_tiles(Region2D(x=0, y=0, w=width, h=height)), key=_order)
    return [list(row) for _, row in groupby(tiles, key=lambda t: t.center.y)]


def _order(tile: Any) -> tuple[int, int]:
    return tile.center.y, tile.center.x
