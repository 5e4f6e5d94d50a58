"""The frames a worker and its supervisor exchange over the socket pair made for that worker.

A frame is one byte of kind, four of length (big-endian) and the payload. The pair is private to
the two processes (made before the worker starts, inherited as a descriptor), so nothing else can
speak on it, and when either side dies the other reads end-of-file at once.

worker -> supervisor
  RELOAD   seq: reload the packs now (POST /v1/packs/reload); answered by RELOADED
  LOADED   JSON {"revision"} or {"error"}: the revision sent last is served now (or could not be)
supervisor -> worker
  START    JSON: the options (sent first; tokens travel here, not in the environment)
  PACKS    JSON {"revision", "loaded_at", "reload"} + "\\n" + Engine.to_bytes(): serve these packs
  REFUSED  JSON {"error", "at"}: a reload was refused, the packs served stay as they are
  RELOADED seq + JSON {"revision"} or {"error"}: the outcome of a worker's RELOAD

With a decision log, a worker has a second pair of its own for its records, served by the
supervisor's log thread (decisions.GroupCommit) rather than its event loop:

worker -> supervisor
  RECORD   seq (8 bytes) + decision id (ASCII) + "\\n" + the record's line: log it, then ACK
supervisor -> worker
  ACK      JSON {} when the records are on disk, {"error": ...} when they could not be written, + "\\n"
           + their seqs (8 bytes each): one frame per worker per group commit
"""
from __future__ import annotations

import asyncio
import struct

RECORD, RELOAD, LOADED = b"R", b"H", b"L"
START, ACK, PACKS, REFUSED, RELOADED = b"S", b"A", b"P", b"E", b"D"
KINDS = frozenset((RELOAD, LOADED, START, PACKS, REFUSED, RELOADED))      # on the channel
RECORDS, ACKS = frozenset((RECORD,)), frozenset((ACK,))                      # on a worker's record pair

HEADER = struct.Struct(">cI")
_SEQ = struct.Struct(">Q")
MAX_FRAME = 64 << 20            # compiled packs are ~100 KB; a record at most a case (case_bytes) and a verdict


class ChannelError(Exception):
    """The other side sent something that is not a frame: a bug, never input from a client."""


def frame(kind: bytes, payload: bytes) -> bytes:
    return HEADER.pack(kind, len(payload)) + payload


def with_seq(seq: int, rest: bytes) -> bytes:
    return _SEQ.pack(seq) + rest


def split_seq(payload: bytes) -> tuple[int, bytes]:
    return _SEQ.unpack_from(payload)[0], payload[_SEQ.size:]


def acks(outcome: bytes, seqs: list[int]) -> bytes:
    return outcome + b"\n" + struct.pack(f">{len(seqs)}Q", *seqs)


def split_acks(payload: bytes) -> tuple[bytes, tuple[int, ...]]:
    outcome, _, packed = payload.partition(b"\n")
    return outcome, struct.unpack(f">{len(packed) // _SEQ.size}Q", packed)


def frames(buf: bytearray, kinds: frozenset[bytes]) -> list[tuple[bytes, bytes]]:
    """The whole frames at the start of `buf` (received so far), taken out of it; a frame not yet
    whole stays for the rest of its bytes. A kind not in `kinds` is a ChannelError."""
    out, at, head = [], 0, HEADER.size
    while len(buf) - at >= head:
        kind, size = HEADER.unpack_from(buf, at)
        if kind not in kinds or size > MAX_FRAME:
            raise ChannelError(f"not a frame expected here: kind {kind!r}, {size:,} bytes")
        if len(buf) - at - head < size:
            break
        out.append((kind, bytes(buf[at + head:at + head + size])))
        at += head + size
    del buf[:at]
    return out


async def read_frame(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """The next (kind, payload), or None at end of file (the other side has gone)."""
    try:
        header = await reader.readexactly(HEADER.size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    kind, size = HEADER.unpack(header)
    if kind not in KINDS or size > MAX_FRAME:
        raise ChannelError(f"not a frame: kind {kind!r}, {size:,} bytes")
    try:
        return kind, await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
