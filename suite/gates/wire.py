"""The wire between the harness and a gate's own process: messages over a Unix socket, tensors in
shared memory.

A message is a JSON header (the command and a tree of plain values) plus the tensors the tree
refers to. Tensors are copied into the sender's *arena*, an anonymous shared-memory file
(``memfd``) that both processes map; the header says where each one lies. Nothing that crosses is
ever unpickled: the gate's process is untrusted, so the harness decodes only JSON, a closed set of
named types and bounds-checked tensor slices. An arena grows by sending the peer a new sealed
memfd (it cannot be shrunk under the reader, so a hostile peer cannot make the harness fault).

Each sender writes its messages one after another into its arena and starts again from the start
once it receives a message: by then the peer has read everything sent before (the protocol is
request, then reply; one-way notices are read in order before the next reply).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import mmap
import os
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from suite.contract import Feedback, GateOutput, Probes, Samples, Side

MAX_HEADER = 16 * 1024 * 1024  # bytes of JSON per message
MAX_ARENA = 4 * 1024 * 1024 * 1024  # the largest arena a peer may hand over
FIRST_ARENA = 1 << 20
ALIGN = 64
_LENGTH = struct.Struct("<I")

DTYPES: dict[str, torch.dtype] = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
        torch.int16, torch.int8, torch.uint8, torch.bool,
    )
}  # fmt: skip

WIRE_TYPES: dict[str, type] = {}
"""The named tuples and dataclasses that may cross: the contract's, and (``named_type``) each
registered gate kind's output type."""


def register_wire_type(cls: type) -> type:
    WIRE_TYPES.setdefault(cls.__name__, cls)
    return cls


for _cls in (GateOutput, Side, Feedback, Samples, Probes):
    register_wire_type(_cls)


def named_type(name: str) -> type | None:
    """The contract's type of that name, or the output type of a registered gate kind."""
    from suite.gates.kinds import kinds

    found = WIRE_TYPES.get(name)
    if found is None:
        found = next(
            (k.output_type for k in kinds.values() if k.output_type.__name__ == name), None
        )
    return found


class WireError(RuntimeError):
    """A message broke the wire's rules (from a hostile or broken peer)."""


class PeerGone(WireError):
    """The other process closed the connection or died."""


class PeerTimeout(WireError):
    """The other process did not answer in time."""


# -- trees of plain values --------------------------------------------------------------------


def encode(obj: Any, tensors: list[Tensor]) -> Any:
    """A JSON-able tree for ``obj``; its tensors are appended to ``tensors``."""
    if isinstance(obj, Tensor):
        tensors.append(obj)
        return {"T": len(tensors) - 1}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    kind = type(obj)
    if kind is list:
        return {"L": [encode(v, tensors) for v in obj]}
    if kind is tuple:
        return {"U": [encode(v, tensors) for v in obj]}
    name = kind.__name__
    if named_type(name) is kind:
        if dataclasses.is_dataclass(obj):
            values = [getattr(obj, f.name) for f in dataclasses.fields(obj)]
        else:
            values = list(obj)
        return {"N": name, "f": [encode(v, tensors) for v in values]}
    if isinstance(obj, tuple):
        return {"U": [encode(v, tensors) for v in obj]}
    if isinstance(obj, list):
        return {"L": [encode(v, tensors) for v in obj]}
    if isinstance(obj, dict):
        if not all(isinstance(k, str | int) for k in obj):
            raise WireError("only dicts with str or int keys can cross to or from a gate")
        return {"D": [[k, encode(v, tensors)] for k, v in obj.items()]}
    raise WireError(
        f"a {name} cannot cross between the harness and a gate: use tensors, numbers, strings, "
        "None and tuples, lists or dicts of them"
    )


def decode(node: Any, tensors: list[Tensor], depth: int = 0) -> Any:
    """The value of a tree from ``encode``, checked: unknown shapes of data are errors."""
    if depth > 64:
        raise WireError("a message nests deeper than 64 levels")
    if node is None or isinstance(node, bool | int | float | str):
        return node
    if isinstance(node, dict) and len(node) <= 2:
        if "T" in node and isinstance(node["T"], int) and 0 <= node["T"] < len(tensors):
            return tensors[node["T"]]
        if isinstance(node.get("U"), list):
            return tuple(decode(v, tensors, depth + 1) for v in node["U"])
        if isinstance(node.get("L"), list):
            return [decode(v, tensors, depth + 1) for v in node["L"]]
        if isinstance(node.get("D"), list):
            items = node["D"]
            if all(
                isinstance(i, list) and len(i) == 2 and isinstance(i[0], str | int) for i in items
            ):
                return {k: decode(v, tensors, depth + 1) for k, v in items}
        cls = named_type(str(node.get("N", "")))
        if cls is not None and isinstance(node.get("f"), list):
            values = [decode(v, tensors, depth + 1) for v in node["f"]]
            try:
                return cls(*values)
            except TypeError as exc:
                raise WireError(f"a {cls.__name__} with the wrong fields: {exc}") from None
    raise WireError(f"a message holds a value of unknown form: {str(node)[:80]}")


