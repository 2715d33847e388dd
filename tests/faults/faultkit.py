"""Shared parts of the fault suite: devices, document faults, the contract every test checks.

Each fault test runs a real scan (a RunEngine with an ophyd v1 or ophyd-async simulated
detector), lets a fault happen between the RunEngine and the live callback (lost,
repeated, reordered or altered documents, broken files, services down), then checks
the contract of docs/reliability.md with :func:`check`: the final status (and its
reason), that the RunEngine saw no exception, that the raw data were not modified, and
that the corrected volume equals the offline inpainting of the frames that arrived
(NaN frames where frames are missing), or is absent with the reason.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import httpx
import numpy as np
import torch
from event_model import pack_event_page
from ophyd.sim import SynAxis

from bcdi_online.callbacks import LiveInpainting
from bcdi_online.inpainting import GapInpainter, find_bad_pixels, inpaint_with_bad_pixels
from bcdi_online.sim_devices import DATA_PATH, CrystalSource, SimBcdiDetectorV1
from bcdi_online.tiled_output import find_corrected, read_corrected, read_result_file

N_FRAMES, ROI = 40, 64
ETA = (-0.5, 0.5)
WAIT = 60.0  # seconds for a run to end


def mean_predictor(patches: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Cheap deterministic stand-in model: each window's mean measured count."""
    keep = (~masks).float()
    total = (patches * keep).sum(dim=(1, 2, 3), keepdim=True)
    return (total / keep.sum(dim=(1, 2, 3), keepdim=True).clamp(min=1)).expand_as(patches)


INPAINTER = GapInpainter(mean_predictor)
FALLBACK_AFTER = 30.0  # seconds a finished run waits for Tiled


def make_live(client: Any, tmp_path: Path, **kwargs: Any) -> LiveInpainting:
    """The live callback with the stand-in model and its own result directory."""
    kwargs.setdefault("fallback_after", FALLBACK_AFTER)
    kwargs.setdefault("model", INPAINTER)
    kwargs.setdefault("fallback_dir", tmp_path / "fallback")
    return LiveInpainting(client, **kwargs)


# -- devices ------------------------------------------------------------------------


class RecordingDetector(SimBcdiDetectorV1):
    """The v1 detector, recording each frame it emits (``frames``), optionally altered.

    ``alter(index, frame) -> frame`` (float32) lets a test put bad pixels in frames.
    """

    def __init__(self, *args: Any, alter: Callable | None = None, **kwargs: Any) -> None:
        self.alter, self.frames = alter, []
        super().__init__(*args, **kwargs)

    def _take_frame(self) -> np.ndarray:
        frame = super()._take_frame()
        if self.alter is not None:
            frame = self.alter(len(self.frames), frame.astype(np.float32))
        self.frames.append(frame.copy())
        return frame


def v1_detector(n_frames: int = N_FRAMES, seed: int = 0, roi: int = ROI, **kwargs: Any):
    """A v1 detector on a simulated crystal and its motor."""
    source = CrystalSource.simulate("maxipix_2x2", n_frames=n_frames, roi_size=roi, seed=seed)
    eta = SynAxis(name="eta")
    return RecordingDetector(source, eta, name="mpx", **kwargs), eta


# -- the network between the RunEngine and the callback -----------------------------


