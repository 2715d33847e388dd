"""Serve one ``BcdiOnline`` device without a Tango database (a test helper process).

Usage: ``python serve_device.py PORT PROPERTIES_JSON``; prints ``READY`` once the device
is exported and serves until its stdin closes (as ophyd-async's Tango test servers do).
"""

from __future__ import annotations

import json
import sys

from tango.test_context import MultiDeviceTestContext

from bcdi_online.tango_server import BcdiOnline

DEVICE = "test/bcdi/online"

if __name__ == "__main__":
    port, properties = int(sys.argv[1]), json.loads(sys.argv[2])
    devices = [{"class": BcdiOnline, "devices": [{"name": DEVICE, "properties": properties}]}]
    with MultiDeviceTestContext(devices, host="127.0.0.1", port=port, process=False, timeout=90):
        print("READY", flush=True)
        sys.stdin.read()
