"""Results derived from a stored corrected scan (fill uncertainty, crystal), beside its run."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._settings import DEFAULT_GROUP


def write_product(
    client: Any,
    result_uid: str,
    key: str,
    arrays: dict[str, tuple[np.ndarray, tuple[str, ...]]] | None,
    metadata: dict[str, Any],
    *,
    spec: str | None = None,
) -> str:
    """Write a product of the corrected run ``result_uid`` to ``<group>/<result_uid>/<key>``.

    Products live beside the run, not in it: a Bluesky run's children are its streams.
    With ``arrays`` holding ``key`` only: one array node ``key``. Otherwise a container
    ``key`` (spec ``spec``) with ``metadata`` and the ``arrays`` (none: the metadata
    alone, e.g. a reconstruction that did not converge). A node already at ``key`` (an
    attempt whose reply was lost) is replaced.

    Parameters
    ----------
    client : tiled.client container
        The catalog holding the corrected run.
    result_uid : str
        Uid of the corrected run.
    key : str
        Key of the product.
    arrays : dict of str to (ndarray, dims), optional
        Arrays and their dimension names.
    metadata : dict
        Metadata of the product's node (JSON types).
    spec : str, optional
        Spec of a product container.

    Returns
    -------
    str
        Path of the product, relative to ``client``.
    """
    group = (
        client[DEFAULT_GROUP]
        if DEFAULT_GROUP in client
        else client.create_container(DEFAULT_GROUP)
    )
    node = (
        group[result_uid]
        if result_uid in group
        else group.create_container(result_uid, metadata={"result_uid": result_uid})
    )
    if key in node:
        node.delete_contents(key, recursive=True, external_only=False)
    if arrays is not None and list(arrays) == [key]:
        array, dims = arrays[key]
        node.write_array(array, key=key, dims=dims, metadata=metadata)
    else:
        product = node.create_container(key, metadata=metadata, specs=[spec] if spec else None)
        for name, (array, dims) in (arrays or {}).items():
            product.write_array(array, key=name, dims=dims)
    return f"{DEFAULT_GROUP}/{result_uid}/{key}"
