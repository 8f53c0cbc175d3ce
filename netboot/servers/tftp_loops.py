"""Several TFTP loops on one port: one per CPU, each pinned, each request steered to its CPU's loop.

One :class:`~netboot.servers.tftp.TftpServer` loop answers a download's ACKs in C without the
interpreter, but it is one thread, and a thread is one scheduling entity: with 20 lock-step clients on
two CPUs it was measured at 0.8-0.97 of atftpd (a thread per client) whenever it had to compete with busy
processes for its CPU, and idle CPU time shows up while clients wait for it. :class:`TftpLoops` runs
``loops`` of them on the same address; the daemon runs one per CPU by default (``tftp-loops: auto``),
which measured at or above one loop in every cell and 1.2-1.4x atftpd with busy neighbours, for 10-25%
more CPU per MB (docs/performance.md, "One loop per CPU"):

- Every loop binds the request port with ``SO_REUSEPORT``. A classic BPF program attached with
  ``SO_ATTACH_REUSEPORT_CBPF`` picks the loop for each request from the CPU that received it: the CPU of
  the NIC queue its flow hashes to (RSS), or the sending process's CPU for clients on this host (VMs,
  containers). Each loop thread is pinned to its CPUs (unless ``pin=False``, config ``tftp-pin``), so a
  transfer is served where its packets arrive, without waking a thread on another CPU. A CPU the program
  does not list (an interrupt outside the daemon's CPU set) makes the kernel fall back to its flow hash.
- The transfer then stays in the loop that took the request: its socket is that loop's.
- The loops share one :class:`~netboot.servers.tftp_transfers.TransferTable`: ``max_transfers`` is a
  total, and a request from a client that already has a transfer goes to the loop that owns it, so a
  retransmitted request that arrives on another CPU does not start a second transfer.

With one receive queue (many virtual NICs), every request arrives on one CPU and one loop does all the
work, as with a single loop. ``loops=1`` is a plain ``TftpServer`` in the calling thread: no
``SO_REUSEPORT``, no pinning, no thread of its own.

While loops are running, another process of the same user could also bind the port with
``SO_REUSEPORT`` and receive some requests; the daemon runs as root, so that is only root.
"""

from __future__ import annotations

import ctypes
import logging
import os
import socket
import struct
import threading
import time
from typing import Any

from netboot.events import EventRecorder
from netboot.servers.tftp import TftpServer
from netboot.servers.tftp_resolvers import TftpResolver
from netboot.servers.tftp_sockets import fd_budget
from netboot.servers.tftp_transfers import TransferTable

log = logging.getLogger("netboot.tftp")

SO_ATTACH_REUSEPORT_CBPF = 51  # <asm-generic/socket.h>; Python's socket module does not export it
#: classic BPF: load the ancillary "current CPU" word, compare, return (<linux/filter.h>)
_BPF_LD_CPU = (0x20, 0, 0, 0xFFFFF024)  # BPF_LD|BPF_W|BPF_ABS, SKF_AD_OFF + SKF_AD_CPU
_BPF_JEQ_K, _BPF_RET_K = 0x15, 0x06  # BPF_JMP|BPF_JEQ|BPF_K, BPF_RET|BPF_K
#: a reuseport program's answer that is no socket index: the kernel falls back to the flow hash
_NO_INDEX = 0xFFFFFFFF
_INSN = struct.Struct("=HBBI")
#: the most CPUs the program lists (two instructions each; classic BPF allows 4096)
MAX_LISTED_CPUS = 2000


def cpu_sets(cpus: list[int], loops: int) -> list[set[int]]:
    """Which CPUs each loop is pinned to: the allowed CPUs dealt out in turn (loop i gets every
    ``loops``-th CPU, starting with the i-th)."""
    if not 1 <= loops <= len(cpus):
        raise ValueError(f"{loops} loops, but this process may run on {len(cpus)} CPUs "
                         f"({', '.join(map(str, cpus))}): use 1 to {len(cpus)} (at most one loop per CPU) "
                         "or 'auto'")
    return [set(cpus[i::loops]) for i in range(loops)]


def steering_program(sets: list[set[int]]) -> bytes:
    """The classic BPF program that returns, for the CPU a request arrived on, the index of the loop
    pinned there (the order the loops joined the port), or no index for any other CPU."""
    listed = sorted((cpu, index) for index, cpus in enumerate(sets) for cpu in cpus)
    if len(listed) > MAX_LISTED_CPUS:
        raise ValueError(f"{len(listed)} CPUs: the steering program lists at most {MAX_LISTED_CPUS}")
    insns = [_BPF_LD_CPU]
    for cpu, index in listed:
        insns.append((_BPF_JEQ_K, 0, 1, cpu))  # equal: fall through to the RET; else skip it
        insns.append((_BPF_RET_K, 0, 0, index))
    insns.append((_BPF_RET_K, 0, 0, _NO_INDEX))
    return b"".join(_INSN.pack(*insn) for insn in insns)


