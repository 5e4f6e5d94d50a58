"""A worker's decision records go to the log in groups: when a group waits, and that it always goes.

The LogClient runs here against a recording transport on a real event loop; the server around it is
tests/test_serve.py's (a 200 only with its record, kill -9, a full disk).
"""
from __future__ import annotations

import asyncio

import pytest

from slarules.serve import channel as ch
from slarules.errors import OutputError
from slarules.serve import decisions
from slarules.serve.decisions import HOLD, LogClient


class Transport:
    """What the worker writes to its record pair: one entry per write (one write is one group)."""

    def __init__(self) -> None:
        self.writes: list[list[int]] = []

    def write(self, data: bytes) -> None:
        self.writes.append([ch.split_seq(payload)[0] for _, payload in ch.frames(bytearray(data), ch.RECORDS)])


def client(in_flight: int = 0) -> tuple[LogClient, Transport]:
    log, transport = LogClient(), Transport()
    log.connected(transport)  # type: ignore[arg-type]
    log.requests = lambda: in_flight
    return log, transport


def acknowledge(log: LogClient, seqs: list[int]) -> None:
    log.acknowledged(ch.acks(b"{}", seqs))


async def goes_at_once(log: LogClient, transport: Transport) -> None:
    """A record that is not held: written at the end of the loop's iteration, returned once acknowledged."""
    waiting = asyncio.ensure_future(log.record("id-1", b"{}"))
    await turns()
    assert transport.writes == [[1]]
    assert not waiting.done()
    acknowledge(log, [1])
    await waiting


async def turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def test_a_lone_record_goes_at_once_and_returns_once_acknowledged():
    async def main():
        await goes_at_once(*client(in_flight=1))
    asyncio.run(main())


def test_a_client_answered_since_the_group_began_is_waited_for_and_joins_its_group(monkeypatch):
    """The group that gathers during an fsync waits for the clients that fsync's answers set free."""
    monkeypatch.setattr(decisions, "HOLD", 60.0)       # however slow the machine: the client decides it
    async def main():
        log, transport = client()
        first = asyncio.ensure_future(log.record("id-1", b"{}"))
        await turns()
        assert transport.writes == [[1]]                   # in flight: the next records gather
        second = asyncio.ensure_future(log.record("id-2", b"{}"))
        await turns()
        connection = object()
        acknowledge(log, [1])
        log.returning.answered(connection, asyncio.get_running_loop().time())   # the first one's answer
        await first
        await turns()
        assert transport.writes == [[1]]                   # held: that client is coming back
        log.returning.back(connection)                      # its next request begins...
        third = asyncio.ensure_future(log.record("id-3", b"{}"))    # ...and is decided
        await turns()
        assert transport.writes == [[1], [2, 3]]            # one group, one write
        acknowledge(log, [2, 3])
        await asyncio.gather(second, third)
    asyncio.run(main())


def test_a_group_held_for_a_client_that_does_not_come_back_goes_after_hold(monkeypatch):
    monkeypatch.setattr(decisions, "HOLD", 0.05)
    async def main():
        loop = asyncio.get_running_loop()
        log, transport = client()
        started = loop.time()
        waiting = asyncio.ensure_future(log.record("id-1", b"{}"))
        await asyncio.sleep(0)                              # its record gathers; its send is next
        log.returning.answered(object(), loop.time())       # another client answered, and then silent
        await asyncio.sleep(0.01)
        assert transport.writes == []
        while not transport.writes and loop.time() < started + 5:
            await asyncio.sleep(0.005)
        assert transport.writes == [[1]] and loop.time() - started >= 0.04
        acknowledge(log, [1])
        await waiting
    asyncio.run(main())


def test_a_lone_client_beside_a_slow_upload_is_not_held():
    """A request in flight that is not being decided (a slow upload, a /v1/batch stream between its
    chunks) does not hold the record of a client deciding one case at a time."""
    async def main():
        await goes_at_once(*client(in_flight=2))   # this request, and one still sending its body
    asyncio.run(main())


def test_a_supervisor_gone_while_a_group_is_held_refuses_its_records_and_sends_nothing(monkeypatch):
    monkeypatch.setattr(decisions, "HOLD", 0.02)
    async def main():
        log, transport = client()
        waiting = asyncio.ensure_future(log.record("id-1", b"{}"))
        await asyncio.sleep(0)
        log.returning.answered(object(), asyncio.get_running_loop().time())
        await turns()
        assert transport.writes == []                       # held
        log.lost("the server's supervisor has stopped")
        with pytest.raises(OutputError):
            await waiting
        await asyncio.sleep(0.05)                   # past HOLD: the cancelled timer sends nothing
        assert transport.writes == []
    asyncio.run(main())


def test_an_idle_connection_answered_before_the_group_began_is_not_waited_for():
    async def main():
        log, transport = client(in_flight=1)
        log.returning.answered(object(), asyncio.get_running_loop().time())
        await asyncio.sleep(0.001)
        await goes_at_once(log, transport)
    asyncio.run(main())


def _loops():
    yield pytest.param(asyncio.new_event_loop, 0.0, id="asyncio")
    yield pytest.param(asyncio.new_event_loop, 0.001, id="asyncio-timers-1ms-early")
    try:
        import uvloop
    except ImportError:
        return
    yield pytest.param(uvloop.new_event_loop, None, id="uvloop")        # libuv's timers: milliseconds


@pytest.mark.parametrize(("new_loop", "resolution"), list(_loops()))
def test_a_held_group_goes_when_its_time_is_up_whatever_the_clock_s_resolution(new_loop, resolution):
    """A request still being decided (or a client that never comes back) holds a group HOLD at most.
    A timer may run a little early (asyncio: up to its clock's resolution; uvloop: libuv's whole
    milliseconds): the group must go then all the same. It once waited for the next request
    instead, for ever if none came (a p99 of 52 ms at 4 connections under uvloop)."""
    async def main():
        loop = asyncio.get_running_loop()
        if resolution is not None:
            loop._clock_resolution = resolution        # type: ignore[attr-defined]
        log, transport = client(in_flight=3)       # two more requests of this worker, still being decided
        log.returning.answered(object(), loop.time())
        for _ in range(20):                         # a group held each time, at any phase of the clock
            started = loop.time()
            waiting = asyncio.ensure_future(log.record(f"id-{started}", b"{}"))
            await turns()
            assert not transport.writes
            while not transport.writes and loop.time() < started + 1:
                await asyncio.sleep(HOLD / 4)
            assert len(transport.writes) == 1
            assert loop.time() - started < HOLD + 0.5
            acknowledge(log, transport.writes.pop())
            await waiting
            log.returning.answered(object(), loop.time())
            await asyncio.sleep(0.0003)
    loop = new_loop()
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
