"""CorrectedRunWriter: a corrected scan as a Bluesky run in a real Tiled, and its result file."""

from __future__ import annotations

import numpy as np
import pytest
import stamina

from bcdi_online import __version__
from bcdi_online.tiled_output import (
    CorrectedRunWriter,
    corrected_metadata,
    find_corrected,
    read_corrected,
    read_result_file,
)


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


def test_a_corrected_scan_is_a_bluesky_run_found_from_the_raw_uid(client, tmp_path):
    writer = CorrectedRunWriter(
        client, "raw-1", MASK, metadata={"scan_id": np.int64(7), "roi": np.arange(4)},
        results_dir=tmp_path,
    )  # fmt: skip
    for offset, n in ((0, 3), (3, 1), (4, 5)):
        writer.append(frames(n, offset))
        writer.commit(offset + n)
    assert writer.close("complete", timings={"wall_s": 1.5}) == "tiled"

    run = find_corrected(client, "raw-1")
    assert "BlueskyRun" in [s.name for s in run.specs] and writer.path == writer.result_uid
    start, stop = run.metadata["start"], run.metadata["stop"]
    assert start["uid"] == writer.result_uid and start["original_run_uid"] == "raw-1"
    assert start["scan_id"] == 7 and start["bcdi_online"]["roi"] == [0, 1, 2, 3]
    assert stop["exit_status"] == "success" and stop["num_events"] == {"primary": 9, "gap_mask": 1}
    np.testing.assert_array_equal(run["primary"]["corrected"].read(), frames(9))
    np.testing.assert_array_equal(run["gap_mask"]["gap_mask"].read()[0].astype(bool), MASK)
    md = corrected_metadata(run.metadata)
    assert md["status"] == "complete" and md["package_version"] == __version__
    assert md["timings"] == {"wall_s": 1.5} and writer.state()["write_failures"] == 0
    names = [name for name, _ in run.documents()]
    assert names[0] == "start" and names[-1] == "stop" and "stream_datum" in names
    # the result file holds the same, with the final metadata
    data, mask, file_md = read_result_file(writer.file_path)
    np.testing.assert_array_equal(data, frames(9))
    assert (mask == MASK).all() and file_md["status"] == "complete"


def test_undeclared_frames_can_be_taken_back_declared_ones_cannot(client, tmp_path):
    writer = CorrectedRunWriter(client, "raw-rewind", MASK, results_dir=tmp_path)
    writer.append(frames(4))
    writer.commit(4)
    writer.append(np.full((3, 6, 8), -1.0, np.float32))  # provisional frames 4-6
    writer.rewind(5)  # frame 4 stays, 5 and 6 are replaced by what follows
    assert writer.state()["frames_appended"] == 5
    with pytest.raises(ValueError, match="cannot rewind to frame 3: 4 declared, 5 appended"):
        writer.rewind(3)
    writer.append(frames(4, 5))
    assert writer.close("complete") == "tiled"
    expected = np.concatenate([frames(4), np.full((1, 6, 8), -1.0, np.float32), frames(4, 5)])
    corrected, _ = read_corrected(client, "raw-rewind")
    np.testing.assert_array_equal(corrected, expected)
    np.testing.assert_array_equal(read_result_file(writer.file_path)[0], expected)


def test_a_second_processing_is_a_second_run_and_the_complete_one_is_found(client, tmp_path):
    first = CorrectedRunWriter(client, "raw-2", MASK, results_dir=tmp_path)
    first.append(frames(2))
    assert first.close("complete") == "tiled"
    second = CorrectedRunWriter(client, "raw-2", MASK, results_dir=tmp_path)
    second.append(frames(1))
    assert second.close("failed", error="boom") == "tiled"
    assert find_corrected(client, "raw-2").metadata["start"]["uid"] == first.result_uid
    failed = find_corrected(client, "raw-2", status="failed")
    assert failed.metadata["stop"]["exit_status"] == "fail"
    assert failed.metadata["stop"]["reason"] == "boom"
    third = CorrectedRunWriter(client, "raw-2", MASK, results_dir=tmp_path)
    third.append(frames(2, 2))
    assert third.close("complete") == "tiled"  # the latest complete one wins
    assert find_corrected(client, "raw-2").metadata["start"]["uid"] == third.result_uid


