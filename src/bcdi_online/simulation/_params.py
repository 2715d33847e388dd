"""Parameters of a simulated Bragg CDI crystal and its measurement."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._errors import SimulationError

ShapeName = Literal["wulff", "winterbottom", "cube", "octahedron", "hull"]
SHAPES: tuple[ShapeName, ...] = ("wulff", "winterbottom", "cube", "octahedron", "hull")


@dataclass(frozen=True)
class CrystalParams:
    """Everything that defines one simulated crystal and its diffraction pattern.

    Attributes
    ----------
    shape : str
        Crystal habit: ``"wulff"`` ({100} + {111} facets), ``"winterbottom"`` (Wulff
        truncated by a substrate plane), ``"cube"``, ``"octahedron"`` or ``"hull"``
        (random convex polyhedron).
    oversampling : float
        Linear oversampling ratio along the shortest grid axis (2-5): grid size divided by
        the crystal diameter. Fringe period in pixels along an axis of ``n`` voxels is
        ``oversampling * n / min(shape)``.
    photon_budget : float
        Total expected photons in the whole simulated volume (1e6-1e9).
    strain_amplitude : float
        Peak phase (radians) of the smooth random displacement field; 0 = unstrained.
    interface_strain : float
        Phase (radians) of the strain decaying away from the substrate (winterbottom only).
    dislocation : bool
        Add a screw-dislocation-like phase vortex (2 pi winding) through the crystal.
    background : float
        Mean expected background photons per voxel, added uniformly.
    edge_width : float
        Width (voxels) of the smooth sigmoid edge of the density.
    rotation : tuple of float
        Euler angles (radians, ZYZ) of the crystal orientation.
    wulff_ratio : float
        Ratio of {111} to {100} facet distances (1/sqrt(3)..sqrt(3)) for Wulff shapes.
    truncation : float
        Substrate plane height as a fraction of the radius (-0.7..0.3), winterbottom only.
    hull_facets : int
        Number of random facets of a ``"hull"`` crystal.
    seed : int
        Seed of every random draw made from these parameters (phase field, noise).
    shear : tuple of float
        Off-diagonal terms (zy, zx, yx) of the linear map from the orthogonal reciprocal
        frame to the sampled grid: a rocking scan samples reciprocal space on a sheared,
        non-orthogonal grid (detector frame), so the measured peak and its fringes are
        sheared. 0 = orthogonal frame.
    coherence_blur : float
        Standard deviation (voxels) of the Gaussian the intensity is convolved with:
        partial coherence of the beam and detector point spread, which lower the fringe
        visibility. 0 = fully coherent.
    """

    shape: ShapeName = "wulff"
    oversampling: float = 3.0
    photon_budget: float = 1e8
    strain_amplitude: float = 0.0
    interface_strain: float = 0.0
    dislocation: bool = False
    background: float = 0.0
    edge_width: float = 0.7
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wulff_ratio: float = 1.15
    truncation: float = -0.3
    hull_facets: int = 14
    seed: int = 0
    shear: tuple[float, float, float] = (0.0, 0.0, 0.0)
    coherence_blur: float = 0.0

    def __post_init__(self) -> None:
        if self.shape not in SHAPES:
            raise SimulationError(f"unknown crystal shape {self.shape!r}; known: {SHAPES}")
        if not 1.5 <= self.oversampling <= 8.0:
            raise SimulationError(f"oversampling {self.oversampling} outside [1.5, 8]")
        if not 1e3 <= self.photon_budget <= 1e11:
            raise SimulationError(f"photon_budget {self.photon_budget:g} outside [1e3, 1e11]")
        if not self.background >= 0:
            raise SimulationError(f"background {self.background} must be >= 0")
        if not (self.strain_amplitude >= 0 and self.interface_strain >= 0):
            raise SimulationError(
                f"strain_amplitude {self.strain_amplitude} and interface_strain "
                f"{self.interface_strain} must be >= 0"
            )
        if not self.edge_width > 0:
            raise SimulationError(f"edge_width {self.edge_width} must be > 0")
        if not 0.5 <= self.wulff_ratio <= 2.0:
            raise SimulationError(f"wulff_ratio {self.wulff_ratio} outside [0.5, 2]")
        if not -1.0 < self.truncation < 1.0:
            raise SimulationError(f"truncation {self.truncation} outside (-1, 1)")
        if self.hull_facets < 4:
            raise SimulationError(f"hull_facets {self.hull_facets} must be >= 4")
        if len(self.rotation) != 3:
            raise SimulationError(f"rotation {self.rotation} must be three Euler angles")
        if len(self.shear) != 3 or max(abs(t) for t in self.shear) > 1.0:
            raise SimulationError(f"shear {self.shear} must be three terms in [-1, 1]")
        if not 0.0 <= self.coherence_blur <= 3.0:
            raise SimulationError(f"coherence_blur {self.coherence_blur} outside [0, 3]")

    @classmethod
    def random(
        cls, rng: np.random.Generator, *, measurement_effects: bool = False, **overrides: Any
    ) -> CrystalParams:
        """Draw parameters covering the variety met at BCDI beamlines.

        Parameters
        ----------
        rng : numpy.random.Generator
            Source of randomness.
        measurement_effects : bool
            Also draw a detector-frame shear (terms up to 0.5 between the rocking and
            detector axes, 0.2 between the detector axes) and a partial-coherence blur
            (0-1 voxel). Off by default, which keeps the draws of earlier versions.
        **overrides
            Fields to fix instead of drawing.
        """
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        strained = rng.random() < 0.8
        values: dict[str, Any] = {
            "shape": shape,
            "oversampling": float(rng.uniform(2.0, 5.0)),
            "photon_budget": float(10 ** rng.uniform(6.0, 9.0)),
            "strain_amplitude": float(rng.uniform(0.2, 2.5)) if strained else 0.0,
            "interface_strain": float(rng.uniform(0.0, 1.5)) if shape == "winterbottom" else 0.0,
            "dislocation": bool(rng.random() < 0.15),
            "background": float(rng.choice([0.0, 0.0, rng.uniform(0.0, 0.05)])),
            "edge_width": float(rng.uniform(0.4, 1.2)),
            "rotation": tuple(float(a) for a in rng.uniform(0, 2 * np.pi, 3)),
            "wulff_ratio": float(rng.uniform(0.85, 1.5)),
            "truncation": float(rng.uniform(-0.6, 0.2)),
            "hull_facets": int(rng.integers(8, 24)),
            "seed": int(rng.integers(2**31)),
        }
        if measurement_effects:
            values["shear"] = tuple(float(t) for t in rng.uniform(-1, 1, 3) * (0.5, 0.5, 0.2))
            values["coherence_blur"] = float(rng.uniform(0.0, 1.0))
        values.update(overrides)
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        """Return the parameters as plain Python values (for HDF5 attributes, JSON)."""
        return dataclasses.asdict(self)
