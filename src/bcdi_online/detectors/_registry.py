"""Registry of named detectors and their module geometry.

Where pyFAI (2026.9) describes a detector, module size, gap and frame shape are its
class attributes ``MODULE_SIZE``, ``MODULE_GAP`` and ``MAX_SHAPE`` (``pyFAI.detectors``,
``_esrf.py``, ``_dectris.py``, ``_xspectrum.py``); the tests check every such mask
against pyFAI's ``calc_mask``. The others cite their own source.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from .._errors import ConfigurationTypeError, UnknownDetectorError
from ._spec import DetectorSpec

_UM55 = (55e-6, 55e-6)
_UM75 = (75e-6, 75e-6)
_UM172 = (172e-6, 172e-6)


def _family(
    members: list[tuple[str, tuple[int, int], str | None]], **common: Any
) -> list[DetectorSpec]:
    """Specs sharing a module geometry; members are ``(name, shape, pyFAI class)``."""
    return [
        DetectorSpec(name=name, shape=shape, pyfai=pyfai, **common)
        for name, shape, pyfai in members
    ]


_SPECS = [
    # ESRF MAXIPIX: 256 x 256 Timepix chips, 55 um pixels, chips 4 px apart in the image
    # (pyFAI Maxipix, Maxipix2x2, Maxipix5x1). The chip-edge pixels are enlarged, so one
    # dead edge pixel per side is added by default: a 6-px stripe (255..260 on a 2x2),
    # the mask bcdi (carnisj/bcdi, ``Maxipix._mask_gaps``) applies to ID01 data.
    *_family(
        [
            ("maxipix_1x1", (256, 256), "Maxipix"),
            ("maxipix_2x2", (516, 516), "Maxipix2x2"),
            ("maxipix_5x1", (256, 1296), "Maxipix5x1"),
        ],
        pixel_size=_UM55,
        module_shape=(256, 256),
        module_gap=(4, 4),
        edge_pixels=1,
        source="pyFAI.detectors.Maxipix (MODULE_SIZE, MODULE_GAP, MAX_SHAPE); "
        "enlarged edge pixels as in carnisj/bcdi Maxipix._mask_gaps",
    ),
    # DECTRIS EIGER (1): 514 x 1030 modules, 37 rows / 10 columns between modules. The
    # double-size pixels at chip boundaries inside a module are interpolated by the
    # detector (pyFAI Eiger docstring), so they are not dead and not masked.
    *_family(
        [
            ("eiger_500k", (514, 1030), "Eiger500k"),
            ("eiger_1m", (1065, 1030), "Eiger1M"),
            ("eiger_4m", (2167, 2070), "Eiger4M"),
            ("eiger_9m", (3269, 3110), "Eiger9M"),
            ("eiger_16m", (4371, 4150), "Eiger16M"),
        ],
        pixel_size=_UM75,
        module_shape=(514, 1030),
        module_gap=(37, 10),
        source="pyFAI.detectors.Eiger (MODULE_SIZE, MODULE_GAP) and MAX_SHAPE of each size",
    ),
    # DECTRIS EIGER2: 512 x 1028 modules, 38 rows / 12 columns between modules.
    *_family(
        [
            ("eiger2_500k", (512, 1028), "Eiger2_500k"),
            ("eiger2_1m", (1062, 1028), "Eiger2_1M"),
            ("eiger2_4m", (2162, 2068), "Eiger2_4M"),
            ("eiger2_9m", (3262, 3108), "Eiger2_9M"),
            ("eiger2_16m", (4362, 4148), "Eiger2_16M"),
        ],
        pixel_size=_UM75,
        module_shape=(512, 1028),
        module_gap=(38, 12),
        source="pyFAI.detectors.Eiger2 (MODULE_SIZE, MODULE_GAP) and MAX_SHAPE of each size",
    ),
    # DECTRIS EIGER2 CdTe: as EIGER2, plus 2 dead columns (513, 514) mid-module, where
    # the two CdTe sensors of a module meet (pyFAI Eiger2CdTe.calc_mask).
    *_family(
        [
            ("eiger2_cdte_500k", (512, 1028), "Eiger2CdTe_500k"),
            ("eiger2_cdte_1m", (1062, 1028), "Eiger2CdTe_1M"),
            ("eiger2_cdte_4m", (2162, 2068), "Eiger2CdTe_4M"),
            ("eiger2_cdte_9m", (3262, 3108), "Eiger2CdTe_9M"),
            ("eiger2_cdte_16m", (4362, 4148), "Eiger2CdTe_16M"),
        ],
        pixel_size=_UM75,
        module_shape=(512, 1028),
        module_gap=(38, 12),
        module_dead_columns=(513, 515),
        source="pyFAI.detectors.Eiger2CdTe (MODULE_SIZE, MODULE_GAP, mid-module "
        "columns of calc_mask) and MAX_SHAPE of each size",
    ),
    # ESRF ID01 "Eiger2M": four EIGER (1) 514 x 1030 modules stacked along y. Not in
    # pyFAI. Frame (2164, 1030) and 75 um pixels from carnisj/bcdi (Eiger2M); hence
    # 2164 = 4 * 514 + 3 * 36: 36 dead rows between modules (514..549, 1064..1099,
    # 1614..1649), which bcdi's Eiger2M._mask_gaps covers (511:552, 1061:1102,
    # 1611:1652). bcdi also masks chip boundaries and defects of the ID01 unit; pass
    # those as ``user_mask``.
    DetectorSpec(
        name="id01_eiger2m",
        shape=(2164, 1030),
        pixel_size=_UM75,
        module_shape=(514, 1030),
        module_gap=(36, 0),
        source="carnisj/bcdi bcdi/experiment/detector.py Eiger2M (frame shape, gap rows); "
        "module size of pyFAI.detectors.Eiger",
    ),
    # DECTRIS PILATUS: 195 x 487 modules, 17 rows / 7 columns between modules.
    *_family(
        [
            ("pilatus_300k", (619, 487), "Pilatus300k"),
            ("pilatus_300kw", (195, 1475), "Pilatus300kw"),
            ("pilatus_1m", (1043, 981), "Pilatus1M"),
            ("pilatus_2m", (1679, 1475), "Pilatus2M"),
            ("pilatus_6m", (2527, 2463), "Pilatus6M"),
        ],
        pixel_size=_UM172,
        module_shape=(195, 487),
        module_gap=(17, 7),
        source="pyFAI.detectors.Pilatus (MODULE_SIZE, MODULE_GAP) and MAX_SHAPE of each size",
    ),
    # X-Spectrum LAMBDA: 256 x 256 Medipix3 chips, 4 px apart in the image. pyFAI
    # models all sizes as one regular chip grid and masks no edge pixels; so do we.
    *_family(
        [
            ("lambda_250k", (516, 516), "Lambda250k"),
            ("lambda_750k", (516, 1556), "Lambda750k"),
            ("lambda_2m", (1556, 1556), "Lambda2M"),
        ],
        pixel_size=_UM55,
        module_shape=(256, 256),
        module_gap=(4, 4),
        source="pyFAI.detectors._Lambda (MODULE_SIZE, MODULE_GAP) and MAX_SHAPE of each size",
    ),
    # Quantum Detectors MERLIN quad: 2 x 2 Medipix3 chips of 256 x 256, 55 um pixels,
    # written with a 3-px gap (515 x 515). Not in pyFAI. carnisj/bcdi (Merlin) masks
    # 255:260, i.e. the gap and one enlarged edge pixel on each side.
    DetectorSpec(
        name="merlin",
        shape=(515, 515),
        pixel_size=_UM55,
        module_shape=(256, 256),
        module_gap=(3, 3),
        edge_pixels=1,
        source="carnisj/bcdi bcdi/experiment/detector.py Merlin (frame shape, 255:260 mask)",
    ),
]

DETECTORS: Mapping[str, DetectorSpec] = MappingProxyType({spec.name: spec for spec in _SPECS})
"""Read-only registry of the known detectors, by lower-case snake name."""


def _squash(name: str) -> str:
    """Lower-case ``name`` without ``-``, ``_``, spaces or dots, for lookup."""
    return re.sub(r"[-_\s.]", "", name.lower())


_BY_SQUASHED = {_squash(name): spec for name, spec in DETECTORS.items()}


def detector_names() -> list[str]:
    """Sorted names of the known detectors.

    Returns
    -------
    list of str
        Registry keys such as ``"eiger2_cdte_4m"``.

    """
    return sorted(DETECTORS)


def get_detector(name: str) -> DetectorSpec:
    """Look up a detector by name.

    Case, ``-``, ``_``, spaces and dots are ignored: ``"Maxipix-2x2"``,
    ``"MAXIPIX 2x2"`` and pyFAI's ``"Maxipix2x2"`` all find ``"maxipix_2x2"``.

    Parameters
    ----------
    name : str
        Detector name.

    Returns
    -------
    DetectorSpec

    Raises
    ------
    UnknownDetectorError
        If no detector has that name; the message lists the known names.
    TypeError
        If ``name`` is not a string.

    """
    if not isinstance(name, str):
        raise ConfigurationTypeError(f"detector name must be a str, got {type(name).__name__}")
    try:
        return _BY_SQUASHED[_squash(name)]
    except KeyError as err:
        raise UnknownDetectorError(
            f"unknown detector {name!r}; known detectors: {', '.join(detector_names())}"
        ) from err
