#!/usr/bin/env python3
"""A minimal NBD client on a raw socket (fixed newstyle, NBD_OPT_GO, simple replies), for
requests that polite clients (qemu-io, libnbd) refuse to send, and for a writer that logs
exactly which writes the server acknowledged.

  nbd_raw.py ops SOCK EXPORT OP...
      OP: "read OFF LEN" | "write OFF LEN BYTE" | "trim OFF LEN" | "zero OFF LEN" | "flush"
      (numbers in any Python int syntax, or with a K/M suffix). Prints one line per OP:
      "ok" (a read adds the sha256 of the data) or "error N" (the NBD error number).
      Exits 0 if the connection survived every OP, 3 if the server hung up.
  nbd_raw.py writer SOCK EXPORT LOG ROUND FIRST_SLOT NSLOTS SLOT_SIZE [DEPTH [RATE [FLUSH]]]
      Writes slot FIRST_SLOT.. in random order, each write a random 512-aligned piece of
      its slot filled by fill(ROUND, SLOT, LEN), DEPTH requests in flight (default 8), at
      most RATE writes a second (default 0: no limit). After each
      successful reply it appends "ROUND SLOT OFF LEN" to LOG (unbuffered). With FLUSH > 0,
      after every FLUSH acknowledged writes it waits for those in flight, sends a FLUSH, and
      once it is answered writes the number of LOG lines it covers to LOG.flushed. Stops when
      the slots are used up or the server goes away; exit 0 either way (a reply error: 1).
  nbd_raw.py check IMAGE LOG [LINES]
      Every write in LOG (its first LINES lines) is present in IMAGE (byte for byte). Exit 1
      listing the missing.
"""
import hashlib
import os
import random
import socket
import struct
import sys
import time

NBDMAGIC = 0x4E42444D41474943
IHAVEOPT = 0x49484156454F5054
REPLY_MAGIC = 0x3E889045565A9
REQ_MAGIC = 0x25609513
SIMPLE_REPLY = 0x67446698
OPT_GO = 7
REP_ACK = 1
REP_INFO = 3
CMD = {"read": 0, "write": 1, "disc": 2, "flush": 3, "trim": 4, "zero": 6}


class Hangup(Exception):
    pass


def recv_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        b = s.recv(n - len(buf))
        if not b:
            raise Hangup()
        buf += b
    return bytes(buf)


def connect(path, export):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    magic, opt, hflags = struct.unpack(">QQH", recv_exact(s, 18))
    assert magic == NBDMAGIC and opt == IHAVEOPT, "not a fixed-newstyle NBD server"
    cflags = 1 | (hflags & 2)  # FIXED_NEWSTYLE, NO_ZEROES if offered
    s.sendall(struct.pack(">I", cflags))
    name = export.encode()
    data = struct.pack(">I", len(name)) + name + struct.pack(">H", 0)
    s.sendall(struct.pack(">QII", IHAVEOPT, OPT_GO, len(data)) + data)
    size = None
    while True:
        magic, opt, rtype, rlen = struct.unpack(">QIII", recv_exact(s, 20))
        assert magic == REPLY_MAGIC, hex(magic)
        payload = recv_exact(s, rlen)
        if rtype == REP_ACK:
            break
        if rtype & 0x80000000:
            raise SystemExit("NBD_OPT_GO refused: 0x%x %r" % (rtype, payload))
        if rtype == REP_INFO and struct.unpack(">H", payload[:2])[0] == 0:
            size = struct.unpack(">Q", payload[2:10])[0]
    return s, size


def send_req(s, cmd, handle, off, length, data=b"", flags=0):
    s.sendall(struct.pack(">IHHQQI", REQ_MAGIC, flags, CMD[cmd], handle, off, length) + data)


def recv_reply(s, read_len_of):
    magic, err, handle = struct.unpack(">IIQ", recv_exact(s, 16))
    assert magic == SIMPLE_REPLY, "unexpected reply magic 0x%x" % magic
    data = b""
    n = read_len_of(handle)
    if err == 0 and n:
        data = recv_exact(s, n)
    return err, handle, data


def num(t):
    t = t.strip()
    mult = {"K": 1024, "M": 1 << 20}.get(t[-1:].upper(), 1)
    return int(t[:-1] if mult > 1 else t, 0) * mult


