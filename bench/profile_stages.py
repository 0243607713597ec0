#!/usr/bin/env python3
"""Charges perf samples to the tap's stages (bench/profile_tap.sh).

    perf script -F comm,tid,ip,sym | profile_stages.py FREQ

Reads samples with call chains (a header line, then one indented "ip symbol"
line per frame, innermost first, then a blank line). Each sample goes to the
stage of the innermost frame that matches one of STAGES; samples with no such
frame go to "kernel, other" (only kernel frames: scheduling, interrupts, the
socket's wakeups) or "other". Prints "stage<TAB>CPU seconds" lines, where a
sample stands for 1/FREQ s of CPU.
"""
import collections
import re
import sys

# Checked per frame, innermost frame first; the first frame that matches any
# of these decides. Order matters only within one frame.
STAGES = [
    ("CRC32C", re.compile(r"crc32|Crc32c")),
    ("compression", re.compile(r"ZSTD|HUF_|FSE_|isal_deflate|Compress|Incompressible|Entropy")),
    ("RocksDB (memtable, WAL, flush, compaction)", re.compile(r"rocksdb::")),
    ("journal encoding (tidemark)", re.compile(r"tidemark::journal::")),
    ("NBD (parsing, socket)", re.compile(r"nbd::")),
    ("backing write (io_uring, page cache)", re.compile(r"ParallelWriter|uring::|io_wq_worker|io_worker_handle_work|io_issue_sqe|io_write\b")),
    ("tap (queues, record thread)", re.compile(r"tidemark::capture::|tidemark::tap")),
]


def classify(frames):
    for ip, sym in frames:
        for stage, pattern in STAGES:
            if pattern.search(sym):
                return stage
    if frames and all(ip.startswith("ffff") for ip, _ in frames):
        return "kernel, other (scheduling, interrupts, wakeups)"
    return "other (libc, unresolved)"


def samples(lines):
    frames, in_sample = [], False
    for line in lines:
        if not line.strip():
            if in_sample:
                yield frames
            frames, in_sample = [], False
        elif line[0] in " \t":
            parts = line.strip().split(None, 1)
            frames.append((parts[0], parts[1] if len(parts) > 1 else ""))
        else:
            if in_sample:
                yield frames
            frames, in_sample = [], True
    if in_sample:
        yield frames


def main():
    freq = float(sys.argv[1]) if len(sys.argv) > 1 else 499.0
    counts = collections.Counter(classify(f) for f in samples(sys.stdin))
    for stage, n in counts.most_common():
        print(f"{stage}\t{n / freq:.4f}")


if __name__ == "__main__":
    main()
