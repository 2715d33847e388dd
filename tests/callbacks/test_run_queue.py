"""The run queue's semantics on a real Redis server: one owner per run, heartbeats keep it,
silence loses it after the bound, only the owner acknowledges or hands it back."""

from __future__ import annotations

import time

import pytest

from bcdi_online import ServiceError
from bcdi_online.callbacks import RunAnnouncer, RunQueue
from bcdi_online.callbacks._queue import connect_redis


@pytest.fixture
def queues(redis_url, queue_stream):
    """``make(consumer) -> RunQueue`` on this test's stream (one connection)."""
    client, made = connect_redis(redis_url), []

    def make(consumer: str = "") -> RunQueue:
        made.append(RunQueue(client, queue_stream, consumer))
        return made[-1]

    yield make
    for queue in made:
        queue.close()


def test_each_run_is_delivered_to_exactly_one_processor(queues):
    announcer = RunAnnouncer(queues())
    processors = [queues(name) for name in ("a", "b", "c")]
    for n in range(12):
        announcer("descriptor", {"uid": f"d-{n}", "run_start": f"run-{n}"})  # not a start
        announcer("start", {"uid": f"run-{n}", "scan_id": n, "plan_name": "scan"})
    taken: dict[str, str] = {}
    while len(taken) < 12:
        for processor in processors:
            for entry in processor.claim_new(block=0.01):
                assert entry.uid not in taken, entry
                assert entry.fields["scan_id"] == str(entry.uid.split("-")[1])
                taken[entry.uid] = processor.consumer
    assert all(p.claim_new(block=0.01) == [] for p in processors)
    assert sorted(taken) == sorted(announcer.announced)
    owners = {row["entry_id"]: row["owner"] for row in processors[0].pending()}
    assert {owners[announcer.announced[uid]] for uid in taken} == {"a", "b", "c"}
    assert all(owners[announcer.announced[uid]] == who for uid, who in taken.items())


def test_heartbeats_keep_a_run_silence_loses_it_after_the_bound(queues):
    owner, other = queues("owner"), queues("other")
    entry_id = RunAnnouncer(queues()).announce("run")
    (entry,) = owner.claim_new(block=0.1)
    bound = 0.6
    for _ in range(6):  # 0.9 s in all, beating every 0.15 s
        time.sleep(bound / 4)
        assert owner.heartbeat([entry_id]) == {}
        assert other.take_stale(bound, 10) == []
    time.sleep(bound / 2)
    assert other.take_stale(bound, 10) == []  # silent for less than the bound
    time.sleep(bound / 2 + 0.05)
    (taken,) = other.take_stale(bound, 10)
    assert (taken.entry_id, taken.uid, taken.deliveries) == (entry_id, "run", 2)
    # the silent owner comes back: it learns who has the run, cannot take it back
    assert owner.heartbeat([entry_id]) == {entry_id: "other"}
    assert [row["owner"] for row in owner.pending()] == ["other"]
    assert not owner.ack(entry_id) and not owner.hand_back(entry_id, bound)
    assert [row["owner"] for row in owner.pending()] == ["other"]
    assert other.ack(entry_id)
    assert owner.pending() == [] and other.heartbeat([entry_id]) == {entry_id: ""}


def test_a_run_handed_back_is_taken_at_once_and_counts_its_owners(queues):
    first, second = queues("first"), queues("second")
    entry_id = RunAnnouncer(queues()).announce("run")
    first.claim_new(block=0.1)
    assert second.take_stale(30.0, 10) == []
    assert first.hand_back(entry_id, 30.0)
    (entry,) = second.take_stale(30.0, 10)
    assert entry.deliveries == 2 and entry.announced == pytest.approx(time.time(), abs=5)


def test_a_restarted_processor_gets_its_own_runs_back(queues):
    before = queues("serve-1")
    ids = [RunAnnouncer(queues()).announce(f"run-{n}") for n in range(3)]
    assert len(before.claim_new(block=0.1, count=2)) == 2
    after = queues("serve-1")  # the same name, a new process
    assert [e.entry_id for e in after.claim_mine()] == ids[:2]
    assert queues("serve-2").claim_mine() == []


def test_the_announcer_never_raises_into_the_run_engine_nor_holds_it(redis_url, caplog):
    announcer = RunAnnouncer.from_url(redis_url, stream="bcdi_online_test:nowhere")
    pool = announcer.queue.client.connection_pool
    pool.disconnect()
    pool.reset()
    pool.connection_kwargs["port"] = 1  # Redis gone: new connections go nowhere
    started = time.monotonic()
    announcer("start", {"uid": "lost"})
    assert time.monotonic() - started < 1.0  # one attempt, no retries
    announcer.queue.close()
    assert "lost" in announcer.failed and announcer.announced == {}
    assert "run lost not announced" in caplog.text


def test_an_unreachable_queue_is_a_service_error_without_the_password():
    with pytest.raises(ServiceError, match="cannot reach the run queue") as info:
        connect_redis("redis://:s3cret-pw@127.0.0.1:1/0", timeout=0.2)
    assert "s3cret-pw" not in str(info.value)
