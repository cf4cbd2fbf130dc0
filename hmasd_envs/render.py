"""NumPy-only drawing of Alice_and_Bob frames (no pygame, so it runs headless anywhere)."""
from __future__ import annotations

import numpy as np

CELL = 32  # pixels per cell
WALL = (70, 70, 70)
FLOOR = (235, 235, 225)
GRID = (205, 205, 195)
GREY = (160, 160, 160)
COLOURS = {0: (215, 40, 40), 1: (40, 90, 215)}  # red, blue (the colour indices of the env)
AGENT_COLOURS = ((250, 170, 20), (30, 160, 60))  # alice orange, bob green


def _cell_slice(row: int, col: int) -> tuple[slice, slice]:
    # +1: the frame has a one-cell wall border around the floor.
    y, x = (row + 1) * CELL, (col + 1) * CELL
    return slice(y, y + CELL), slice(x, x + CELL)


def _offsets() -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre offsets from a cell's centre, for shape masks."""
    d = np.arange(CELL) - (CELL - 1) / 2.0
    return d[:, None], d[None, :]


def draw_frame(
    pos: np.ndarray,
    collected: np.ndarray,
    buttons: dict[int, tuple[int, int]],
    diamonds: dict[int, tuple[int, int]],
    size: int,
) -> np.ndarray:
    """uint8 [(size+2)*CELL, (size+2)*CELL, 3]: walls, buttons (squares with a dark rim),
    diamonds (rhombi, grey once collected), agents (discs; side by side when sharing a cell)."""
    side = (size + 2) * CELL
    frame = np.empty((side, side, 3), dtype=np.uint8)
    frame[:] = WALL
    frame[CELL:-CELL, CELL:-CELL] = FLOOR
    frame[CELL:-CELL:CELL, CELL:-CELL] = GRID  # grid lines mark the cells
    frame[CELL:-CELL, CELL:-CELL:CELL] = GRID
    dy, dx = _offsets()

    for colour, (r, c) in buttons.items():
        cell = frame[_cell_slice(r, c)]
        cell[3:-3, 3:-3] = tuple(v // 2 for v in COLOURS[colour])  # rim
        cell[6:-6, 6:-6] = COLOURS[colour]
    for colour, (r, c) in diamonds.items():
        cell = frame[_cell_slice(r, c)]
        cell[np.abs(dy) + np.abs(dx) <= CELL * 0.42] = GREY if collected[colour] else COLOURS[colour]

    shared = tuple(pos[0]) == tuple(pos[1])
    for i, (r, c) in enumerate(pos):
        cell = frame[_cell_slice(int(r), int(c))]
        shift = (-CELL / 4 if i == 0 else CELL / 4) if shared else 0.0
        radius = CELL * (0.22 if shared else 0.32)
        cell[(dy) ** 2 + (dx - shift) ** 2 <= radius**2] = AGENT_COLOURS[i]
    return frame
