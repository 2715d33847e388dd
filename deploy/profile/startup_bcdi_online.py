"""IPython/bluesky profile snippet: live gap inpainting in the acquisition process.

Copy to ``~/.ipython/profile_<beamline>/startup/90-bcdi_online.py``. For a separate
process (recommended on a busy acquisition machine) use ``startup_bcdi_online_0mq.py``
and ``bcdi-online serve`` behind bluesky's 0MQ proxy (``deploy/systemd/``) instead.
The Tiled key comes from ``$TILED_API_KEY`` (the Tiled client reads it), never from
the server's ``$TILED_SINGLE_USER_API_KEY``.
"""

import os

from bcdi_online.callbacks import LiveInpainting

bcdi_live = LiveInpainting.from_uri(
    os.environ.get("TILED_URI", "http://localhost:8000"),
    device=os.environ.get("BCDI_ONLINE_DEVICE"),  # default: cuda if present
)
RE.subscribe(bcdi_live)  # noqa: F821 - RE comes from the beamline profile
