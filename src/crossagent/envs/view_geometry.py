"""Where world cells appear on the observation image, and back, on the 0–999 point scale.

Crafter draws a 9x9 grid of units (unit = size // 9) centred on the canvas: the top 7 rows
show world cells around the player (the player in column 4, row 3), the bottom 2 rows show
the inventory. Points are resolution-free: x (column) and y (row) in 0..999 of the image.
"""

from __future__ import annotations

from crossagent.envs.text_view import LOCAL_VIEW

Cell = tuple[int, int]
Point = tuple[int, int]
GRID_UNITS = 9
POINT_SCALE = 1000


def _layout(image_size: int) -> tuple[int, int]:
    unit = image_size // GRID_UNITS
    border = (image_size - unit * GRID_UNITS) // 2
    return unit, border


def view_slot_at_point(point: Point, image_size: int) -> tuple[int, int] | None:
    """(column, row) of the view grid under a point, or None if it falls outside the world view."""
    unit, border = _layout(image_size)
    px = point[0] * image_size / POINT_SCALE
    py = point[1] * image_size / POINT_SCALE
    column, row = int((px - border) // unit), int((py - border) // unit)
    if 0 <= column < LOCAL_VIEW[0] and 0 <= row < LOCAL_VIEW[1]:
        return column, row
    return None


def cell_at_point(player: Cell, point: Point, image_size: int) -> Cell | None:
    """The world cell a point shows, or None for the inventory bar and the border."""
    slot = view_slot_at_point(point, image_size)
    if slot is None:
        return None
    return player[0] + slot[0] - LOCAL_VIEW[0] // 2, player[1] + slot[1] - LOCAL_VIEW[1] // 2


def point_of_cell(player: Cell, cell: Cell, image_size: int) -> Point | None:
    """The point at the centre of a world cell on the image, or None if the cell is out of view."""
    column = cell[0] - player[0] + LOCAL_VIEW[0] // 2
    row = cell[1] - player[1] + LOCAL_VIEW[1] // 2
    if not (0 <= column < LOCAL_VIEW[0] and 0 <= row < LOCAL_VIEW[1]):
        return None
    unit, border = _layout(image_size)
    x = (border + (column + 0.5) * unit) * POINT_SCALE / image_size
    y = (border + (row + 0.5) * unit) * POINT_SCALE / image_size
    return int(round(x)), int(round(y))
