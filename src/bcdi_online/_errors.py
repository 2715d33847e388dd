"""Exception hierarchy of bcdi-online.

Every error the package raises derives from :class:`BcdiOnlineError` and, where it
fits, from the matching builtin, so ``except ValueError`` keeps working for callers
that do not know this package.
"""

from __future__ import annotations


class BcdiOnlineError(Exception):
    """Base class of every error raised by bcdi-online."""


class UnknownDetectorError(BcdiOnlineError, KeyError):
    """A detector name is not in the registry."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class GapMaskError(BcdiOnlineError, ValueError):
    """A gap mask or region of interest does not fit the frame it applies to."""


class InputDataError(BcdiOnlineError, ValueError):
    """Measured data has the wrong shape, dtype or values (NaN, inf, negative counts)."""


class ModelError(BcdiOnlineError, RuntimeError):
    """A model checkpoint cannot be loaded or does not match its configuration."""


class SimulationError(BcdiOnlineError, ValueError):
    """Simulation parameters are out of their valid range."""


class ReplayError(BcdiOnlineError, RuntimeError):
    """An archived run cannot be found or read back as Bluesky documents."""


class PhasingError(BcdiOnlineError, ValueError):
    """Phase-retrieval inputs or settings are invalid, or a reconstruction cannot be made."""


class ConfigurationError(BcdiOnlineError, ValueError):
    """A setting or argument is outside its allowed values (or of the wrong kind)."""


class ConfigurationTypeError(ConfigurationError, TypeError):
    """A setting or argument is of the wrong type."""


class ServiceError(BcdiOnlineError, RuntimeError):
    """A service (Tiled, the 0MQ proxy) refuses, cannot be reached, or is set up unsafely."""


class StorageFullError(BcdiOnlineError, OSError):
    """A result file would not fit: the disk's free space or the process's file size limit."""