def attach_steering(sock: socket.socket, program: bytes) -> None:
    """Attach ``program`` to the port's ``SO_REUSEPORT`` group through one member socket."""
    count = len(program) // _INSN.size
    code = ctypes.create_string_buffer(program, len(program))
    fprog = struct.pack("@HP", count, ctypes.addressof(code))  # struct sock_fprog, native alignment
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_REUSEPORT_CBPF, fprog)


class TftpLoops:
    """``loops`` TFTP loops serving one address, with :class:`TftpServer`'s interface.

    ``serve_forever()`` starts loops 2..n in threads (``netboot-tftp-2`` ...), runs loop 1 in the calling
    thread, and returns once all have stopped; the calling thread's CPU affinity is restored then.
    ``shutdown()`` stops them all; ``close()`` releases every socket. Other keyword arguments go to each
    :class:`TftpServer`. ``cpus`` defaults to the CPUs this process may run on; ``loops="auto"`` is one
    loop per CPU of those, and a number outside 1..len(cpus) is refused with ValueError.
    """

    def __init__(
        self,
        bind: tuple[str, int],
        resolver: TftpResolver,
        recorder: EventRecorder,
        *,
        loops: int | str = 1,
        max_transfers: int = 1024,
        cpus: list[int] | None = None,
        pin: bool = True,
        **options: Any,
    ) -> None:
        self._pin = pin
        allowed = sorted(cpus if cpus is not None else os.sched_getaffinity(0))
        loops = len(allowed) if loops == "auto" else int(loops)
        #: the CPUs each loop takes requests from (and is pinned to, with ``pin``); empty for one loop
        self._cpu_sets = cpu_sets(allowed, loops) if loops != 1 else []  # refuses 0 and too many
        table = TransferTable(fd_budget(max_transfers))
        self.servers: list[TftpServer] = []
        try:
            first = TftpServer(bind, resolver, recorder, reuse_port=loops > 1, table=table,
                               name=self._loop_name(0), **options)
            self.servers.append(first)
            shared = (bind[0], first.server_address[1])  # port 0: the others join the port it got
            for index in range(1, loops):
                self.servers.append(TftpServer(shared, resolver, recorder, reuse_port=True, table=table,
                                               name=self._loop_name(index), **options))
            self.steered = False
            if loops > 1:
                try:
                    attach_steering(first.listener, steering_program(self._cpu_sets))
                    self.steered = True
                except OSError as exc:  # an old kernel: the flow hash spreads requests instead
                    log.warning("TFTP: cannot steer requests to the loop on their CPU (%s); the kernel's "
                                "flow hash spreads them", exc)
        except BaseException:
            for server in self.servers:
                server.close()
            raise

    def _loop_name(self, index: int) -> str:
        if not self._cpu_sets:
            return "TFTP"
        where = "CPU" if self._pin else "requests from CPU"
        return f"TFTP loop {index + 1}/{len(self._cpu_sets)} ({where} {_cpu_list(self._cpu_sets[index])})"

    @property
    def server_address(self) -> tuple[str, int]:
        return self.servers[0].server_address

    @property
    def active_transfers(self) -> int:
        return sum(server.active_transfers for server in self.servers)

    def describe(self) -> str:
        """How the loops are laid out, for the daemon's start-up line."""
        if not self._cpu_sets:
            return "1 loop"
        how = "steered by CPU" if self.steered else "spread by flow hash"
        where = "pinned to" if self._pin else "not pinned, taking requests from"
        return f"{len(self.servers)} loops {where} CPUs " + ", ".join(
            _cpu_list(cpus) for cpus in self._cpu_sets) + f", requests {how}"

    def serve_forever(self) -> None:
        """Run every loop until :meth:`shutdown`."""
        if not self._cpu_sets:
            self.servers[0].serve_forever()
            return
        threads = [threading.Thread(target=self._run, args=(index,), name=f"netboot-tftp-{index + 1}",
                                    daemon=True) for index in range(1, len(self.servers))]
        for thread in threads:
            thread.start()
        saved = os.sched_getaffinity(0)
        try:
            self._run(0)
        finally:
            if self._pin:
                os.sched_setaffinity(0, saved)
            for thread in threads:
                thread.join()

    def _run(self, index: int) -> None:
        try:
            if self._pin:
                os.sched_setaffinity(0, self._cpu_sets[index])  # this thread only (Linux: 0 is the caller)
        except OSError as exc:
            log.warning("TFTP loop %d not pinned to CPU %s: %s", index + 1, _cpu_list(self._cpu_sets[index]),
                        exc)
        try:
            self.servers[index].serve_forever()
        except Exception:
            log.exception("TFTP loop %d stopped", index + 1)

    def shutdown(self, wait: float = 5.0) -> None:
        """Stop every loop (thread-safe) and wait for each, up to ``wait`` seconds in all."""
        for server in self.servers:
            server.shutdown(wait=0)
        deadline = time.monotonic() + wait
        for server in self.servers:
            server.shutdown(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        for server in self.servers:
            server.close()

    def __enter__(self) -> TftpLoops:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _cpu_list(cpus: set[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))
