"""IPython/bluesky profile snippet: live gap inpainting in the acquisition process.

Copy to ``~/.ipython/profile_<beamline>/startup/90-bcdi_online.py``. For a separate
process (recommended on a busy acquisition machine) use ``startup_bcdi_online_0mq.py``
and ``bcdi-online serve`` behind bluesky's 0MQ proxy (``deploy/systemd/``) instead.
The Tiled key comes from ``$TILED_API_KEY`` (the Tiled client reads it), never from
the server's ``$TILED_SINGLE_USER_API_KEY``.
"""

from bcdi_online import ServiceSettings
from bcdi_online.callbacks import LiveInpainting

# the service's settings: $BCDI_ONLINE_CONFIG (a TOML file), $BCDI_ONLINE_*, defaults
bcdi_settings = ServiceSettings.load()
bcdi_live = LiveInpainting.from_uri(
    bcdi_settings.tiled_uri,
    device=bcdi_settings.device,  # default: cuda if present
    model=bcdi_settings.model,
    fallback_dir=bcdi_settings.fallback_dir,
    crystal=bcdi_settings.crystal,
)
RE.subscribe(bcdi_live)  # noqa: F821 - RE comes from the beamline profile
