"""Shared helpers for bench/*.sh: per-round statistics, the result records
that bench/report.py turns into the summary table of docs/benchmarks.md, and
a tap's status for the scripts that sample it.

A script's Python block does `from benchlib import result, spread` (bench/lib.sh
puts this directory on PYTHONPATH) and calls result() once per row of the
summary table. Records go, one JSON object a line, to the file named by
$BENCH_RESULTS; without it result() does nothing, so each script still runs on
its own and prints only its markdown section.
"""
import json
import os
import socket
import statistics


def spread(values):
    """(min, median, max) of a non-empty list of numbers."""
    v = sorted(values)
    return v[0], statistics.median(v), v[-1]


def result(measure, tidemark, peer, ratios, goal=None, caches="warm", note=""):
    """Records one row of the summary table.

    measure   what was measured, e.g. "tap 4 KiB random write IOPS, QD 32"
    tidemark  tidemark's median figure as displayed, e.g. "27,444 IOPS"
    peer      the peer and its median figure, e.g. "nbdkit file 162,222 IOPS",
              or "(absolute)" when the figure stands alone
    ratios    one number per round: tidemark/peer, or the absolute figure
    goal      ">= 0.8" or "<= 1.05" (compared with the median), or None
    caches    "warm", "cold" or "-"
    note      a short remark for the table (optional)
    """
    path = os.environ.get("BENCH_RESULTS")
    if not path:
        return
    record = {"measure": measure, "tidemark": tidemark, "peer": peer,
              "ratios": [float(r) for r in ratios], "goal": goal, "caches": caches,
              "note": note, "script": os.environ.get("BENCH_SCRIPT", "")}
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


def volume_status(control_sock):
    """The first volume of GET /v1/status (a dict: rpo_lag_seconds, queued_bytes,
    state, ...) from a tap's or protect's control socket, a unix socket path.
    Raises OSError when nothing answers there, ValueError, KeyError or IndexError
    on an answer without a volume."""
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(control_sock)
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])["volumes"][0]
