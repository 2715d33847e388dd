"""Rocking scans to and from NeXus-style HDF5 files."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import h5py
import numpy as np

from .._errors import InputDataError
from ..detectors import DETECTOR_DATA_PATH, PIXEL_MASK_PATH
from ._params import CrystalParams
from ._scan import RockingScan

#: HDF5 paths of a scan file, NeXus-style (NXentry/NXinstrument/NXdetector, NXdata).
DATA_PATH = DETECTOR_DATA_PATH
MASK_PATH = PIXEL_MASK_PATH
DESCRIPTION_PATH = "entry/instrument/detector/description"
ROI_PATH = "entry/instrument/detector/roi"
TRUTH_PATH = "entry/simulation/truth"
EXPECTED_PATH = "entry/simulation/expected"
OBJECT_PATH = "entry/sample/object"


def _nx_group(parent: h5py.Group, name: str, nx_class: str) -> h5py.Group:
    group = parent.require_group(name)
    group.attrs["NX_class"] = nx_class
    return group


def write_scan(path: str | Path, scan: RockingScan) -> Path:
    """Write a rocking scan, its gap mask and its ground truth to HDF5.

    Layout: ``/entry`` (NXentry) holds ``instrument/detector`` (NXdetector: ``data``
    counts with gaps, ``pixel_mask`` with NeXus meaning 1 = dead), ``data`` (NXdata
    linking the detector data), ``sample/object`` (complex crystal) and ``simulation``
    (NXcollection: ``truth``, ``expected``, parameters as attributes). Counts are
    compressed with Bitshuffle-LZ4 (hdf5plugin), chunked one frame at a time.

    Parameters
    ----------
    path : str or Path
        Output file, overwritten.
    scan : RockingScan
        The scan.

    Returns
    -------
    Path
        The written file.
    """
    path = Path(path)
    ny, nx = scan.mask.shape
    import hdf5plugin  # here, not at the top: the engine runs without it (GPU nodes)

    compression = hdf5plugin.Bitshuffle(cname="lz4")
    with h5py.File(path, "w") as f:
        f.attrs["default"] = "entry"
        entry = _nx_group(f, "entry", "NXentry")
        entry.attrs["default"] = "data"
        entry["definition"] = "NXmx-like simulated BCDI rocking scan"
        det = _nx_group(_nx_group(entry, "instrument", "NXinstrument"), "detector", "NXdetector")
        det["description"] = scan.detector
        det["roi"] = np.asarray(scan.roi, dtype=np.int64)
        det.create_dataset("data", data=scan.data, chunks=(1, ny, nx), **compression).attrs[
            "units"
        ] = "counts"
        det.create_dataset("pixel_mask", data=scan.mask.astype(np.uint32))
        nxdata = _nx_group(entry, "data", "NXdata")
        nxdata.attrs["signal"] = "data"
        nxdata["data"] = h5py.SoftLink(DATA_PATH)
        sample = _nx_group(entry, "sample", "NXsample")
        sample.create_dataset("object", data=scan.obj, compression="gzip", compression_opts=1)
        sim = _nx_group(entry, "simulation", "NXcollection")
        sim.create_dataset("truth", data=scan.truth, chunks=(1, ny, nx), **compression)
        sim.create_dataset(
            "expected",
            data=scan.expected,
            chunks=(1, ny, nx),
            compression="gzip",
            compression_opts=1,
        )
        for key, value in scan.params.as_dict().items():
            sim.attrs[key] = value
        sim.attrs["metadata"] = json.dumps(scan.metadata)
    return path


def read_truth(path: str | Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Read only the simulator's truth of a scan file, if it holds one.

    Parameters
    ----------
    path : str or Path
        A file written by :func:`write_scan`, or any scan file.

    Returns
    -------
    tuple of (n_frames, ny, nx) ndarray, or None
        The noisy counts without gaps (``truth``) and the noise-free intensity
        (``expected``); None for a file without them (a measured scan).
    """
    with h5py.File(path, "r") as f:
        if TRUTH_PATH not in f or EXPECTED_PATH not in f:
            return None
        return f[TRUTH_PATH][()], f[EXPECTED_PATH][()]


def read_scan(path: str | Path, *, with_truth: bool = True) -> RockingScan:
    """Read a file written by :func:`write_scan`.

    Parameters
    ----------
    path : str or Path
        HDF5 file.
    with_truth : bool
        Also load the ground truth and object (large); else they are empty arrays.

    Returns
    -------
    RockingScan

    Raises
    ------
    InputDataError
        If the file cannot be opened or lacks the frames, ``pixel_mask``,
        ``description`` or ``roi`` of the detector, or they do not fit together.
    """
    import hdf5plugin  # noqa: F401  (registers the Bitshuffle filter that decodes the counts)

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise InputDataError(f"cannot open scan file {str(path)!r}: {err}") from err
    with f:
        for needed, what in (
            (DATA_PATH, "the frames"),
            (MASK_PATH, "the gap mask (NeXus pixel_mask, non-zero = dead)"),
            (DESCRIPTION_PATH, "the detector name (NeXus description)"),
            (ROI_PATH, "the detector region (y0, y1, x0, x1)"),
        ):
            if needed not in f:
                raise InputDataError(
                    f"{str(path)!r} has no {needed!r} ({what}): not a bcdi-online scan file"
                )
        try:
            data = f[DATA_PATH][()]
            mask = f[MASK_PATH][()].astype(bool)
            description = f[DESCRIPTION_PATH][()]
            roi = tuple(int(v) for v in np.ravel(f[ROI_PATH][()]))
        except (OSError, TypeError, ValueError) as err:  # a truncated file, a wrong type
            raise InputDataError(f"cannot read scan file {str(path)!r}: {err}") from None
        if data.ndim != 3 or mask.shape != data.shape[1:] or len(roi) != 4:
            raise InputDataError(
                f"{str(path)!r}: frames {data.shape}, pixel_mask {mask.shape} and roi {roi} "
                "do not fit (n_frames, ny, nx), (ny, nx) and 4 values"
            )
        sim = f["entry/simulation"] if "entry/simulation" in f else None
        empty = np.zeros((0,) * 3, dtype=np.float32)
        truth = f[TRUTH_PATH][()] if with_truth and sim is not None else empty
        expected = f[EXPECTED_PATH][()] if with_truth and sim is not None else empty
        obj = f[OBJECT_PATH][()] if with_truth and OBJECT_PATH in f else empty
        params = CrystalParams()
        metadata: dict = {}
        if sim is not None:
            names = {field.name for field in dataclasses.fields(CrystalParams)}
            fields = {k: v for k, v in sim.attrs.items() if k in names}  # not NX_class
            fields = {k: v.item() if isinstance(v, np.generic) else v for k, v in fields.items()}
            for vector in ("rotation", "shear"):  # stored as arrays
                if vector in fields:
                    fields[vector] = tuple(float(a) for a in fields[vector])
            params = CrystalParams(**fields)
            metadata = json.loads(sim.attrs.get("metadata", "{}"))
        return RockingScan(
            data=data,
            mask=mask,
            truth=truth,
            expected=expected,
            obj=obj,
            detector=description.decode() if isinstance(description, bytes) else str(description),
            roi=roi,  # type: ignore[arg-type]
            params=params,
            metadata=metadata,
        )
