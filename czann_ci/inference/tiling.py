"""ZEN's tiling through ZEISS's cztile: tiles of InputShape whose borders (MinOverlap / 2 a side) are cut
off after inference; the centres cover the image exactly once. Tiles that reach past the edge of an image
smaller than a tile are filled with 0 there (ImageSource.read)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from czann_ci.errors import InvalidModelError
from czann_ci.inference.image_source import import_reader


def tile_strategy(tile: tuple[int, int], border: tuple[int, int]) -> Any:
    """cztile's AlmostEqualBorderFixedTotalAreaStrategy2D for tiles of (height, width) and borders of
    (height, width) pixels a side, as napari-czann-segment makes it."""
    strategies = import_reader("cztile.fixed_total_area_strategy_2d", "Images")
    from cztile.tiling_strategy import TileInput

    if any(2 * b >= t for b, t in zip(border, tile, strict=True)):
        raise InvalidModelError(
            f"MinOverlap {[2 * b for b in border]} leaves nothing of a {list(tile)} tile", field="MinOverlap"
        )
    return strategies.AlmostEqualBorderFixedTotalAreaStrategy2D(
        width=TileInput(tile[1], min_border_length=border[1]),
        height=TileInput(tile[0], min_border_length=border[0]),
    )


def tile_rows(
    height: int, width: int, tile: tuple[int, int], border: tuple[int, int]
) -> tuple[int, Iterator[list[Any]]]:
    """(number of tiles, the rows of tiles from the top, each left to right).

    cztile's calculate_2d_tiles is the product of its two 1D tilings (cztile 2.0.0); the rows are made
    from the same 1D tilings one at a time, so a 100000-pixel-high image does not hold millions of tile
    objects at once (tests/test_predict.py checks the rows against calculate_2d_tiles).
    """
    from cztile.tiling_strategy import Region2D, Tile2D, TileBorder2D

    strategy = tile_strategy(tile, border)
    across = strategy.horizontal_tiler.calculate_tiles(width)
    down = strategy.vertical_tiler.calculate_tiles(height)

    def rows() -> Iterator[list[Any]]:
        for vertical in down:
            yield [
                Tile2D(
                    center=Region2D(
                        x=horizontal.left_most_tile_pixel,
                        y=vertical.left_most_tile_pixel,
                        w=horizontal.width,
                        h=vertical.width,
                    ),
                    border=TileBorder2D(
                        left=horizontal.left_border_width,
                        top=vertical.left_border_width,
                        right=horizontal.right_border_width,
                        bottom=vertical.right_border_width,
                    ),
                )
                for horizontal in across
            ]

    return len(across) * len(down), rows()
