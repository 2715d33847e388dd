"""``python -m bcdi_online.cli``, the same as ``bcdi-online``."""

from __future__ import annotations

from ._main import main

raise SystemExit(main())
