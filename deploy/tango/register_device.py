"""Register the ``BcdiOnline`` device server in the beamline's Tango database.

Edit the names and properties, then run once with ``TANGO_HOST`` set::

    python register_device.py
    BcdiOnline beamline          # the device server (systemd, Astor or Starter)
"""

from __future__ import annotations

import tango

SERVER = "BcdiOnline/beamline"
DEVICE = "id01/bcdi/online"
PROPERTIES = {
    "ZmqAddress": "127.0.0.1:5578",  # bluesky-0MQ-proxy OUT address (msgpack documents)
    "TiledUri": "http://tiled:8000",
    "TiledApiKeyFile": "/etc/bcdi-online/tiled.key",  # mode 0600; not in the database
    "ModelPath": "",  # empty: the shipped weights
    "TorchDevice": "cuda:0",  # empty: CUDA when present, else CPU
    "FallbackDir": "/data/bcdi_online_fallback",
    "Grace": "60",
}

if __name__ == "__main__":
    info = tango.DbDevInfo()
    info.server, info._class, info.name = SERVER, "BcdiOnline", DEVICE
    database = tango.Database()
    database.add_device(info)
    database.put_device_property(DEVICE, {k: [v] for k, v in PROPERTIES.items()})
    print(f"registered {DEVICE} in {SERVER}; start it with: BcdiOnline beamline")
