#!/usr/bin/env python3
"""Reference images for trace replay, written from /work/shared/traces/README.md only.

Applies the first N write requests of an MQSim-format trace to a zero-filled volume of
--size bytes and writes the result as a sparse raw image, so that a test can compare it with
`tidemark restore --seq N` after `tidemark journal replay` (a fresh replay gives the j-th
write, 0-based, seq j+1, so seq N holds exactly the first N writes).

The README's rules, as implemented here:
  line:    time_ns device lba sectors type; type 0 = write, 1 = read (reads are ignored)
  r:       the 0-based line number in the file (reads count too)
  payload: 512-byte sector k (0-based within the request) of request r holds the 8-byte
           little-endian value r * 65536 + k, repeated 64 times
  align:   with --align A: offset = (lba * 512) rounded down to A and length = sectors * 512
           rounded up to A, first (before folding)
  fold:    offset = offset % V; if offset + length > V then offset = V - length, rounded
           down to 512 (all devices onto one volume)

Usage:
  trace_ref.py --trace F --size V [--align A] --writes N --out IMG
  trace_ref.py --trace F --size V [--align A] --at N1,N2,... --out-pattern DIR/ref-%d.img
  trace_ref.py --trace F --count          prints the number of write requests
  trace_ref.py --self-test                checks the rules on a hand-computed example
"""

import argparse
import os
import struct
import sys

SECTOR = 512
CHUNK = 4096  # granularity of the in-memory sparse image; not the journal's block size


def parse_trace(path):
    """Yields (r, lba, sectors) for every write request, r = 0-based line number."""
    with open(path, "r", encoding="ascii") as f:
        for r, line in enumerate(f):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 5:
                raise ValueError(f"{path}:{r + 1}: expected 5 fields, got {len(fields)}")
            _time_ns, _device, lba, sectors, rtype = (int(x) for x in fields)
            if rtype == 0:
                yield r, lba, sectors
            elif rtype != 1:
                raise ValueError(f"{path}:{r + 1}: unknown request type {rtype}")


