"""Fault class: several processors sharing the runs of several RunEngines, one killed.

In one process (:class:`RunSharing` on a real Redis and Tiled, fed by a real RunEngine
as the 0MQ dispatcher would feed it): ownership, acknowledgement only once the result is
stored, loss, takeover from Tiled after the bound. Then real processes: three
``bcdi-online serve`` processes on one Redis run queue and one
``bluesky-0MQ-proxy``, two RunEngines (each with TiledWriter, a RunAnnouncer and a 0MQ
publisher) in threads, a Tiled server as deploy/ configures it (PostgreSQL catalog and
tables: two TiledWriters at once crash a server with DuckDB tables); the owner of a run
is SIGKILLed mid-run. Needs Redis and PostgreSQL (skipped without, failed in CI).
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time
from contextlib import contextmanager

import numpy as np
import pytest
import stamina
from bluesky import RunEngine
from bluesky.plans import scan
from bluesky_tiled_plugins import TiledWriter
from faultkit import (
    ETA,
    INPAINTER,
    N_FRAMES,
    expected_volume,
    make_live,
    mean_predictor,
    v1_detector,
)
from faultprocs import ProxyProcess, ServeProcess, publisher, serve
from tiled.client import from_uri
from tiled.queries import Key

from bcdi_online.callbacks import RunAnnouncer, RunQueue, RunSharing
from bcdi_online.inpainting import GapInpainter
from bcdi_online.tiled_output import CorrectedRunWriter, corrected_metadata, read_corrected

SCANS_PER_ENGINE, FRAMES = 6, 16
TAKEOVER_AFTER = 3.0


@contextmanager
def engine_in_thread():
    """A RunEngine for a thread other than the main one (no SIGINT handler)."""
    loop = asyncio.new_event_loop()
    run_engine = RunEngine({}, loop=loop, context_managers=[], call_returns_result=True)
    try:
        yield run_engine
    finally:
        loop.call_soon_threadsafe(loop.stop)
        run_engine._th.join()
        loop.close()


def start_together(processes: list[ServeProcess], timeout: float = 120) -> None:
    """Start the processes at once (their model loads overlap), return once all listen."""
    for process in processes:
        process.start(wait=False)
    deadline = time.monotonic() + timeout
    while not all("sharing the runs" in p.out.read_text() for p in processes):
        for p in processes:
            assert p.process.poll() is None, p.err.read_text()
        assert time.monotonic() < deadline, "serve did not start"
        time.sleep(0.2)
    time.sleep(1.5)  # the SUB sockets connect to the proxy


class KillOwner:
    """Subscribed after the publisher: at event ``at_event`` of the ``at_scan``-th run,
    SIGKILL the processor that owns the run (as the queue says)."""

    def __init__(self, announcer, queue, processes, at_scan: int, at_event: int) -> None:
        self.announcer, self.queue, self.processes = announcer, queue, processes
        self.at_scan, self.at_event = at_scan, at_event
        self.runs, self.uid, self.killed = 0, None, None

    def __call__(self, name, doc):
        if name == "start":
            self.runs, self.uid = self.runs + 1, doc["uid"]
        if name != "event" or self.runs != self.at_scan or doc["seq_num"] != self.at_event:
            return
        entry = self.announcer.announced[self.uid]
        deadline = time.monotonic() + 10
        while (owner := self._owner(entry)) is None:
            assert time.monotonic() < deadline, "nobody took the run"
            time.sleep(0.05)
        self.processes[owner].process.kill()
        self.killed = (owner, self.uid)

    def _owner(self, entry):
        return next((r["owner"] for r in self.queue.pending() if r["entry_id"] == entry), None)


@pytest.fixture
def reap():
    """Processes to SIGKILL after the test, whatever happened."""
    processes: list[ServeProcess] = []
    yield processes
    for process in processes:
        if process.process is not None and process.process.poll() is None:
            process.process.kill()
            process.process.wait(10)


@pytest.fixture
def facility(postgres_database, deploy_tiled_config, tiled_process, tmp_path):
    """A Tiled server as deploy/ runs it, a client, its API key and a 0MQ proxy."""
    key = secrets.token_hex(32)
    # readable: the detector files and every processor's result files (tmp_path/<name>/)
    config = deploy_tiled_config(postgres_database, tmp_path / "tiled", readable=[tmp_path])
    proxy = ProxyProcess().start()
    with tiled_process(["config", str(config)], key) as uri:
        client = from_uri(uri, api_key=key)
        yield uri, client, key, proxy
        client.context.close()
    proxy.kill()


@pytest.mark.slow
def test_three_processors_process_each_of_twelve_runs_once_and_take_over_a_killed_one(
    facility, tiny, redis_url, queue_stream, reap, tmp_path
):
    uri, client, api_key, proxy = facility
    options = ("--model", str(tiny[0]), "--queue", redis_url, "--queue-stream", queue_stream,
               "--takeover-after", str(TAKEOVER_AFTER), "--max-runs", "2")  # fmt: skip
    names = ["p0", "p1", "p2"]
    processes = {n: serve(tmp_path, proxy, uri, api_key, *options, name=n) for n in names}
    reap.extend(processes.values())
    start_together(list(processes.values()))
    queue = RunQueue.from_url(redis_url, queue_stream)
    scans: dict[str, np.ndarray] = {}  # uid -> the frames the detector emitted
    errors: list[BaseException] = []

    def beamline(index: int, killer: KillOwner | None, announcer: RunAnnouncer) -> None:
        raw = from_uri(uri, api_key=api_key)
        pub = publisher(proxy)
        try:
            with engine_in_thread() as run_engine:
                run_engine.subscribe(TiledWriter(raw, batch_size=1))
                run_engine.subscribe(announcer)  # before the publisher: queued first
                run_engine.subscribe(pub)
                if killer is not None:
                    run_engine.subscribe(killer)
                for n in range(SCANS_PER_ENGINE):
                    det, eta = v1_detector(FRAMES, seed=10 * index + n, exposure_time=0.02)
                    (uid,) = run_engine(scan([det], eta, *ETA, FRAMES)).run_start_uids
                    scans[uid] = (np.stack(det.frames), det.source.mask)
        except BaseException as err:
            errors.append(err)
        finally:
            pub.close()
            raw.context.close()

    announcers = [RunAnnouncer.from_url(redis_url, stream=queue_stream) for _ in range(2)]
    killer = KillOwner(announcers[0], queue, processes, at_scan=3, at_event=6)
    threads = [
        threading.Thread(target=beamline, args=(0, killer, announcers[0])),
        threading.Thread(target=beamline, args=(1, None, announcers[1])),
    ]
    # the Tiled client's own retries, as at a beamline (the fault suite turns them off):
    # two TiledWriters creating the first table of a stream layout at once race in Tiled
    # 0.2.20 (PostgreSQL "CREATE TABLE IF NOT EXISTS" conflict, a 500), the retry passes
    with stamina.set_testing(True, attempts=5):
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
    assert not errors, errors
    assert len(scans) == 2 * SCANS_PER_ENGINE and killer.killed is not None
    dead, taken_uid = killer.killed

    # every run gets exactly one complete result, equal to the offline inpainting
    deadline = time.monotonic() + 120
    results = {}
    while time.monotonic() < deadline:
        results = {uid: _results(client, uid) for uid in scans}
        done = all(any(md["status"] == "complete" for md in r.values()) for r in results.values())
        if done and queue.pending() == []:  # (acknowledged once stored: a moment later)
            break
        time.sleep(0.5)
    assert queue.pending() == []  # every run acknowledged, none left to anyone
    for uid, (frames, mask) in scans.items():
        complete = [key for key, md in results[uid].items() if md["status"] == "complete"]
        assert len(complete) == 1, (uid, results[uid])
        others = [md for md in results[uid].values() if md["status"] != "complete"]
        assert all(md["status"] == "interrupted" for md in others), others
        expected = expected_volume(frames, mask, inpainter=tiny[1])
        corrected = client[complete[0]]["primary"]["corrected"].read()
        np.testing.assert_allclose(corrected, expected, rtol=1e-4, atol=1e-3)
        owner = results[uid][complete[0]]["service"]["owner"]
        assert owner != dead or uid != taken_uid
    # the killed processor's run: its partial result retired, the taker's complete
    (taker,) = {md["service"]["owner"] for md in results[taken_uid].values()} - {dead}
    partial = [md for md in results[taken_uid].values() if md["service"]["owner"] == dead]
    assert all(md["error"] == f"taken over by {taker}" for md in partial), partial
    claims = queue.client.xrange(queue.claims)
    assert {"uid": taken_uid, "owner": taker, "how": "taken"}.items() <= next(
        fields for _, fields in claims if fields["uid"] == taken_uid and fields["how"] == "taken"
    ).items()
    for name, process in processes.items():
        if name != dead:
            code, _, err = process.stop()
            assert code == 0, err
    queue.close()


def _results(client, uid):
    """The ``bcdi_online`` metadata of every corrected run of raw run ``uid``, by uid."""
    found = client.search(Key("start.original_run_uid") == uid)
    return {key: corrected_metadata(run.metadata) for key, run in found.items()}


# -- one process: RunSharing fed by a RunEngine as the 0MQ dispatcher feeds it ----------------

BOUND = 1.0  # the takeover bound of these tests, seconds


class Gate:
    """A stand-in model that waits until :meth:`open` (a run stays in progress meanwhile)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, patches, masks):
        assert self.event.wait(60), "the gate was never opened"
        return mean_predictor(patches, masks)


