"""``LiveService``: the 0MQ listening thread, and what happens when it dies."""

from __future__ import annotations

import time

from bcdi_online.callbacks import LiveInpainting, LiveService

#: A host name 0MQ refuses when the dispatcher connects (in its thread, not at construction).
UNCONNECTABLE = "no such host:5578"


def wait_until_not_listening(service: LiveService, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while service.listening and time.monotonic() < deadline:
        time.sleep(0.05)


def test_a_dispatcher_that_dies_leaves_its_error_and_stops_cleanly(client, tmp_path):
    live = LiveInpainting(client, model=lambda p, m: p, fallback_dir=tmp_path)
    service = LiveService(live, UNCONNECTABLE)
    service.start()
    wait_until_not_listening(service)

    assert not service.listening
    assert service.error is not None
    assert "ZMQError" in service.error and UNCONNECTABLE in service.error
    assert service.stop(grace=1.0) == []  # nothing was running: nothing left behind


def test_start_after_a_failure_clears_the_error_and_tries_again(client, tmp_path, zmq_proxy):
    live = LiveInpainting(client, model=lambda p, m: p, fallback_dir=tmp_path)
    service = LiveService(live, UNCONNECTABLE)
    service.start()
    wait_until_not_listening(service)
    assert service.error is not None

    service.address = f"127.0.0.1:{zmq_proxy[1]}"  # the operator fixed the address
    service.start()
    try:
        time.sleep(0.5)
        assert service.listening and service.error is None
    finally:
        assert service.stop(grace=1.0) == []
    assert not service.listening and service.error is None