def place(lba, sectors, volume_size, align, cover=False):
    """Returns (offset, length) in bytes of a write on the folded volume."""
    offset = lba * SECTOR
    length = sectors * SECTOR
    if align > SECTOR:
        end = offset + length
        offset -= offset % align
        if cover:  # alternative reading, for diagnosis only: cover the original range
            length = end - offset
        length = -(-length // align) * align
    if length > volume_size:
        raise ValueError(f"write of {length} bytes does not fit a volume of {volume_size}")
    offset %= volume_size
    if offset + length > volume_size:
        offset = (volume_size - length) // SECTOR * SECTOR
    return offset, length


def payload(r, length):
    out = bytearray()
    for k in range(length // SECTOR):
        out += struct.pack("<Q", r * 65536 + k) * 64
    return bytes(out)


class SparseImage:
    """A zero-filled volume kept as a dict of touched CHUNK-sized pieces."""

    def __init__(self, size):
        self.size = size
        self.chunks = {}

    def write(self, offset, data):
        pos = 0
        while pos < len(data):
            idx, within = divmod(offset + pos, CHUNK)
            n = min(CHUNK - within, len(data) - pos)
            chunk = self.chunks.get(idx)
            if chunk is None:
                chunk = self.chunks[idx] = bytearray(CHUNK)
            chunk[within:within + n] = data[pos:pos + n]
            pos += n

    def save(self, path):
        tmp_path = path + ".tmp"
        fd = os.open(tmp_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, self.size)
            for idx in sorted(self.chunks):
                chunk = self.chunks[idx]
                if any(chunk):
                    os.pwrite(fd, chunk, idx * CHUNK)
        finally:
            os.close(fd)
        os.replace(tmp_path, path)

    def read(self, offset, length):
        out = bytearray(length)
        for pos in range(length):
            idx, within = divmod(offset + pos, CHUNK)
            chunk = self.chunks.get(idx)
            if chunk is not None:
                out[pos] = chunk[within]
        return bytes(out)


def build(trace, size, align, points, emit, cover=False):
    """Applies writes in order; calls emit(n, image) after n writes for each n in points."""
    pending = sorted(set(points))
    image = SparseImage(size)
    n = 0
    while pending and pending[0] == 0:
        emit(0, image)
        pending.pop(0)
    for r, lba, sectors in parse_trace(trace):
        if not pending:
            break
        offset, length = place(lba, sectors, size, align, cover)
        image.write(offset, payload(r, length))
        n += 1
        while pending and pending[0] == n:
            emit(n, image)
            pending.pop(0)
    if pending:
        raise ValueError(f"trace has only {n} writes; asked for {pending}")


def self_test():
    import tempfile

    def check(cond, what):
        if not cond:
            raise AssertionError(what)

    v = 1 << 20  # 1 MiB volume
    # Folding: (lba*512) % V, then pulled back so that the write fits.
    check(place(0, 1, v, 512) == (0, 512), "plain")
    check(place(2048 + 3, 2, v, 512) == (3 * 512, 1024), "fold wraps at V")
    check(place(2047, 2, v, 512) == (v - 1024, 1024), "tail pulled back to V - length")
    # Alignment first: offset down to 4096, length up to 4096.
    check(place(9, 2, v, 4096) == (4096, 4096), "align 4096")
    check(place(7, 2, v, 4096) == (0, 4096), "align: offset and length rounded separately")
    check(place(7, 2, v, 4096, cover=True) == (0, 8192), "cover reading")
    check(place(2047, 16, v, 4096) == (v - 8192, 8192), "aligned tail pulled back")
    # Payload: sector k of request r holds r*65536+k (u64 LE) 64 times.
    p = payload(3, 1024)
    check(len(p) == 1024, "payload length")
    check(p[:8] == struct.pack("<Q", 3 * 65536) and p[504:512] == p[:8], "sector 0")
    check(p[512:520] == struct.pack("<Q", 3 * 65536 + 1) and p[1016:] == p[512:520], "sector 1")
    # Request numbers count every line, reads too; reads change nothing.
    with tempfile.TemporaryDirectory() as d:
        trace = os.path.join(d, "t.trace")
        with open(trace, "w") as f:
            f.write("0 0 1 1 1\n")      # r=0 read
            f.write("1 5 1 2 0\n")      # r=1 write, sectors 1..2
            f.write("2 0 2 1 0\n")      # r=2 write, sector 2 (overwrites)
            f.write("3 0 0 1 1")        # r=3 read, no final newline
        seen = {}
        build(trace, v, 512, [0, 1, 2], lambda n, im: seen.__setitem__(n, im.read(0, 2048)))
        z = bytes(512)
        s1 = struct.pack("<Q", 65536) * 64
        s2 = struct.pack("<Q", 65537) * 64
        s3 = struct.pack("<Q", 2 * 65536) * 64
        check(seen[0] == bytes(2048), "0 writes: zeros")
        check(seen[1] == z + s1 + s2 + z, "after write r=1")
        check(seen[2] == z + s1 + s3 + z, "after write r=2")
        out = os.path.join(d, "x.img")
        build(trace, v, 512, [2], lambda n, im: im.save(out))
        with open(out, "rb") as f:
            data = f.read()
        check(len(data) == v and data[:2048] == seen[2] and not any(data[2048:]), "save")
    print("trace_ref self-test OK")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trace")
    ap.add_argument("--size", type=int, help="volume size in bytes")
    ap.add_argument("--align", type=int, default=512)
    ap.add_argument("--cover", action="store_true",
                    help="diagnosis only: with --align, round the end up instead of the length")
    ap.add_argument("--writes", type=int, help="apply this many writes")
    ap.add_argument("--out", help="image to write (with --writes)")
    ap.add_argument("--at", help="comma-separated write counts")
    ap.add_argument("--out-pattern", help="with --at: path with %%d for the write count")
    ap.add_argument("--count", action="store_true", help="print the number of writes")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()

    if a.self_test:
        self_test()
        return 0
    if not a.trace:
        ap.error("--trace is required")
    if a.count:
        print(sum(1 for _ in parse_trace(a.trace)))
        return 0
    if a.size is None or a.size <= 0 or a.size % CHUNK:
        ap.error("--size must be a positive multiple of 4096")
    if a.align < SECTOR or a.align & (a.align - 1):
        ap.error("--align must be a power of two, at least 512")
    if a.writes is not None and a.out:
        build(a.trace, a.size, a.align, [a.writes], lambda n, im: im.save(a.out), a.cover)
    elif a.at and a.out_pattern:
        points = [int(x) for x in a.at.split(",") if x]
        build(a.trace, a.size, a.align, points,
              lambda n, im: im.save(a.out_pattern % n), a.cover)
    else:
        ap.error("give --writes N --out IMG, or --at N1,N2,... --out-pattern PATTERN")
    return 0


if __name__ == "__main__":
    sys.exit(main())
