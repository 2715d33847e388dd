"""IPython/bluesky profile snippet: live gap inpainting in the acquisition process.

Copy to ``~/.ipython/profile_<beamline>/startup/90-bcdi_online.py``. For a separate
process (recommended on a busy acquisition machine) use ``bcdi-online serve`` behind
bluesky's 0MQ proxy (``deploy/systemd/``) instead.
"""

import os

from bcdi_online.callbacks import LiveInpainting

bcdi_live = LiveInpainting.from_uri(
    os.environ.get("TILED_URI", "http://localhost:8000"),
    api_key=os.environ.get("TILED_SINGLE_USER_API_KEY"),
    device=os.environ.get("BCDI_ONLINE_DEVICE"),  # default: cuda if present
)
RE.subscribe(bcdi_live)  # noqa: F821 - RE comes from the beamline profile
