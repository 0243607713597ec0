#!/usr/bin/env python3
"""Replays an MQSim-format block trace (tests/data/traces/README.md) against an NBD
server with libnbd's asynchronous API, up to --qd requests in flight, and prints one
JSON object with the achieved rate.

Reads and writes are both replayed. Placement (folding onto the export) and write
payloads follow the traces README through tests/lib/trace_ref.py (place(), payload()):
request r is the trace's 0-based line number, all devices fold onto one export.

Paces:
  recorded  request i is issued at (time_ns[i] - time_ns[0]) after the start, or as soon
            as a slot is free when --qd requests are already in flight (the slip, how
            late each request went out against its schedule, is reported)
  asap      requests back to back, --qd in flight

Needs python3-libnbd (module nbd). Example:
  nbd_replay.py --uri 'nbd+unix:///?socket=/tmp/tap.sock' --trace tpcc-small.trace --pace asap
"""

import argparse
import json
import os
import select
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "lib"))
import trace_ref  # noqa: E402  (tests/lib: the README's placement and payload rules)

try:
    import nbd
except ImportError:
    nbd = None


class Request:
    __slots__ = ("due_ns", "write", "offset", "length", "buf")

    def __init__(self, due_ns, write, offset, length, buf):
        self.due_ns, self.write, self.offset, self.length, self.buf = due_ns, write, offset, length, buf


def load(path, volume_bytes, align, max_requests):
    """Reads the trace; returns its requests, placed and with write payloads built."""
    reqs = []
    first_ns = None
    with open(path, "r", encoding="ascii") as f:
        for r, line in enumerate(f):
            if max_requests is not None and len(reqs) >= max_requests:
                break
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 5:
                raise ValueError(f"{path}:{r + 1}: expected 5 fields, got {len(fields)}")
            time_ns, _device, lba, sectors, rtype = (int(x) for x in fields)
            if rtype not in (0, 1):
                raise ValueError(f"{path}:{r + 1}: unknown request type {rtype}")
            if first_ns is None:
                first_ns = time_ns
            if time_ns < first_ns:
                raise ValueError(f"{path}:{r + 1}: time goes backwards")
            offset, length = trace_ref.place(lba, sectors, volume_bytes, align)
            buf = nbd.Buffer.from_bytearray(trace_ref.payload(r, length)) if rtype == 0 else None
            reqs.append(Request(time_ns - first_ns, rtype == 0, offset, length, buf))
    if not reqs:
        raise ValueError(f"{path}: no requests")
    return reqs


def percentile(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p))]


def replay(h, reqs, qd, recorded):
    """Issues every request; returns (elapsed_ns, slips_ns, latencies_ns). Time from the
    first issue to the last completion; latency from issue to the loop's seeing it done."""
    fd = h.aio_get_fd()
    free_reads = {}  # length -> [nbd.Buffer]: read buffers are reused once retired
    inflight = {}    # cookie -> (request, issue time, buffer)
    slips, lats = [], []

    def reap():
        while inflight:
            cookie = h.aio_peek_command_completed()
            if cookie <= 0:
                return
            req, issued, buf = inflight.pop(cookie)
            h.aio_command_completed(cookie)  # raises nbd.Error when the command failed
            lats.append(time.monotonic_ns() - issued)
            if not req.write:
                free_reads.setdefault(req.length, []).append(buf)

    def wait_io(timeout_s):
        d = h.aio_get_direction()
        rd = [fd] if d & nbd.AIO_DIRECTION_READ else []
        wr = [fd] if d & nbd.AIO_DIRECTION_WRITE else []
        r, w, _ = select.select(rd, wr, [], timeout_s)
        if r:
            h.aio_notify_read()
        if w:
            h.aio_notify_write()

    n = len(reqs)
    i = 0
    t0 = time.monotonic_ns()
    while i < n or inflight:
        now = time.monotonic_ns()
        while i < n and len(inflight) < qd:
            req = reqs[i]
            due = t0 + req.due_ns if recorded else now
            if due > now:
                break
            if req.write:
                buf = req.buf
                cookie = h.aio_pwrite(buf, req.offset)
            else:
                pool = free_reads.get(req.length)
                buf = pool.pop() if pool else nbd.Buffer(req.length)
                cookie = h.aio_pread(buf, req.offset)
            inflight[cookie] = (req, now, buf)
            if recorded:
                slips.append(now - due)
            i += 1
            now = time.monotonic_ns()
        reap()
        if i >= n and not inflight:
            break
        timeout = None
        if i < n and len(inflight) < qd:  # recorded pace: the next request is not due yet
            timeout = max(0.0, (t0 + reqs[i].due_ns - time.monotonic_ns()) / 1e9)
        if inflight:
            wait_io(timeout)
        elif timeout:
            time.sleep(timeout)
        reap()
    return time.monotonic_ns() - t0, slips, lats


