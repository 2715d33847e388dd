"""CorrectedScanWriter against an in-process Tiled server, and its local fallback."""

from __future__ import annotations

import time

import numpy as np
import pytest
import stamina

from bcdi_online import __version__
from bcdi_online.tiled_output import (
    SPEC,
    CorrectedScanWriter,
    RetryPolicy,
    read_fallback,
    write_fallback,
)

FAST = RetryPolicy(first_delay=0.01, max_delay=0.05, fallback_after=30.0)


@pytest.fixture(scope="module")
def client(tmp_path_factory, make_tiled_context):
    from tiled.client import from_context

    context = make_tiled_context(tmp_path_factory.mktemp("tiled"))
    with context, stamina.set_testing(True, attempts=1):
        yield from_context(context)


def frames(n: int, offset: int = 0) -> np.ndarray:
    return np.arange(offset * 48, (offset + n) * 48, dtype=np.float32).reshape(n, 6, 8)


MASK = np.zeros((6, 8), bool)
MASK[:, 3:5] = True


def test_slabs_grow_one_array_and_metadata_follows(client, tmp_path):
    writer = CorrectedScanWriter(
        client, "raw-1", MASK, metadata={"scan_id": np.int64(7), "roi": np.arange(4)},
        fallback_dir=tmp_path, retry=FAST,
    )  # fmt: skip
    for offset, n in ((0, 3), (3, 1), (4, 5)):
        writer.append(frames(n, offset))
    assert writer.close("complete", timings={"wall_s": 1.5}) == "tiled"

    node = client["bcdi_online"]["raw-1"]
    assert writer.path == "bcdi_online/raw-1" and SPEC in [s.name for s in node.specs]
    np.testing.assert_array_equal(node["corrected"].read(), frames(9))
    np.testing.assert_array_equal(node["gap_mask"].read(), MASK)
    md = node.metadata
    assert md["status"] == "complete" and md["frames_in_tiled"] == 9
    assert md["scan_id"] == 7 and md["roi"] == [0, 1, 2, 3]
    assert md["package_version"] == __version__ and md["timings"] == {"wall_s": 1.5}
    assert writer.state()["write_failures"] == 0 and not list(tmp_path.iterdir())


def test_rewind_replaces_published_frames_in_tiled_and_in_the_fallback(client, tmp_path):
    writer = CorrectedScanWriter(client, "raw-rewind", MASK, fallback_dir=tmp_path, retry=FAST)
    writer.append(frames(4))
    writer.append(np.full((3, 6, 8), -1.0, np.float32))  # provisional frames 4-6
    deadline = time.monotonic() + 30
    while writer.state()["frames_in_tiled"] < 7 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert writer.state()["frames_in_tiled"] == 7
    writer.rewind(5)  # frame 4 stays, 5 and 6 are replaced by what follows
    assert writer.state()["frames_appended"] == 5
    writer.append(frames(4, 5))
    assert writer.close("complete") == "tiled"
    expected = np.concatenate([frames(4), np.full((1, 6, 8), -1.0, np.float32), frames(4, 5)])
    np.testing.assert_array_equal(
        client["bcdi_online"]["raw-rewind"]["corrected"].read(), expected
    )
    with pytest.raises(ValueError, match="cannot rewind to frame 10: 9 frames appended"):
        writer.rewind(10)

    offline = CorrectedScanWriter(None, "raw-rewind-2", MASK, fallback_dir=tmp_path, retry=FAST)
    offline.append(frames(6))
    offline.rewind(2)
    offline.append(frames(1, 2))
    assert offline.close("complete") == "fallback"
    corrected, _, _ = read_fallback(offline.local_fallback)
    np.testing.assert_array_equal(corrected, frames(3))


def test_second_processing_of_a_run_gets_its_own_key(client, tmp_path):
    keys = []
    for _ in range(2):
        writer = CorrectedScanWriter(client, "raw-2", MASK, fallback_dir=tmp_path, retry=FAST)
        writer.append(frames(2))
        assert writer.close("complete") == "tiled"
        keys.append(writer.key)
    assert keys[0] == "raw-2" and keys[1].startswith("raw-2-") and len(set(keys)) == 2
    for key in keys:
        assert client["bcdi_online"][key].metadata["raw_uid"] == "raw-2"


def test_without_client_everything_goes_to_the_fallback_file(tmp_path):
    writer = CorrectedScanWriter(None, "raw-3", MASK, fallback_dir=tmp_path, retry=FAST)
    writer.append(frames(2))
    writer.append(frames(3, 2))
    assert writer.close("aborted", exit_status="abort") == "fallback"

    data, mask, md = read_fallback(writer.local_fallback)
    assert writer.local_fallback == tmp_path / "bcdi_online_raw-3.h5"
    np.testing.assert_array_equal(data, frames(5))
    np.testing.assert_array_equal(mask, MASK)
    assert md["status"] == "aborted" and md["local_fallback"] == str(writer.local_fallback)


def test_fallback_file_round_trip_and_no_partial_file_left(tmp_path):
    path = write_fallback(tmp_path / "a" / "x.h5", frames(2), MASK, {"raw_uid": "u"})
    data, mask, md = read_fallback(path)
    np.testing.assert_array_equal(data, frames(2))
    assert md == {"raw_uid": "u"} and [p.name for p in path.parent.iterdir()] == ["x.h5"]


def test_append_checks_shape_and_closed_state(tmp_path):
    writer = CorrectedScanWriter(None, "raw-4", MASK, fallback_dir=tmp_path)
    writer.append(frames(1))
    with pytest.raises(ValueError, match="does not match"):
        writer.append(np.zeros((1, 5, 5), np.float32))
    with pytest.raises(ValueError, match="status must be one of"):
        writer.close("done")
    writer.close("complete")
    with pytest.raises(RuntimeError, match="closed"):
        writer.append(frames(1))


def test_retry_delays_grow_to_a_cap():
    policy = RetryPolicy(first_delay=1.0, factor=2.0, max_delay=5.0)
    assert [policy.delay(k) for k in (1, 2, 3, 4, 10)] == [1.0, 2.0, 4.0, 5.0, 5.0]
