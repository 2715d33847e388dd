"""Helpers for testing with bcdi-online, shipped like ``ophyd_async.testing``.

:func:`tiled_server`: an embedded Tiled server that stores Bluesky runs (TiledWriter),
reads the detector files in place and exports runs as documents (for replay) — the one
the demo, the benchmarks and the tests start.
"""

from __future__ import annotations

from ._tiled import tiled_server

__all__ = ["tiled_server"]