def main():
    ap = argparse.ArgumentParser(
        description="Replay an MQSim block trace against an NBD server (libnbd aio, QD up to --qd).",
        epilog="Prints one JSON object on stdout; see the module docstring for the rules.")
    ap.add_argument("--uri", required=True, help="NBD URI, e.g. nbd+unix:///?socket=PATH")
    ap.add_argument("--trace", required=True, help="trace file (time_ns device lba sectors type)")
    ap.add_argument("--pace", choices=("recorded", "asap"), default="asap")
    ap.add_argument("--qd", type=int, default=32, help="requests in flight at most (default 32)")
    ap.add_argument("--align", type=int, default=512,
                    help="round offsets down and lengths up to this (default 512: as recorded)")
    ap.add_argument("--max-requests", type=int, help="replay only the first N requests")
    a = ap.parse_args()

    if nbd is None:
        ap.error(f"the Python module nbd (Debian package python3-libnbd) is missing for {sys.executable}")
    if a.qd < 1:
        ap.error("--qd must be at least 1")
    if a.align < 512 or a.align & (a.align - 1):
        ap.error("--align must be a power of two, at least 512")
    if a.max_requests is not None and a.max_requests < 1:
        ap.error("--max-requests must be at least 1")
    if not os.path.isfile(a.trace):
        ap.error(f"no trace file {a.trace}")

    h = nbd.NBD()
    try:
        h.connect_uri(a.uri)
    except nbd.Error as e:
        print(f"nbd_replay.py: cannot connect to {a.uri}: {e}", file=sys.stderr)
        return 1
    size = h.get_size()
    try:
        reqs = load(a.trace, size, a.align, a.max_requests)
    except (ValueError, OSError) as e:
        print(f"nbd_replay.py: {e}", file=sys.stderr)
        return 1
    try:
        elapsed_ns, slips, lats = replay(h, reqs, a.qd, a.pace == "recorded")
    except nbd.Error as e:
        print(f"nbd_replay.py: request failed: {e}", file=sys.stderr)
        return 1
    h.shutdown()

    writes = [r for r in reqs if r.write]
    wbytes = sum(r.length for r in writes)
    rbytes = sum(r.length for r in reqs if not r.write)
    secs = elapsed_ns / 1e9
    span = reqs[-1].due_ns / 1e9
    out = {
        "trace": os.path.basename(a.trace), "pace": a.pace, "qd": a.qd, "align": a.align,
        "export_bytes": size, "requests": len(reqs), "writes": len(writes),
        "reads": len(reqs) - len(writes), "write_bytes": wbytes, "read_bytes": rbytes,
        "trace_span_s": span, "elapsed_s": secs,
        "iops": len(reqs) / secs, "mb_s": (wbytes + rbytes) / secs / 1e6,
        "recorded_iops": len(reqs) / span if span > 0 else None,
        "latency_p50_ms": percentile(lats, 0.5) / 1e6, "latency_p99_ms": percentile(lats, 0.99) / 1e6,
        "slip_p50_ms": percentile(slips, 0.5) / 1e6 if slips else None,
        "slip_p99_ms": percentile(slips, 0.99) / 1e6 if slips else None,
    }
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
