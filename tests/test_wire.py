"""The wire between the harness and a gate's process: values cross intact (layouts included),
arenas grow, and a hostile peer's messages are refused as data, never executed."""

from __future__ import annotations

import json
import os
import socket
import struct

import pytest
import torch

from suite.contract import Feedback, GateOutput, Side
from suite.gates.wire import Channel, PeerGone, WireError, decode, encode


def _pair() -> tuple[Channel, Channel]:
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    return Channel(a), Channel(b)


def _raw(sock: socket.socket, header: dict, fds: list[int] = ()) -> None:
    data = json.dumps(header).encode()
    payload = struct.pack("<I", len(data)) + data
    if fds:
        socket.send_fds(sock, [payload], list(fds))
    else:
        sock.sendall(payload)


def test_values_cross_intact_with_their_layout():
    sender, receiver = _pair()
    transposed = torch.randn(5, 7).T  # a reduction over it adds in another order than contiguous
    value = {
        "out": GateOutput(torch.randn(2, 3, 4), (torch.ones(2, 4), 3), torch.tensor(0.5)),
        "side": Side(token_ids=torch.arange(6).view(2, 3)),
        "feedback": Feedback(expert_error=transposed, step=4),
        "flags": [True, None, "x", 1.5],
    }
    tensors: list[torch.Tensor] = []
    sender.send({"args": encode(value, tensors)}, tensors)
    header, got = receiver.recv()
    back = decode(header["args"], got)
    assert isinstance(back["out"], GateOutput) and isinstance(back["feedback"], Feedback)
    assert torch.equal(back["out"].logits, value["out"].logits) and back["out"].state[1] == 3
    assert torch.equal(back["side"].token_ids, value["side"].token_ids)
    assert back["feedback"].expert_error.stride() == transposed.stride()
    assert torch.equal(back["feedback"].expert_error, transposed)
    assert back["flags"] == [True, None, "x", 1.5]


def test_the_arena_grows_and_messages_queue_in_order():
    sender, receiver = _pair()
    big = torch.randn(600, 1000)  # 2.4 MB: more than the first arena
    for t in (torch.ones(3), big, torch.zeros(2)):
        sender.send({"n": t.numel()}, [t])
    sizes = [receiver.recv()[1][0] for _ in range(3)]
    assert torch.equal(sizes[1], big) and sizes[0].sum() == 3 and sizes[2].sum() == 0


def test_objects_that_are_not_data_do_not_cross():
    with pytest.raises(WireError, match="cannot cross"):
        encode(object(), [])
    with pytest.raises(WireError, match="unknown form"):
        decode({"N": "os.system", "f": ["echo"]}, [])
    with pytest.raises(WireError, match="unknown form"):
        decode({"T": 3}, [torch.ones(1)])


@pytest.mark.parametrize(
    "header, match",
    [
        ({"tensors": [[0, "float32", [4], None]]}, "outside the shared arena"),
        ({"tensors": [[0, "complex64", [4], None]]}, "unknown dtype"),
        ({"tensors": [[0, "float32", [2, 2], [0, 0]]]}, "not a permutation"),
        ({"tensors": [[0, "float32", [-1], None]]}, "negative"),
        ({"tensors": "all of them"}, "malformed"),
    ],
)
def test_a_hostile_tensor_table_is_refused(header, match):
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    _raw(a, header)
    with pytest.raises(WireError, match=match):
        Channel(b).recv()


def test_a_header_that_is_not_json_or_an_arena_that_can_shrink_is_refused():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    a.sendall(struct.pack("<I", 5) + b"\x80abcd")
    with pytest.raises(WireError, match="not JSON"):
        Channel(b).recv()
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    fd = os.memfd_create("unsealed")  # could be truncated under the reader: refused
    os.ftruncate(fd, 1 << 20)
    _raw(a, {"arena": 1 << 20, "tensors": []}, [fd])
    with pytest.raises(WireError, match="may shrink"):
        Channel(b).recv()
    a.close()
    with pytest.raises(PeerGone):
        Channel(b).recv()