@dataclass(eq=False)  # hashable: the RunEngine keeps its subscribers in a registry
class Network:
    """Documents from the RunEngine to ``target``, through a fault ``rule``.

    ``rule(name, doc) -> [(name, doc), ...]`` says what reaches the target for each
    document (nothing: lost; twice: repeated; later: held). With ``pages``, events are
    grouped into ``event_page`` documents of that many events first (as a RunEngine
    with a bulk emitter or a replay sends them). Every document the RunEngine emits is
    also kept, deep-copied, in :attr:`sent` (to check later that nothing was modified).
    """

    target: Callable[[str, dict], Any]
    rule: Callable[[str, dict], list[tuple[str, dict]]] = lambda name, doc: [(name, doc)]
    pages: int = 0
    sent: list[tuple[str, dict]] = field(default_factory=list)
    originals: list[tuple[str, dict]] = field(default_factory=list)
    _events: list[dict] = field(default_factory=list)

    def __call__(self, name: str, doc: dict) -> None:
        self.sent.append((name, copy.deepcopy(doc)))
        self.originals.append((name, doc))
        if self.pages and name == "event":
            self._events.append(doc)
            if len(self._events) < self.pages:
                return
            name, doc = "event_page", pack_event_page(*self._events)
            self._events = []
        elif self.pages and self._events and name != "event":
            self._forward("event_page", pack_event_page(*self._events))
            self._events = []
        self._forward(name, doc)

    def _forward(self, name: str, doc: dict) -> None:
        for out_name, out_doc in self.rule(name, doc):
            self.target(out_name, out_doc)


class Gate:
    """A rule that holds every document from the ``after``-th stream datum on (the stop
    document too) until :meth:`release`: the callback lags behind the detector, so a
    test can break the detector's file in between."""

    def __init__(self, after: int) -> None:
        self.after, self.datums, self.held, self.opened = after, 0, [], False

    def __call__(self, name: str, doc: dict) -> list[tuple[str, dict]]:
        if name == "stream_datum":
            self.datums += 1
        if not self.opened and (
            self.held or (name == "stream_datum" and self.datums > self.after)
        ):
            self.held.append((name, doc))
            return []
        return [(name, doc)]

    def release(self, target: Callable[[str, dict], Any]) -> None:
        """Deliver the held documents, in order, and everything after them."""
        self.opened = True
        for name, doc in self.held:
            target(name, doc)


def frames_of(documents: Iterable[tuple[str, dict]], field_name: str = "mpx_image") -> list:
    """Every inline frame in these documents (events and event pages), in order."""
    frames = []
    for name, doc in documents:
        if name == "event" and field_name in doc["data"]:
            frames.append(np.asarray(doc["data"][field_name]))
        elif name == "event_page" and field_name in doc["data"]:
            frames += [np.asarray(f) for f in doc["data"][field_name]]
    return frames


def assert_unmodified(network: Network, field_name: str = "mpx_image") -> None:
    """The frames the RunEngine emitted (the arrays the callback was handed) are unchanged."""
    now, then = frames_of(network.originals, field_name), frames_of(network.sent, field_name)
    assert len(now) == len(then) > 0
    for frame, copy_at_emission in zip(now, then, strict=True):
        np.testing.assert_array_equal(frame, copy_at_emission)


def sha256(path: str | Path, skip: int = 0) -> str:
    """Checksum of a file from byte ``skip`` on (files the callback reads must not change).

    ``skip=48`` leaves out an HDF5 superblock (version 2/3): its status flags are HDF5's
    own, cleared when the last handle closes; with the detector in the test's process, the
    writer's close waits for the callback's reader, so they change then.
    """
    return hashlib.sha256(Path(path).read_bytes()[skip:]).hexdigest()


def settled(path: str | Path, timeout: float = 10.0) -> str:
    """Wait until the detector has finished writing ``path`` (the same bytes 0.2 s apart);
    return its checksum."""
    deadline = time.monotonic() + timeout
    last = sha256(path)
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = sha256(path)
        if now == last:
            return now
        last = now
    raise AssertionError(f"{path} still changing after {timeout} s")


def assert_file_frames(path: str | Path, frames: np.ndarray) -> None:
    """The detector file still holds exactly ``frames`` (the callback only reads it)."""
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f[DATA_PATH][()], frames)


# -- the expected result --------------------------------------------------------------


