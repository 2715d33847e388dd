"""The msgpack codec of 0MQ documents, and frames assembled by position."""

from __future__ import annotations

import os
import pickle

import msgpack
import msgpack_numpy
import numpy as np
import pytest

from bcdi_online.callbacks import is_loopback, msgpack_deserializer, msgpack_serializer
from bcdi_online.callbacks._assembly import FrameAssembly


def test_documents_round_trip_with_numpy_values():
    frame = np.arange(12, dtype=np.uint32).reshape(3, 4)
    doc = {"seq_num": [np.int64(3)], "data": {"img": [frame]}, "time": [1.5], "ok": np.bool_(1)}
    back = msgpack_deserializer(msgpack_serializer(doc))
    np.testing.assert_array_equal(back["data"]["img"][0], frame)
    assert back["data"]["img"][0].dtype == np.uint32 and back["seq_num"] == [3]
    assert back["ok"] is True and not back["data"]["img"][0].flags.writeable
    # what a RunEngine side without bcdi-online sends (msgpack_numpy) decodes the same
    other = msgpack.packb({"img": frame}, default=msgpack_numpy.encode)
    np.testing.assert_array_equal(msgpack_deserializer(other)["img"], frame)


def test_the_serializer_never_raises_into_the_run_engine():
    doc = {"big": 2**80, "set": {2, 1}, "obj": object(), "arr": np.array([1, "a"], object)}
    back = msgpack_deserializer(msgpack_serializer(doc))
    assert back["big"] == str(2**80) and back["set"] == [1, 2] and back["arr"] == [1, "a"]


class Touch:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_pickle_and_object_arrays_are_refused_unread(tmp_path):
    marker = tmp_path / "ran"
    evil = pickle.dumps(Touch(marker))
    objects = {b"nd": True, b"type": "|O", b"kind": b"O", b"shape": [1], b"data": evil}
    for payload in (evil, msgpack.packb({"a": objects}), msgpack.packb([1, 2])):
        with pytest.raises(ValueError, match="refused|not a msgpack|must be a mapping"):
            msgpack_deserializer(payload)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("address", "loopback"),
    [("localhost:5578", True), ("127.0.0.1:1", True), ("tcp://[::1]:5", True),
     ("10.0.0.1:5578", False), ("0.0.0.0:5578", False), ("tiled:5578", False)],
)  # fmt: skip
def test_loopback_addresses(address, loopback):
    assert is_loopback(address) is loopback


def frames(*values):
    return np.stack([np.full((2, 2), v, np.uint32) for v in values])


def test_frames_come_out_in_position_order_and_holes_are_named():
    assembly = FrameAssembly()
    assert assembly.add(2, frames(2, 3)) == [] and assembly.pop_ready() is None
    assert assembly.add(0, frames(0)) == []
    np.testing.assert_array_equal(assembly.pop_ready()[:, 0, 0], [0])  # 1 is missing
    assert assembly.add(0, frames(0)) == [] and assembly.duplicates == 1  # same values
    assert assembly.add(3, frames(9)) == [3]  # other values: a conflict
    assembly.unreadable(range(5, 6), "truncated")
    assert assembly.missing(7) == [1, 4, 5, 6] and assembly.end == 6
    (first, held), = assembly.segments()  # fmt: skip
    assert first == 2 and held[:, 0, 0].tolist() == [2, 3]
    assert assembly.unreadable_reasons() == {"truncated": [5]}
