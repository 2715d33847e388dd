"""Crystal habits as smooth densities on a grid: faceted polyhedra from half-spaces."""

from __future__ import annotations

import numpy as np

from .._errors import SimulationError
from ._params import CrystalParams


def rotation_matrix(angles: tuple[float, float, float]) -> np.ndarray:
    """ZYZ Euler rotation.

    Parameters
    ----------
    angles : tuple of float
        (alpha, beta, gamma) in radians.

    Returns
    -------
    (3, 3) ndarray
    """
    a, b, g = angles

    def rz(t: float) -> np.ndarray:
        c, s = np.cos(t), np.sin(t)
        return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])

    cb, sb = np.cos(b), np.sin(b)
    ry = np.array([[cb, 0.0, sb], [0.0, 1.0, 0.0], [-sb, 0.0, cb]])
    return rz(a) @ ry @ rz(g)


def _cube_normals() -> np.ndarray:
    return np.vstack([np.eye(3), -np.eye(3)])


def _octahedron_normals() -> np.ndarray:
    signs = np.array([[x, y, z] for x in (1, -1) for y in (1, -1) for z in (1, -1)], float)
    return signs / np.sqrt(3.0)


#: Distance (in radii) of the {100} + {111} guard planes that keep a random hull bounded:
#: random normals alone often all lie in one hemisphere (an unbounded "crystal" filling the
#: grid) or leave long spikes; the guard caps the extent at about 1.66 radii.
HULL_GUARD = 1.15


def facets(params: CrystalParams, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Facet normals and distances of the crystal, in units of its radius.

    Parameters
    ----------
    params : CrystalParams
        Crystal description.
    rng : numpy.random.Generator
        Used for random hulls.

    Returns
    -------
    normals : (k, 3) ndarray
        Unit outward normals, already rotated to the crystal orientation.
    distances : (k,) ndarray
        Plane distances from the centre; the crystal is ``normals @ r <= distances``.
    """
    if params.shape == "cube":
        normals, dist = _cube_normals(), np.ones(6)
    elif params.shape == "octahedron":
        normals, dist = _octahedron_normals(), np.ones(8)
    elif params.shape == "hull":
        normals = rng.normal(size=(params.hull_facets, 3))
        normals /= np.linalg.norm(normals, axis=1, keepdims=True)
        dist = rng.uniform(0.75, 1.0, params.hull_facets)
        normals = np.vstack([normals, _cube_normals(), _octahedron_normals()])
        dist = np.concatenate([dist, np.full(14, HULL_GUARD)])
    else:  # wulff and winterbottom share the {100} + {111} habit
        normals = np.vstack([_cube_normals(), _octahedron_normals()])
        dist = np.concatenate([np.ones(6), np.full(8, params.wulff_ratio)])
    normals = normals @ rotation_matrix(params.rotation).T
    if params.shape == "winterbottom":
        # substrate below the crystal, normal -x in (z, y, x) components: keep
        # -x <= -truncation, i.e. x >= truncation (in radii; cut the bottom off)
        substrate = np.array([[0.0, 0.0, -1.0]])
        normals = np.vstack([normals, substrate])
        dist = np.concatenate([dist, [-params.truncation]])
    return _sheared(normals, dist, params.shear)


def _sheared(
    normals: np.ndarray, distances: np.ndarray, shear: tuple[float, float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Facets of the crystal seen through a sheared sampling grid.

    A grid that samples reciprocal space through ``q = B p`` (``B`` unit lower-triangular
    with ``shear`` off the diagonal) sees the intensity of the object ``rho(B^-T r)``: the
    half-space ``n . r <= d`` becomes ``(B^-1 n) . r <= d``, renormalised.
    """
    if not any(shear):
        return normals, distances
    zy, zx, yx = shear
    b = np.array([[1.0, 0.0, 0.0], [zy, 1.0, 0.0], [zx, yx, 1.0]])
    mapped = normals @ np.linalg.inv(b).T
    norm = np.linalg.norm(mapped, axis=1)
    return mapped / norm[:, None], distances / norm


def signed_distance(
    coords: tuple[np.ndarray, np.ndarray, np.ndarray],
    normals: np.ndarray,
    distances: np.ndarray,
) -> np.ndarray:
    """Approximate signed distance to a convex polyhedron (negative inside).

    Parameters
    ----------
    coords : tuple of three broadcastable ndarrays
        Grid coordinates (z, y, x) in voxels, centred on the crystal.
    normals : (k, 3) ndarray
        Unit facet normals.
    distances : (k,) ndarray
        Facet distances, in voxels.

    Returns
    -------
    ndarray
        ``max_i(n_i . r - d_i)`` on the broadcast grid, float32.
    """
    z, y, x = coords
    sdf: np.ndarray | None = None
    for (nz, ny, nx), d in zip(normals, distances, strict=True):
        plane = (nz * z + ny * y + nx * x - d).astype(np.float32)
        sdf = plane if sdf is None else np.maximum(sdf, plane)
    if sdf is None:
        raise SimulationError("a polyhedron needs at least one facet")
    return sdf


def density(
    shape: tuple[int, int, int], params: CrystalParams, rng: np.random.Generator
) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray, np.ndarray], float]:
    """Smooth crystal density on a grid.

    Parameters
    ----------
    shape : tuple of int
        Grid shape (nz, ny, nx).
    params : CrystalParams
        Crystal description; the radius is ``min(shape) / oversampling / 2``.
    rng : numpy.random.Generator
        Used for random hulls.

    Returns
    -------
    rho : (nz, ny, nx) float32 ndarray
        Density in [0, 1] with sigmoid edges of width ``params.edge_width``.
    coords : tuple of three ndarrays
        Open-grid coordinates (voxels from the centre), for phase fields.
    radius : float
        Crystal radius in voxels.
    """
    radius = min(shape) / params.oversampling / 2.0
    coords = tuple(
        (np.arange(n, dtype=np.float32) - n // 2).reshape([-1 if i == a else 1 for i in range(3)])
        for a, n in enumerate(shape)
    )
    normals, dist = facets(params, rng)
    sdf = signed_distance(coords, normals, dist * radius)  # type: ignore[arg-type]
    rho = 0.5 * (1.0 - np.tanh(sdf / np.float32(params.edge_width)))
    return rho.astype(np.float32), coords, radius  # type: ignore[return-value]