def expected_volume(
    frames: np.ndarray,
    mask: np.ndarray,
    missing: Iterable[int] = (),
    count: int | None = None,
    inpainter: GapInpainter = INPAINTER,
) -> np.ndarray:
    """Offline inpainting of the frames that arrived: each run of consecutive frames on
    its own (``GapInpainter`` on the clean ones), NaN frames at the missing positions.

    ``frames`` holds every position of the scan (those missing are ignored); ``count``
    the number of positions (default ``len(frames)``).
    """
    count = len(frames) if count is None else count
    missing = set(missing)
    out = np.full((count, *mask.shape), np.nan, np.float32)
    start = 0
    while start < count:
        if start in missing:
            start += 1
            continue
        stop = start
        while stop < count and stop not in missing:
            stop += 1
        segment = np.asarray(frames[start:stop])
        if find_bad_pixels(segment, mask).any():
            out[start:stop] = inpaint_with_bad_pixels(inpainter, segment, mask)[0]
        else:
            out[start:stop] = inpainter(segment, mask)
        start = stop
    return out


# -- the outcome and the contract ------------------------------------------------------


@dataclass
class Outcome:
    """What a run left: its health, its Tiled record (or fallback file) and volume."""

    uid: str
    health: dict[str, Any]
    metadata: dict[str, Any] | None
    corrected: np.ndarray | None
    where: str | None  # "tiled", "fallback" or None


def _in_tiled(client: Any, uid: str) -> Any:
    """The corrected run of ``uid`` in Tiled, None if none (or Tiled is down)."""
    try:
        return None if client is None else find_corrected(client, uid)
    except httpx.HTTPError:  # Tiled down (the fault under test)
        return None


def outcome(live: LiveInpainting, client: Any, uid: str) -> Outcome:
    """Wait for run ``uid`` to end; read its result from Tiled, else its fallback file."""
    assert live.wait(WAIT), live.health().get(uid)
    health = live.health()[uid]
    run = _in_tiled(client, uid) if health.get("saved_to") != "fallback" else None
    if run is not None:
        corrected, metadata = read_corrected(client, uid)
        return Outcome(uid, health, metadata, corrected if corrected.size else None, "tiled")
    if health.get("local_fallback"):
        corrected, _, metadata = read_result_file(health["local_fallback"])
        return Outcome(uid, health, metadata, corrected, "fallback")
    return Outcome(uid, health, None, None, None)


def run_scan(
    run_engine: Any, target: Callable, plan: Any, rule: Callable | None = None, *, pages: int = 0
) -> tuple[str, Network]:
    """Run ``plan``, its documents reaching ``target`` through ``rule``; uid and network.

    The RunEngine call itself must not raise: the callback never breaks a scan.
    """
    network = Network(target, rule or (lambda name, doc: [(name, doc)]), pages=pages)
    (uid,) = run_engine(plan, network).run_start_uids
    return uid, network


def check(
    out: Outcome,
    status: str,
    *,
    expected: np.ndarray | None = None,
    reason: str | None = None,
    missing: list[list[int]] | None = None,
    where: str | None = "tiled",
    network: Network | None = None,
    exit_status: str = "success",
) -> None:
    """The contract: the final status (health and record agree), where the result is,
    its values (``expected``; NaN where frames are missing) or the ``reason`` it has
    none, the missing frames listed; with ``network``, that the RunEngine saw no
    exception (its stop document says ``exit_status``) and its frames were not
    modified."""
    if network is not None:
        stop = next(doc for name, doc in network.sent if name == "stop")
        assert stop["exit_status"] == exit_status, stop
        if frames_of(network.sent):
            assert_unmodified(network)
    health = out.health
    assert health["status"] == status, health
    assert out.where == where, (out.where, health)
    if out.metadata is not None:
        assert out.metadata["status"] == status, out.metadata
    if expected is not None:
        assert out.corrected is not None and out.corrected.dtype == np.float32
        assert out.corrected.shape == expected.shape, (out.corrected.shape, expected.shape)
        np.testing.assert_allclose(out.corrected, expected, rtol=1e-5, atol=1e-4)
    if reason is not None:
        error = str(health.get("last_error")) + str((out.metadata or {}).get("error"))
        assert reason in error, error
    if missing is not None:
        assert health["missing_frames"] == missing, health
        assert health["frames_missing"] == sum(b - a for a, b in missing)
        if out.metadata is not None:
            assert out.metadata["processing"]["missing_frames"] == missing