class RecordingQueue(RunQueue):
    """The real queue; each acknowledgement also records the run's results at that time."""

    results = staticmethod(dict)  # what to record: set by the test
    at_ack: list[dict] = []

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.at_ack = []

    def ack(self, entry_id: str) -> bool:
        self.at_ack.append(self.results())
        return super().ack(entry_id)


@pytest.fixture
def sharing_parts(world, redis_url, queue_stream, tmp_path):
    """``make(name, **options) -> (RunSharing, LiveInpainting)`` on the world's Tiled; all
    closed afterwards."""
    _, client, _ = world
    made = []

    def make(name, queue_class=RunQueue, model=INPAINTER, **options):
        queue = queue_class.from_url(redis_url, queue_stream, consumer=name)
        live = make_live(client, tmp_path / name, model=model, owner=name)
        options.setdefault("takeover_after", BOUND)
        sharing = RunSharing(live, queue, poll=0.1, **options)
        made.append(sharing)
        return sharing, live

    yield make
    for sharing in made:
        sharing.close(timeout=5)
        sharing.queue.close()


def _announce_and_scan(run_engine, redis_url, queue_stream, *subscribers, seed=0):
    announcer = RunAnnouncer.from_url(redis_url, stream=queue_stream)
    det, eta = v1_detector(seed=seed)
    tokens = [run_engine.subscribe(cb) for cb in (announcer, *subscribers)]
    (uid,) = run_engine(scan([det], eta, *ETA, N_FRAMES)).run_start_uids
    for token in tokens:
        run_engine.unsubscribe(token)
    announcer.queue.close()
    return uid, np.stack(det.frames), det.source.mask


