"""Fault class: more frames than the model can take: a whole scan arriving faster than
inference (sustained overload), besides the 10x burst of tests/callbacks."""

from __future__ import annotations

import time
import tracemalloc

import numpy as np
import torch
from bluesky.plans import scan
from faultkit import (
    ETA,
    N_FRAMES,
    check,
    expected_volume,
    make_live,
    mean_predictor,
    outcome,
    run_scan,
    v1_detector,
)

from bcdi_online.inpainting import GapInpainter

N_LONG, ROI_SMALL = 256, 40


def slow(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """The stand-in model, slower than the scan: 0.3 s a window (44 windows, ~13 s)."""
    time.sleep(0.3 * len(patches))
    return mean_predictor(patches, masks)


def test_sustained_overload_degrades_bounded_and_loses_nothing(run_engine, client, tmp_path):
    """Fault: a 256-frame scan arriving faster than inference from start to end."""
    det, eta = v1_detector(N_LONG, roi=ROI_SMALL)
    live = make_live(client, tmp_path, model=GapInpainter(slow, batch_size=1), queue_size=4)
    raw_bytes = N_LONG * det.source.mask.size * 4  # the scan's frames, as float32
    lag: list[int] = []  # frames produced but not yet through the model, every 64 frames

    def watch(name, doc):
        if name == "event" and doc["seq_num"] % 64 == 0:
            (health,) = live.health().values()  # the one run
            lag.append(doc["seq_num"] - health["frames_processed"])
        return [(name, doc)]

    # a short scan first, so that what the first scan of a process loads and caches
    # (imports, schemas, the writer's first Tiled nodes) is not counted as backlog
    warm_det, warm_eta = v1_detector(roi=ROI_SMALL)
    warm = make_live(client, tmp_path / "warm-up")
    warm_uid, _ = run_scan(run_engine, warm, scan([warm_det], warm_eta, *ETA, N_FRAMES))
    outcome(warm, client, warm_uid)
    tracemalloc.start()
    try:
        uid, network = run_scan(run_engine, live, scan([det], eta, *ETA, N_LONG), watch)
        out = outcome(live, client, uid)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # the model lagged all along the scan: frames waited at every quarter, more at the end
    assert len(lag) == 4 and min(lag) > 0 and lag[-1] > lag[0], lag
    expected = expected_volume(np.stack(det.frames), det.source.mask)
    check(out, "complete", network=network, expected=expected)
    health = out.health
    assert health["degraded"] and health["overflow_events"] > 0
    assert health["frames_final"] == N_LONG and health["frames_failed"] == 0
    # memory: the backlog is reported, never more than the frames received, and drained
    assert 0 < health["peak_backlog_bytes"] <= N_LONG * det.source.mask.size * 4
    assert health["backlog_bytes"] == 0
    assert out.metadata["processing"]["peak_backlog_bytes"] == health["peak_backlog_bytes"]
    assert peak < 12 * raw_bytes, (peak, raw_bytes)  # a few copies of the scan at most
