"""Settings of the live service, in one place: ``serve``, ``replay``, the Tango device, profiles.

Precedence, lowest first: the defaults below; a TOML file (``--config`` /
``ConfigFile`` property / ``$BCDI_ONLINE_CONFIG``); ``BCDI_ONLINE_*`` environment
variables (and the Tiled client's own ``TILED_URI`` / ``TILED_API_KEY_FILE``); then what
the command line or the Tango device's properties set. The Tiled API key itself is never
a setting: it is read from ``api_key_file``, else ``$TILED_API_KEY``, and never printed.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ._errors import ConfigurationError

#: Environment variable naming the settings file.
CONFIG_ENV = "BCDI_ONLINE_CONFIG"
_config_file: ContextVar[Path | None] = ContextVar("bcdi_online_config_file", default=None)


class ServiceSettings(BaseSettings):
    """What a live inpainting service needs to run (see the module's precedence).

    Each field's environment variable is ``BCDI_ONLINE_`` + its name in capitals, and
    its key in the TOML file is its name.
    """

    # an alias choice is matched case-insensitively in the environment: the field's own
    # name ("tiled_uri", for the file and the overrides) also reads $TILED_URI, so the
    # BCDI_ONLINE_ variable comes first
    model_config = SettingsConfigDict(
        env_prefix="BCDI_ONLINE_", extra="forbid", validate_default=True, frozen=True
    )

    tiled_uri: str = Field(
        "http://localhost:8000",
        validation_alias=AliasChoices("BCDI_ONLINE_TILED_URI", "tiled_uri", "TILED_URI"),
    )
    """Tiled server of the corrected data (and of the raw runs, for ``replay``)."""
    api_key_file: Path | None = Field(
        None,
        validation_alias=AliasChoices(
            "BCDI_ONLINE_API_KEY_FILE", "api_key_file", "TILED_API_KEY_FILE"
        ),
    )
    """File whose first line is the Tiled API key (else ``$TILED_API_KEY``)."""
    device: str | None = Field(None, pattern=r"^(cpu|cuda(:\d+)?|mps)$")
    """Torch device of the model (None: CUDA if present, else the CPU)."""
    model: Path | None = None
    """Checkpoint of the model (None: the shipped weights)."""
    fallback_dir: Path | None = None
    """Folder of the result files: the corrected frames, registered in Tiled (which must
    be able to read it), the whole result while Tiled is down (None: the default)."""
    fallback_after: float = Field(60.0, ge=0)
    """Seconds a finished run waits for Tiled before its result file alone stands for it."""
    crystal: bool | None = None
    """Reconstruct the crystal of every complete run (None: when the model runs on CUDA)."""
    frames_from: Literal["files", "tiled"] = "files"
    """Where stream-datum frames are read: the detector's files, or the raw run in Tiled."""
    zmq_out: str = "localhost:5578"
    """0MQ proxy OUT address the service listens to (``serve --zmq``)."""
    zmq_in: str = "127.0.0.1:5577"
    """0MQ proxy IN address the RunEngine publishes to (the acquisition profile)."""
    allow_pickle: bool = False
    """Accept pickled documents from a proxy on this machine (never from another)."""
    grace: float = Field(60.0, ge=0)
    """Seconds runs in progress get to finish when the service stops."""
    run_timeout: float = Field(4 * 3600.0, ge=0)
    """Seconds without a document before an unfinished run ends ``interrupted`` (0: never)."""
    name: str | None = None
    """Name of the service, unique among those writing to one Tiled (None: from the host)."""
    queue: str | None = Field(None, pattern=r"^rediss?://")
    """Redis URL of the run queue shared by several ``serve`` processors (None: process
    every run heard); the RunEngines announce their runs there (``RunAnnouncer``)."""
    queue_stream: str = Field("bcdi_online:runs", min_length=1)
    """Redis key of the run queue (a stream; one per facility or group of processors)."""
    takeover_after: float = Field(30.0, gt=0)
    """Seconds without a heartbeat before another processor takes over a processor's runs."""
    max_runs: int = Field(4, ge=1)
    """Runs a processor of a shared queue owns at once."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Order the sources: overrides, the environment, the TOML file (then defaults)."""
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = _config_file.get()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    @classmethod
    def load(cls, config: str | Path | None = None, **overrides: Any) -> ServiceSettings:
        """Read the settings: file, environment, then ``overrides`` that are not None.

        Parameters
        ----------
        config : str or Path, optional
            TOML file (default: ``$BCDI_ONLINE_CONFIG``, else none).
        **overrides
            Field values from the command line or the Tango properties; None means
            "not given".

        Raises
        ------
        ConfigurationError
            For a missing or unreadable file, an unknown key or a value outside its range.
        """
        path = config or os.environ.get(CONFIG_ENV) or None
        if path is not None and not Path(path).is_file():
            raise ConfigurationError(f"settings file {str(path)!r} does not exist")
        given = {key: value for key, value in overrides.items() if value is not None}
        with _reading(Path(path) if path else None):
            try:
                return cls(**given)
            except ValidationError as err:
                problems = "; ".join(
                    f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}"
                    for e in err.errors()
                )
                where = f" (file {str(path)!r})" if path else ""
                raise ConfigurationError(f"bad settings{where}: {problems}") from None
            except (OSError, ValueError) as err:  # an unreadable or malformed TOML file
                raise ConfigurationError(
                    f"cannot read settings file {str(path)!r}: {err}"
                ) from None


@contextmanager
def _reading(path: Path | None) -> Iterator[None]:
    token = _config_file.set(path)
    try:
        yield
    finally:
        _config_file.reset(token)
