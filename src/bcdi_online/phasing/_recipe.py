"""Recipes: which algorithm runs how long, with which support updates."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .._errors import PhasingError

ALGORITHMS = ("HIO", "RAAR", "ER")
_STEP = re.compile(r"(HIO|RAAR|ER)(?:\(([0-9.]+)\))?\*\*(\d+)")


@dataclass(frozen=True)
class Stage:
    """A run of one algorithm.

    Attributes
    ----------
    algorithm : str
        ``"HIO"``, ``"RAAR"`` or ``"ER"``.
    iterations : int
        Number of iterations.
    beta : float
        Feedback parameter of HIO and RAAR (ignored by ER).
    """

    algorithm: str
    iterations: int
    beta: float = 0.9

    def __post_init__(self) -> None:
        if self.algorithm not in ALGORITHMS:
            raise PhasingError(f"unknown algorithm {self.algorithm!r}; known: {ALGORITHMS}")
        if self.iterations < 1:
            raise PhasingError(
                f"stage {self.algorithm} needs >= 1 iteration, got {self.iterations}"
            )
        if not 0.0 < self.beta < 1.0:
            raise PhasingError(f"beta {self.beta} of stage {self.algorithm} outside (0, 1)")


@dataclass(frozen=True)
class Recipe:
    """A phase-retrieval recipe.

    Attributes
    ----------
    stages : tuple of Stage
        Run in order; the default is PyNX's BCDI default shape, shortened:
        ``HIO**300 * RAAR**200 * ER**150`` (read right to left in PyNX notation).
    shrink_wrap_every : int
        Iterations between support updates (0 = never); not during the last ER stage's
        final ``shrink_wrap_every`` iterations, so the support is settled at the end.
    shrink_wrap_threshold : float
        Support = blurred modulus above this fraction of its maximum.
    shrink_wrap_sigma : float
        Gaussian blur of the shrink-wrap, voxels.
    autocorrelation_threshold : float
        Initial support: the autocorrelation (inverse FFT of the intensity) above this
        fraction of its maximum.
    release : float
        For the ``*_then_free`` treatments of unmeasured voxels: the fraction of the HIO
        and RAAR iterations during which they are imposed before being left free
        (PyNX's ``zero_mask=auto`` uses 0.6).
    tv_iterations : int
        Total-variation iterations after the stages, for the ``tv`` treatment.
    tv_step : float
        Total-variation step, relative to the object's maximum modulus.
    """

    stages: tuple[Stage, ...] = field(
        default_factory=lambda: (Stage("HIO", 300), Stage("RAAR", 200, 0.75), Stage("ER", 150))
    )
    shrink_wrap_every: int = 20
    shrink_wrap_threshold: float = 0.2
    shrink_wrap_sigma: float = 1.0
    autocorrelation_threshold: float = 0.1
    release: float = 0.6
    tv_iterations: int = 100
    tv_step: float = 0.02

    def __post_init__(self) -> None:
        if not self.stages:
            raise PhasingError("a recipe needs at least one stage")
        if not 0.0 < self.shrink_wrap_threshold < 1.0:
            raise PhasingError(
                f"shrink_wrap_threshold {self.shrink_wrap_threshold} outside (0, 1)"
            )
        if not 0.0 <= self.release <= 1.0:
            raise PhasingError(f"release {self.release} outside [0, 1]")

    @property
    def iterations(self) -> int:
        """Total number of iterations."""
        return sum(stage.iterations for stage in self.stages)

    @classmethod
    def parse(cls, text: str, **options: float | int) -> Recipe:
        """Build a recipe from PyNX-like text, run left to right: ``"HIO**300 ER**150"``.

        ``RAAR`` stages take beta 0.75, ``HIO`` 0.9; ``HIO(0.7)**300`` sets it.

        Examples
        --------
        >>> Recipe.parse("HIO**400 ER**200").iterations
        600
        """
        stages = []
        for token in text.split():
            found = _STEP.fullmatch(token)
            if found is None:
                raise PhasingError(
                    f"cannot read recipe step {token!r} of {text!r}: expected e.g. 'HIO**300'"
                )
            name, beta, count = found.groups()
            default_beta = 0.75 if name == "RAAR" else 0.9
            stages.append(Stage(name, int(count), float(beta) if beta else default_beta))
        return cls(stages=tuple(stages), **options)  # type: ignore[arg-type]
