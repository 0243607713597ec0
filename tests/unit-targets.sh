#!/usr/bin/env bash
# Prints the ninja targets that BUILD's unit suite runs: the test executables and
# what they depend on (the ASan build makes only these, not the tidemark binary,
# the target server nor the benchmarks, which only the integration suite runs).
#   usage: tests/unit-targets.sh BUILD
set -euo pipefail
build=${1:?usage: $0 BUILD}
python3 - "$build" <<'PY'
import json, os, subprocess, sys

build = os.path.abspath(sys.argv[1])
def introspect(what):
    out = subprocess.run(["meson", "introspect", "--" + what, build], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)

files = {t["id"]: t["filename"] for t in introspect("targets")}
want = set()
for t in introspect("tests"):
    if not any(s.endswith(":unit") for s in t["suite"]):
        continue
    for dep in t.get("depends", []):
        want.update(files.get(dep, []))
    if t["cmd"][0].startswith(build + "/"):
        want.add(t["cmd"][0])
if not want:
    sys.exit(f"{build}: no unit tests found")
for f in sorted(want):
    print(os.path.relpath(f, build))
PY