def test_a_run_that_failed_before_its_frame_shape_is_a_record_without_streams(client, tmp_path):
    writer = CorrectedRunWriter(client, "raw-nomask", None, results_dir=tmp_path)
    assert writer.close("failed", error="unknown detector") == "tiled"
    run = find_corrected(client, "raw-nomask")
    assert list(run) == [] and corrected_metadata(run.metadata)["error"] == "unknown detector"


def test_without_client_the_result_file_is_the_result(tmp_path):
    writer = CorrectedRunWriter(None, "raw-3", MASK, results_dir=tmp_path)
    writer.append(frames(2))
    writer.append(frames(3, 2))
    assert writer.close("aborted", exit_status="abort") == "fallback"

    data, mask, md = read_result_file(writer.local_fallback)
    assert writer.local_fallback == writer.file_path and writer.file_path.parent == tmp_path
    np.testing.assert_array_equal(data, frames(5))
    np.testing.assert_array_equal(mask, MASK)
    assert md["status"] == "aborted" and md["raw_uid"] == "raw-3"


def test_append_checks_shape_and_closed_state(tmp_path):
    writer = CorrectedRunWriter(None, "raw-4", MASK, results_dir=tmp_path)
    writer.append(frames(1))
    with pytest.raises(ValueError, match="does not match"):
        writer.append(np.zeros((1, 5, 5), np.float32))
    with pytest.raises(ValueError, match="status must be one of"):
        writer.close("done")
    writer.close("complete")
    with pytest.raises(RuntimeError, match="closed"):
        writer.append(frames(1))


def test_a_server_that_cannot_read_the_result_files_is_named_as_the_reason(
    tmp_path, make_tiled_context
):
    from tiled.client import from_context

    (tmp_path / "elsewhere").mkdir()
    context = make_tiled_context(tmp_path / "server", [tmp_path / "elsewhere"])  # not results
    with context, stamina.set_testing(True, attempts=1):
        client = from_context(context)
        writer = CorrectedRunWriter(client, "raw-5", MASK, results_dir=tmp_path / "results")
        writer.append(frames(3))
        assert writer.close("complete") == "fallback"  # the file holds it, Tiled cannot
        assert "readable_storage" in writer.last_error and str(writer.file_path) in (
            writer.last_error
        )
        np.testing.assert_array_equal(read_result_file(writer.local_fallback)[0], frames(3))


def test_frames_appended_before_the_mask_is_known_reach_the_file(tmp_path):
    writer = CorrectedRunWriter(None, "raw-6", None, results_dir=tmp_path)
    writer.append(frames(2))
    writer.set_gap_mask(MASK)
    writer.append(frames(1, 2))
    assert writer.close("complete") == "fallback"
    np.testing.assert_array_equal(read_result_file(writer.file_path)[0], frames(3))


def test_a_run_another_processor_ended_is_not_overwritten_by_a_late_stop(client, tmp_path):
    import time

    from bcdi_online.tiled_output import end_open_runs

    writer = CorrectedRunWriter(client, "raw-7", MASK, results_dir=tmp_path)
    writer.append(frames(2))
    writer.commit(2)
    deadline = time.monotonic() + 30
    while writer.state()["frames_in_tiled"] < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert end_open_runs(client, "raw-7", "taken over by p2") == [writer.result_uid]
    assert writer.close("complete") is None  # the late processor's result is not the result
    assert "ended by another processor" in writer.save_error
    metadata = corrected_metadata(client[writer.result_uid].metadata)
    assert metadata["status"] == "interrupted" and metadata["error"] == "taken over by p2"
