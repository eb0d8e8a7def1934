"""The ports tests hand to services: free, never handed out twice, one slice per xdist worker."""

from __future__ import annotations

import socket

import pytest

from tests.support import environment
from tests.support.environment import free_port


@pytest.fixture
def fresh_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    """An allocator with nothing handed out yet (the module keeps its state per process)."""
    monkeypatch.setattr(environment, "_handed_out", set())
    monkeypatch.setattr(environment, "_next_port", [])


def test_workers_draw_from_disjoint_slices_below_the_ephemeral_range(
    fresh_allocator: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two xdist workers can never hand out the same port, nor one an outgoing socket takes."""
    ephemeral_low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    drawn: dict[str, set[int]] = {}
    for worker in ("gw0", "gw1"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        # Each worker is a process of its own: nothing handed out by the other is known to it.
        monkeypatch.setattr(environment, "_next_port", [])
        monkeypatch.setattr(environment, "_handed_out", set())
        drawn[worker] = {free_port() for _ in range(50)}
    assert not drawn["gw0"] & drawn["gw1"]
    assert all(port < ephemeral_low for ports in drawn.values() for port in ports)


def test_a_port_is_handed_out_once_and_a_taken_one_is_skipped(fresh_allocator: None) -> None:
    """A port handed out but not yet bound is not given again; a listening port is not given."""
    first = free_port()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", first + 1))
        listener.listen()
        environment._next_port[:] = [first]
        second = free_port()
    assert second not in (first, first + 1)
