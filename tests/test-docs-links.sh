#!/usr/bin/env bash
# Every docs/*.md path that code, scripts or docs cite exists, and every
# #anchor cited on it names a heading there (STYLE.md section 6: no dead doc
# paths, as rocksdb's ../doc/log_format.txt was). Nothing cites a document
# outside the checkout: the old architecture brief's name or the shared
# folder beside the checkout (docs/design.md carries the decisions).
source "$(dirname "$0")/functions.sh"
requires python3 git
cd "$TM_SOURCE_ROOT" || fail "no source root"
python3 - <<'PY' || fail "dead documentation references (above)"
import re, subprocess, sys, os
files = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], capture_output=True,
                       text=True, check=True).stdout.split()
files = [f for f in files if re.search(r"(\.(cc|h|sh|md|py|build|txt)|/ORIGIN)$", f) and os.path.exists(f)]
def slug(h):
    h = h.strip().lower()
    h = re.sub(r"[^\w\- ]", "", h)
    return h.replace(" ", "-")
anchors = {}
def anchors_of(doc):
    if doc not in anchors:
        anchors[doc] = {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", open(doc).read(), re.M)}
    return anchors[doc]
bad = 0
checked = 0
ref = re.compile(r"(?<![\w/.])(?:\.\./)?(docs/[\w.-]+\.md)(#[\w-]+)?|\]\(([\w.-]+\.md)(#[\w-]+)?\)")
outside = re.compile("DESIGN" + r"\.md|\.\./" + "shared")  # split: this file must not match
for f in files:
    for n, line in enumerate(open(f, errors="replace"), 1):
        if outside.search(line):
            print(f"{f}:{n}: cites a document outside the checkout: {line.strip()}"); bad += 1
        for m in ref.finditer(line):
            if m.group(1):
                doc, anchor = m.group(1), m.group(2)
            else:  # a relative markdown link inside docs/ or the top level
                doc = os.path.normpath(os.path.join(os.path.dirname(f), m.group(3)))
                anchor = m.group(4)
            checked += 1
            if not os.path.exists(doc):
                print(f"{f}:{n}: cites missing {doc}"); bad += 1
            elif anchor and anchor[1:] not in anchors_of(doc):
                print(f"{f}:{n}: cites {doc}{anchor}, which has no such heading"); bad += 1
print(f"{checked} documentation references checked")
sys.exit(1 if bad else 0)
PY
