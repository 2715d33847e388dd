"""Tiled nodes of a corrected scan: the run container and its growing ``corrected`` array."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._errors import ServiceError
from ._settings import SPEC


def create_run_container(
    client: Any, group: str, raw_uid: str, metadata: dict[str, Any]
) -> tuple[Any, str]:
    """Create (or find again) the container of one processing of a raw run.

    The key is ``raw_uid``; if a container of another processing (another
    ``processing_uid`` in its metadata) holds it, ``<raw_uid>-<processing_uid[:8]>``.
    A container of this processing left by an attempt whose reply was lost is reused.

    Parameters
    ----------
    client : tiled.client container
        Parent of ``group`` (created if missing).
    group : str
        Key of the container grouping corrected scans.
    raw_uid : str
        Uid of the raw run.
    metadata : dict
        Initial metadata, with ``processing_uid``.

    Returns
    -------
    node : tiled.client container
    key : str
    """
    parent = client[group] if group in client else client.create_container(group)
    processing_uid = str(metadata["processing_uid"])
    key = raw_uid
    if key in parent and parent[key].metadata.get("processing_uid") != processing_uid:
        key = f"{raw_uid}-{processing_uid[:8]}"
    if key in parent:
        return parent[key], key
    return parent.create_container(key, metadata=metadata, specs=[SPEC]), key


def write_frames(node: Any, array: Any, block: np.ndarray, offset: int) -> Any:
    """Write frames ``[offset, offset + k)`` of ``corrected``, creating or extending it.

    Idempotent: writing the same block at the same offset again gives the same array,
    so a write whose reply was lost can be retried.

    Parameters
    ----------
    node : tiled.client container
        The run container.
    array : tiled.client ArrayClient or None
        ``corrected`` if already known.
    block : (k, ny, nx) float32 ndarray
        Frames to write.
    offset : int
        Index of ``block[0]`` in the scan.

    Returns
    -------
    tiled.client ArrayClient
        ``corrected``.
    """
    if array is None and "corrected" in node:
        array = node["corrected"]
    if array is None:
        if offset != 0:
            raise ServiceError(f"corrected array missing in Tiled, cannot write at {offset}")
        return node.write_array(block, key="corrected", dims=("frame", "y", "x"))
    array.patch(block, offset=(offset, 0, 0), extend=True)
    return array


def write_product(
    node: Any,
    key: str,
    arrays: dict[str, tuple[np.ndarray, tuple[str, ...]]] | None,
    metadata: dict[str, Any],
    *,
    spec: str | None = None,
) -> None:
    """Write a result derived from a stored corrected scan into its run container.

    With ``arrays`` holding ``key`` only: one array node ``key``. Otherwise a container
    ``key`` (spec ``spec``) with ``metadata`` and the ``arrays`` (none: the metadata
    alone, e.g. a reconstruction that did not converge). A node already at ``key`` (an
    attempt whose reply was lost) is replaced.

    Parameters
    ----------
    node : tiled.client container
        The run container.
    key : str
        Key of the product in it.
    arrays : dict of str to (ndarray, dims), optional
        Arrays and their dimension names.
    metadata : dict
        Metadata of the product's node (JSON types).
    spec : str, optional
        Spec of a product container.
    """
    if key in node:
        node.delete_contents(key, recursive=True, external_only=False)
    if arrays is not None and list(arrays) == [key]:
        array, dims = arrays[key]
        node.write_array(array, key=key, dims=dims, metadata=metadata)
        return
    product = node.create_container(key, metadata=metadata, specs=[spec] if spec else None)
    for name, (array, dims) in (arrays or {}).items():
        product.write_array(array, key=name, dims=dims)
