"""Which field of a run is the detector, and its gap mask: descriptor and start document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bcdi_online.detectors import gap_mask


def frame_shape(data_key: dict[str, Any]) -> tuple[int, int] | None:
    """``(ny, nx)`` of a 2D data key (shape ``[ny, nx]`` or ``[1, ny, nx]``), else None."""
    shape = list(data_key.get("shape") or [])
    if len(shape) == 3 and shape[0] == 1:
        shape = shape[1:]
    if len(shape) == 2 and all(int(n) > 1 for n in shape):
        return int(shape[0]), int(shape[1])
    return None


def frames_per_event(data_key: Mapping[str, Any]) -> int:
    """Frames in one event of a detector data key: ``k`` for shape ``[k, ny, nx]``, else 1."""
    shape = list(data_key.get("shape") or [])
    return int(shape[0]) if len(shape) == 3 and int(shape[0]) > 0 else 1


def pick_field(descriptor: Mapping[str, Any], field: str | None) -> tuple[str | None, str]:
    """Choose the detector field of a descriptor.

    Parameters
    ----------
    descriptor : dict
        Event descriptor.
    field : str, optional
        Requested data key; default the single 2D data key.

    Returns
    -------
    field : str or None
        The data key, or None when the run has to be ignored.
    reason : str
        Why it was chosen, or why none was.
    """
    data_keys = descriptor.get("data_keys", {})
    if field is not None:
        if field not in data_keys:
            return None, f"field {field!r} not in stream {descriptor.get('name')!r}"
        if frame_shape(data_keys[field]) is None:
            return None, f"field {field!r} has shape {data_keys[field].get('shape')}, not 2D"
        return field, "requested"
    images = sorted(k for k, v in data_keys.items() if frame_shape(v) is not None)
    if len(images) == 1:
        return images[0], "the only 2D data key"
    if not images:
        return None, "no 2D detector data key"
    return None, f"several 2D data keys {images}: pass field="


def _config_value(config: dict[str, Any], suffix: str) -> Any:
    """Value of the configuration key ending with ``_<suffix>`` or ``-<suffix>``."""
    for key, value in config.items():
        if key.endswith((f"_{suffix}", f"-{suffix}")):
            return value
    return None


def detector_info(
    start: Mapping[str, Any], descriptor: Mapping[str, Any], field: str
) -> dict[str, Any]:
    """Detector registry name, ROI and MAXIPIX gap, from the start document or the device.

    Start-document keys ``bcdi_detector``, ``bcdi_roi``, ``bcdi_maxipix_gap`` win;
    otherwise the configuration of the device owning ``field`` (signals named
    ``detector_name``, ``roi``, ``maxipix_gap``, as :mod:`bcdi_online.sim_devices` has).

    Returns
    -------
    dict
        ``detector`` (str or None), ``roi`` (list of 4 int or None), ``maxipix_gap``
        (int) and ``source`` (where they came from, or None).
    """
    if start.get("bcdi_detector"):
        roi = start.get("bcdi_roi")
        return {
            "detector": str(start["bcdi_detector"]),
            "roi": None if roi is None else [int(v) for v in roi],
            "maxipix_gap": int(start.get("bcdi_maxipix_gap", 6)),
            "source": "start document",
        }
    device = descriptor["data_keys"][field].get("object_name", field)
    config = descriptor.get("configuration", {}).get(device, {}).get("data", {})
    name = _config_value(config, "detector_name")
    if name:
        roi = _config_value(config, "roi")
        gap = _config_value(config, "maxipix_gap")
        return {
            "detector": str(name),
            "roi": None if roi is None else [int(v) for v in np.ravel(roi)],
            "maxipix_gap": 6 if gap is None else int(gap),
            "source": f"configuration of {device!r}",
        }
    return {"detector": None, "roi": None, "maxipix_gap": 6, "source": None}


def mask_from_info(info: dict[str, Any]) -> np.ndarray | None:
    """Gap mask of :func:`detector_info`'s result, or None when it names no detector."""
    if not info.get("detector"):
        return None
    return gap_mask(info["detector"], info["roi"], maxipix_gap=info["maxipix_gap"])
