"""Tango device server: the live inpainting service as the ``BcdiOnline`` device."""

from __future__ import annotations

from ._device import BcdiOnline

__all__ = ["BcdiOnline", "main"]


def main() -> None:
    """Entry point of the ``BcdiOnline`` device server (Tango's usual arguments)."""
    BcdiOnline.run_server()
