#!/usr/bin/env python3
"""Cuts the files of a directory back to what a power loss would leave.

  powercut.py snapshot DIR OUT       sizes of DIR's files now (call after `sync`)
  powercut.py cut DIR SNAPSHOT LOG SEED

`cut` reads the sync log that tests/lib/powercut.c wrote while a process worked in DIR and
was killed: each file keeps what was durable (its size at its last sync, or in the
snapshot when it was not synced since), plus a random part of what it wrote after (the
torn last write: some of the page cache reached the disk); a file that was created and
never synced is removed. Prints one line per file it changed.
"""
import json
import os
import random
import sys


def files(d):
    out = {}
    for root, _, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            if os.path.isfile(p) and not os.path.islink(p):
                out[os.path.realpath(p)] = os.path.getsize(p)
    return out


def main(argv):
    if argv[0] == "snapshot":
        with open(argv[2], "w") as f:
            json.dump(files(argv[1]), f)
        return 0
    d, snap, log, seed = argv[1], argv[2], argv[3], int(argv[4])
    durable = json.load(open(snap))
    with open(log) as f:
        for line in f:
            parts = line.split()
            if parts[0] == "sync":
                durable[parts[1]] = int(parts[2])
            elif parts[0] == "rename" and parts[1] in durable:
                durable[parts[2]] = durable.pop(parts[1])
    rnd = random.Random(seed)
    for p, size in sorted(files(d).items()):
        keep = durable.get(p)
        if keep is None:
            os.unlink(p)
            print("removed %s (never synced)" % p)
            continue
        if size > keep:
            torn = rnd.randrange(0, min(size - keep, 64 << 10) + 1)
            os.truncate(p, keep + torn)
            print("cut %s from %d to %d (synced %d, %d torn bytes kept)" %
                  (p, size, keep + torn, keep, torn))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