def cmd_ops(argv):
    s, _ = connect(argv[0], argv[1])
    try:
        for i, op in enumerate(argv[2:]):
            w = op.split()
            kind = w[0]
            off = num(w[1]) if len(w) > 1 else 0
            length = num(w[2]) if len(w) > 2 else 0
            data = bytes([num(w[3]) & 0xFF]) * length if kind == "write" else b""
            send_req(s, kind, i, off, length, data)
            err, h, d = recv_reply(s, lambda h: length if kind == "read" else 0)
            assert h == i, "reply for handle %d, expected %d" % (h, i)
            if err:
                print("error %d" % err, flush=True)
            elif kind == "read":
                print("ok " + hashlib.sha256(d).hexdigest(), flush=True)
            else:
                print("ok", flush=True)
        send_req(s, "disc", 0, 0, 0)
    except (Hangup, ConnectionError, BrokenPipeError) as e:
        print("disconnected (%s)" % type(e).__name__, flush=True)
        return 3
    return 0


def fill(rnd, slot, length):
    seed = hashlib.sha256(b"%d/%d" % (rnd, slot)).digest()
    return (seed * (length // len(seed) + 1))[:length]


def piece(rnd, slot, slot_size):
    r = random.Random(rnd * 1000003 + slot)
    length = r.randrange(1, slot_size // 512 + 1) * 512
    start = r.randrange(0, (slot_size - length) // 512 + 1) * 512
    return slot * slot_size + start, length


def cmd_writer(argv):
    sock, export, log = argv[0], argv[1], argv[2]
    rnd, first, nslots, slot_size = (int(x) for x in argv[3:7])
    depth = int(argv[7]) if len(argv) > 7 else 8
    rate = float(argv[8]) if len(argv) > 8 else 0
    flush_every = int(argv[9]) if len(argv) > 9 else 0
    acked = sum(1 for _ in open(log)) if os.path.exists(log) else 0
    since_flush = 0
    t0 = time.monotonic()
    sent = 0
    slots = list(range(first, first + nslots))
    random.Random(rnd).shuffle(slots)
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    inflight = {}

    def take_reply():  # one write's reply: logged when it succeeded
        nonlocal acked
        err, h, _ = recv_reply(s, lambda h: 0)
        off, length = inflight.pop(h)
        if err:
            print("writer: write slot %d failed: error %d" % (h, err), file=sys.stderr)
            return False
        os.write(fd, b"%d %d %d %d\n" % (rnd, h, off, length))
        acked += 1
        return True

    try:
        s, _ = connect(sock, export)
        it = iter(slots)
        done = False
        while not done or inflight:
            while not done and len(inflight) < depth:
                slot = next(it, None)
                if slot is None:
                    done = True
                    break
                if rate:
                    ahead = t0 + sent / rate - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)
                sent += 1
                off, length = piece(rnd, slot, slot_size)
                send_req(s, "write", slot, off, length, fill(rnd, slot, length))
                inflight[slot] = (off, length)
            if not inflight:
                break
            if not take_reply():
                return 1
            since_flush += 1
            if flush_every and since_flush >= flush_every:
                while inflight:  # a FLUSH covers the writes answered before it is sent
                    if not take_reply():
                        return 1
                send_req(s, "flush", 1 << 62, 0, 0)
                err, _, _ = recv_reply(s, lambda h: 0)
                if err:
                    print("writer: flush failed: error %d" % err, file=sys.stderr)
                    return 1
                with open(log + ".flushed.tmp", "w") as f:
                    f.write("%d\n" % acked)
                os.rename(log + ".flushed.tmp", log + ".flushed")
                since_flush = 0
    except (Hangup, ConnectionError, BrokenPipeError, FileNotFoundError):
        pass
    return 0


def cmd_check(argv):
    image, log = argv[0], argv[1]
    limit = int(argv[2]) if len(argv) > 2 else None
    bad = 0
    n = 0
    with open(image, "rb") as f, open(log) as lf:
        for line in lf:
            if limit is not None and n >= limit:
                break
            rnd, slot, off, length = (int(x) for x in line.split())
            f.seek(off)
            n += 1
            if f.read(length) != fill(rnd, slot, length):
                bad += 1
                if bad <= 10:
                    print("missing: round %d slot %d offset %d length %d" % (rnd, slot, off, length))
    print("%s: %d acknowledged writes checked, %d missing" % (image, n, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sub, rest = sys.argv[1], sys.argv[2:]
    sys.exit({"ops": cmd_ops, "writer": cmd_writer, "check": cmd_check}[sub](rest))