def flatten(tree: Any) -> tuple[Any, list[Tensor]]:
    """The tree's form and its tensors, in order."""
    tensors: list[Tensor] = []
    return encode(tree, tensors), tensors


def map_tensors(tree: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """The same tree with ``fn`` applied to each of its tensors (detach, move to a device)."""
    node, tensors = flatten(tree)
    return decode(node, [fn(t) for t in tensors])


# -- shared memory ------------------------------------------------------------------------------


class Arena:
    """One shared-memory file mapped into this process."""

    def __init__(self, fd: int, size: int) -> None:
        self.fd, self.size = fd, size
        self.map = mmap.mmap(fd, size) if size else None
        self.bytes = torch.frombuffer(self.map, dtype=torch.uint8) if size else torch.empty(0)

    @classmethod
    def create(cls, size: int) -> Arena:
        fd = os.memfd_create("gatebench-arena", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
        os.ftruncate(fd, size)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
        return cls(fd, size)

    @classmethod
    def adopt(cls, fd: int, size: int) -> Arena:
        """Map a peer's arena after checking it cannot shrink under us (which would fault)."""
        try:
            seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
            actual = os.fstat(fd).st_size
        except OSError as exc:
            os.close(fd)
            raise WireError(f"the peer's arena is not a sealed shared-memory file: {exc}") from None
        if not seals & fcntl.F_SEAL_SHRINK or actual < size or not 0 < size <= MAX_ARENA:
            os.close(fd)
            raise WireError("the peer's arena may shrink or is smaller than announced")
        return cls(fd, size)

    def close(self) -> None:
        self.bytes = torch.empty(0)
        if self.map is not None:
            # a view still alive somewhere keeps the map; the kernel unmaps it at exit
            with contextlib.suppress(BufferError):
                self.map.close()
        os.close(self.fd)


def _nbytes(dtype: torch.dtype, shape: list[int]) -> int:
    n = 1
    for s in shape:
        n *= s
    return n * torch.empty((), dtype=dtype).element_size()


def _memory_order(t: Tensor) -> tuple[Tensor, list[int] | None]:
    """A dense tensor in its memory order (contiguous) and the permutation that restores its
    layout, so that the receiver computes on the same strides as the sender (reductions over
    a transposed tensor add in another order than over a contiguous one)."""
    if t.is_contiguous():
        return t, None
    order = sorted(range(t.dim()), key=lambda d: -t.stride(d))
    dense = t.permute(order)
    if dense.is_contiguous():
        return dense, order
    return t.contiguous(), None


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


class Channel:
    """Messages to and from one peer over a connected Unix stream socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.sock.setblocking(True)
        self.out: Arena | None = None
        self.offset = 0
        self.incoming: Arena | None = None

    # -- sending --------------------------------------------------------------------------------

    def send(self, header: dict[str, Any], tensors: list[Tensor] = ()) -> None:
        laid = [_memory_order(t.detach().to("cpu")) for t in tensors]
        cpu = [t for t, _ in laid]
        sizes = [t.numel() * t.element_size() for t in cpu]
        needed = sum(_aligned(s) for s in sizes)
        fds: list[int] = []
        if needed and (self.out is None or self.offset + needed > self.out.size):
            if self.out is None or needed > self.out.size:
                old = self.out
                self.out = Arena.create(max(FIRST_ARENA, 2 * needed))
                if old is not None:
                    old.close()
                header["arena"] = self.out.size
                fds = [self.out.fd]
            self.offset = 0  # the peer has read everything before (see the module docstring)
        where = []
        for t, size, (_, order) in zip(cpu, sizes, laid, strict=True):
            if str(t.dtype).removeprefix("torch.") not in DTYPES:
                raise WireError(f"tensors of dtype {t.dtype} cannot cross to or from a gate")
            if size:
                region = self.out.bytes[self.offset : self.offset + size]
                region.view(t.dtype).view(t.shape).copy_(t)
            dtype = str(t.dtype).removeprefix("torch.")
            where.append([self.offset, dtype, list(t.shape), order])
            self.offset += _aligned(size)
        header["tensors"] = where
        data = json.dumps(header, separators=(",", ":")).encode()
        if len(data) > MAX_HEADER:
            raise WireError(f"a message header of {len(data)} bytes is over the limit")
        payload = _LENGTH.pack(len(data)) + data
        try:
            if fds:
                sent = socket.send_fds(self.sock, [payload[:1]], fds)
                self.sock.sendall(payload[sent:])
            else:
                self.sock.sendall(payload)
        except (BrokenPipeError, ConnectionResetError) as exc:
            raise PeerGone("the gate's process is gone") from exc

    # -- receiving ------------------------------------------------------------------------------

    def recv(self, deadline: float | None = None) -> tuple[dict[str, Any], list[Tensor]]:
        self._timeout(deadline)
        first, fds, _, _ = self._recv_fds(1)
        head = first + self._read(_LENGTH.size - 1, deadline)
        (length,) = _LENGTH.unpack(head)
        if length > MAX_HEADER:
            raise WireError(f"a message header of {length} bytes is over the limit")
        try:
            header = json.loads(self._read(length, deadline))
        except (ValueError, RecursionError):
            raise WireError("a message header is not JSON (or nests too deep)") from None
        if not isinstance(header, dict):
            raise WireError("a message header is not a JSON object")
        if "arena" in header:
            if len(fds) != 1 or not isinstance(header["arena"], int):
                for fd in fds:
                    os.close(fd)
                raise WireError("a new arena was announced without its file")
            if self.incoming is not None:
                self.incoming.close()
            self.incoming = Arena.adopt(fds[0], header["arena"])
        else:
            for fd in fds:
                os.close(fd)
        self.offset = 0
        return header, self._tensors(header.get("tensors", []))

    def _tensors(self, where: Any) -> list[Tensor]:
        if not isinstance(where, list):
            raise WireError("a message's tensor table is malformed")
        out = []
        for item in where:
            if not (isinstance(item, list) and len(item) == 4):
                raise WireError("a message's tensor table is malformed")
            offset, name, shape, order = item
            if order is not None and sorted(order) != list(range(len(shape))):
                raise WireError("a tensor's memory order is not a permutation of its dimensions")
            dtype = DTYPES.get(name) if isinstance(name, str) else None
            valid_shape = isinstance(shape, list) and len(shape) <= 8
            if dtype is None or not valid_shape or not all(isinstance(s, int) for s in shape):
                raise WireError(f"a tensor of unknown dtype or shape: {str(item)[:80]}")
            if not isinstance(offset, int) or offset < 0 or min(shape, default=0) < 0:
                raise WireError("a tensor with a negative offset or size")
            if max(shape, default=0) > MAX_ARENA:
                raise WireError("a tensor with an impossible size")
            size = _nbytes(dtype, shape)
            if size == 0:
                out.append(torch.empty(shape, dtype=dtype))
                continue
            arena = self.incoming
            if arena is None or offset % ALIGN or offset + size > arena.size:
                raise WireError("a tensor lies outside the shared arena")
            t = arena.bytes[offset : offset + size].view(dtype).view(shape).clone()
            if order is not None:  # back to the sender's layout (e.g. a transposed result)
                t = t.permute([order.index(d) for d in range(len(order))])
            out.append(t)
        return out

    def _timeout(self, deadline: float | None) -> None:
        if deadline is None:
            self.sock.settimeout(None)
        else:
            self.sock.settimeout(max(0.001, deadline - time.monotonic()))

    def _recv_fds(self, n: int) -> tuple[bytes, list[int], int, Any]:
        try:
            data, fds, flags, addr = socket.recv_fds(self.sock, n, 4)
        except TimeoutError:
            raise PeerTimeout("the gate's process did not answer within the time limit") from None
        except (ConnectionResetError, OSError) as exc:
            raise PeerGone(f"the connection to the gate's process failed: {exc}") from None
        if not data:
            for fd in fds:
                os.close(fd)
            raise PeerGone("the gate's process closed the connection (it ended or crashed)")
        return data, fds, flags, addr

    def _read(self, n: int, deadline: float | None) -> bytes:
        chunks, left = [], n
        while left:
            self._timeout(deadline)
            try:
                chunk = self.sock.recv(min(left, 1 << 20))
            except TimeoutError:
                raise PeerTimeout(
                    "the gate's process did not answer within the time limit"
                ) from None
            except OSError as exc:
                raise PeerGone(f"the connection to the gate's process failed: {exc}") from None
            if not chunk:
                raise PeerGone("the gate's process closed the connection (it ended or crashed)")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def close(self) -> None:
        for arena in (self.out, self.incoming):
            if arena is not None:
                arena.close()
        self.out = self.incoming = None
        self.sock.close()
