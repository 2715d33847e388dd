"""Tango device server: the live inpainting service as the ``BcdiOnline`` device."""

from __future__ import annotations

from ..tiled_output import bound_client_retries

bound_client_retries(60.0)  # the Tiled client reads its retry budget when first imported

try:
    from ._device import BcdiOnline  # noqa: E402
except ModuleNotFoundError as err:  # pragma: no cover - pytango is an extra
    if err.name != "tango":
        raise
    raise ModuleNotFoundError(
        "the BcdiOnline device server needs pytango: pip install 'bcdi-online[tango]'",
        name="tango",
    ) from err

__all__ = ["BcdiOnline", "main"]


def main() -> None:
    """Entry point of the ``BcdiOnline`` device server (Tango's usual arguments)."""
    BcdiOnline.run_server()