def _wait(condition, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_run_is_acknowledged_only_once_its_result_is_stored(
    world, run_engine, sharing_parts, redis_url, queue_stream
):
    _, client, _ = world
    gate, uid = Gate(), None
    sharing, live = sharing_parts("solo", queue_class=RecordingQueue, model=GapInpainter(gate))
    sharing.queue.results = lambda: _results(client, uid)
    sharing.start()
    uid, frames, mask = _announce_and_scan(run_engine, redis_url, queue_stream, sharing)
    _wait(lambda: uid in live.runs)
    time.sleep(4 * BOUND)  # heartbeats keep it, nobody acknowledges it while it runs
    assert [row["owner"] for row in sharing.queue.pending()] == ["solo"]
    assert sharing.queue.at_ack == []
    gate.event.set()
    _wait(lambda: sharing.queue.pending() == [])
    (stored,) = sharing.queue.at_ack
    assert [md["status"] for md in stored.values()] == ["complete"]  # before the ack
    np.testing.assert_allclose(
        read_corrected(client, uid)[0], expected_volume(frames, mask),
        rtol=1e-5, atol=1e-4,
    )  # fmt: skip


def test_each_processor_follows_only_the_runs_it_took(
    world, run_engine, sharing_parts, redis_url, queue_stream
):
    _, client, _ = world
    pairs = [sharing_parts(name) for name in ("a", "b")]
    for sharing, _ in pairs:
        sharing.start()
    runs = [
        _announce_and_scan(run_engine, redis_url, queue_stream, *(s for s, _ in pairs), seed=n)
        for n in range(4)
    ]
    _wait(lambda: pairs[0][0].queue.pending() == [] and all(_results(client, u) for u, *_ in runs))
    followed = [set(live.runs) for _, live in pairs]
    assert followed[0] | followed[1] == {uid for uid, *_ in runs}
    assert not followed[0] & followed[1] and all(followed)  # both took turns, none twice
    for uid, *_ in runs:
        (only,) = _results(client, uid).values()
        assert only["status"] == "complete"
    assert all(s.state()["buffered_runs"] == 0 for s, _ in pairs)


def test_a_processor_that_lost_its_run_stops_it_and_does_not_acknowledge_it(
    world, run_engine, sharing_parts, redis_url, queue_stream
):
    _, client, _ = world
    gate = Gate()
    sharing, live = sharing_parts("slow", model=GapInpainter(gate))
    sharing.start()
    uid, *_ = _announce_and_scan(run_engine, redis_url, queue_stream, sharing)
    _wait(lambda: uid in live.runs)
    thief = RunQueue.from_url(redis_url, queue_stream, consumer="thief")
    (taken,) = thief.take_stale(0.0, 1)  # as if "slow" had been silent past the bound
    _wait(lambda: sharing.state()["lost"] == 1, timeout=4 * BOUND)
    gate.event.set()
    assert live.runs[uid].wait(30)
    (result,) = _results(client, uid).values()
    assert result["status"] == "interrupted" and result["error"] == "taken over by thief"
    assert [row["owner"] for row in thief.pending()] == ["thief"]  # still the thief's
    assert thief.ack(taken.entry_id)
    thief.close()


def test_a_silent_owners_run_is_taken_over_after_the_bound_from_tiled(
    world, run_engine, sharing_parts, redis_url, queue_stream, tmp_path
):
    _, client, _ = world
    dead = RunQueue.from_url(redis_url, queue_stream, consumer="dead")
    run_engine.subscribe(TiledWriter(client, batch_size=1))
    uid, frames, mask = _announce_and_scan(run_engine, redis_url, queue_stream)
    (entry,) = dead.claim_new(block=1.0)  # then never a heartbeat
    claimed = time.time()
    partial = CorrectedRunWriter(
        client, uid, mask, metadata={"service": {"owner": "dead"}}, results_dir=tmp_path
    )  # the result it had begun
    partial.append(np.zeros((4, *mask.shape), np.float32))
    partial.commit(4)
    _wait(lambda: any(md["status"] == "running" for md in _results(client, uid).values()))
    taker, live = sharing_parts("taker")
    taker.start()
    _wait(lambda: dead.pending() == [])
    took = next(
        int(i.split("-")[0]) / 1e3 for i, f in dead.client.xrange(dead.claims) if f["uid"] == uid
    )
    assert took - claimed >= BOUND  # not before its owner was silent for the bound
    results = _results(client, uid)
    complete = [key for key, md in results.items() if md["status"] == "complete"]
    assert len(complete) == 1 and results[complete[0]]["service"]["owner"] == "taker"
    assert results[partial.result_uid]["status"] == "interrupted"
    assert results[partial.result_uid]["error"] == "taken over by taker"
    np.testing.assert_allclose(
        client[complete[0]]["primary"]["corrected"].read(), expected_volume(frames, mask),
        rtol=1e-5, atol=1e-4,
    )  # fmt: skip
    assert taker.state()["taken_over"] == 1 and entry.uid == uid
    dead.close()


def test_a_run_stored_before_its_owner_died_is_acknowledged_not_redone(
    world, run_engine, sharing_parts, redis_url, queue_stream, tmp_path
):
    _, client, _ = world
    dead = RunQueue.from_url(redis_url, queue_stream, consumer="dead")
    finished = make_live(client, tmp_path / "dead", owner="dead")
    uid, *_ = _announce_and_scan(run_engine, redis_url, queue_stream, finished)
    dead.claim_new(block=1.0)
    assert finished.wait(60) and finished.health()[uid]["status"] == "complete"
    # it stored the result, then died before acknowledging the run
    taker, live = sharing_parts("taker")
    taker.start()
    _wait(lambda: dead.pending() == [])
    assert [md["status"] for md in _results(client, uid).values()] == ["complete"]
    assert live.runs == {} and taker.state()["acknowledged"] == 1
    dead.close()


@pytest.mark.parametrize("how", ["queued-from-tiled", "announced-before-listening"])
def test_a_run_whose_documents_will_not_come_is_processed_from_tiled_at_once(
    how, world, run_engine, sharing_parts, redis_url, queue_stream
):
    _, client, _ = world
    run_engine.subscribe(TiledWriter(client, batch_size=1))
    det, eta = v1_detector(seed=5)
    (uid,) = run_engine(scan([det], eta, *ETA, N_FRAMES)).run_start_uids
    announcer = RunAnnouncer.from_url(redis_url, stream=queue_stream)
    sharing, live = sharing_parts("p", takeover_after=600.0)  # never waits for documents
    if how == "announced-before-listening":
        announcer.announce(uid)
        sharing.start()
    else:
        sharing.start()
        announcer.announce(uid, live=False)
    _wait(lambda: sharing.queue.pending() == [] and _results(client, uid), timeout=30)
    ((key, result),) = _results(client, uid).items()
    assert result["status"] == "complete" and sharing.state()["taken_new"] == 1
    np.testing.assert_allclose(
        client[key]["primary"]["corrected"].read(),
        expected_volume(np.stack(det.frames), det.source.mask), rtol=1e-5, atol=1e-4,
    )  # fmt: skip
    announcer.queue.close()


def test_a_stopping_processor_hands_its_unfinished_run_to_another_at_once(
    world, run_engine, sharing_parts, redis_url, queue_stream
):
    gate = Gate()
    sharing, live = sharing_parts("leaving", model=GapInpainter(gate), takeover_after=600.0)
    sharing.start()
    uid, *_ = _announce_and_scan(run_engine, redis_url, queue_stream, sharing)
    _wait(lambda: uid in live.runs)
    sharing.stop_claiming()  # what LiveService.stop does: stop taking runs, then the grace,
    live.interrupt("the service stopped")  # then end the runs still in progress
    gate.event.set()
    assert sharing.close(timeout=30) == []  # the run's own job handed it back
    successor = RunQueue.from_url(redis_url, queue_stream, consumer="successor")
    (entry,) = successor.take_stale(600.0, 1)  # at once, not 600 s later
    assert (entry.uid, entry.deliveries) == (uid, 2) and sharing.state()["handed_back"] == 1
    assert successor.ack(entry.entry_id)
    successor.close()
