# bench/lib.sh: the pieces the end-to-end scripts bench/*.sh share. Sourced, never run:
#   source "$(dirname "$0")/lib.sh"
# (bench/run.sh runs the scripts and does not source this.) Each function is the one copy of
# logic that several scripts had written out; a script keeps its own code where it differs on
# purpose (profile_tap.sh starts protect under perf, mount_vs_nbdkit.sh measures the server's
# CPU per request). Sourcing it puts bench/ on PYTHONPATH, for `from benchlib import ...`.
#
# Command line and work files
#   bench_options NAME VAR... -- "$@"
#       Parses the script's command line: BUILD first (sets $build), then `--var-name VALUE`
#       for each VAR listed (dashes in the option, underscores in the variable); a VAR ending
#       in `!` is a flag without a value, set to 1. -h/--help prints the script's header
#       comment and exits 0; an unknown option prints `NAME: unknown option X` on stderr and
#       exits 2. Defaults are the script's own: assign the variables before the call.
#   bench_setup DIR
#       Sets $tm (BUILD/tools/tidemark, absolute), $work (a fresh, empty
#       ${BENCH_WORK:-BUILD/bench-work}/DIR, absolute) and pids=(), and traps EXIT: there it
#       calls bench_cleanup_hook if the script defines one (unmounts, drill stops, ...), sends
#       every pid in pids SIGCONT then ${bench_kill_signal:-TERM}, waits for them, removes
#       $work.
#       Only the script's own children go in pids: nothing is killed by name.
#   bench_requires TOOL...      exit 1 with `NAME: TOOL is missing` unless each is on PATH
#
# Processes. Each start_* runs its daemon in the background of the calling shell, records it in
# pids and waits until it serves. Call start_* and the matching stop in the same shell, never
# in a $(...) of their own: `wait` knows only the children of the shell that started them.
#   new_volume FILE             FILE becomes a sparse, zero-filled ${size_mib} MiB file
#   start_protect DIR [ARG...]  `tidemark protect` of DIR/vol.img into DIR/journal at
#                               DIR/p.sock, export "vol", log DIR/protect.log; sets protect_pid.
#                               Ready means the socket exists: the journal may still be opening
#                               (requests wait for it); wait_for the '^protecting' line when
#                               that matters.
#   stop_protect                SIGTERM protect_pid, wait; exit 1 (log on stderr) unless it
#                               exited 0. The journal is flushed and closed after it returns.
#   start_nbdkit IMAGE SOCK [ARG...]
#                               `nbdkit --exit-with-parent -f -U SOCK ARG... file IMAGE`;
#                               sets nbdkit_pid
#   init_target                 `target init` in $work/tgt on a free loopback port ($port) and
#                               tenant "bench" with its token in $work/token
#   start_target                `target serve` of $work/tgt, log $work/target.log; waits for
#                               its ready line; sets target_pid
#   start_tap [ARG...]          `tidemark tap` of $work/vol.img (export "vol") at
#                               $work/tap.sock, shipping to the target as tenant bench, state
#                               in $work/st (control socket $work/st/control.sock), log
#                               $work/tap.log; waits for its ready line; sets tap_pid
#   start_remote [ARG...]       a fresh tenant on the target, fresh tap state, a new volume;
#                               start_target, then start_tap ARG...
#   stop_pid PID                SIGTERM PID, wait (its exit status ignored), forget it
#   stop_pids                   the same for every pid in pids; pids=()
#   wait_sock SOCK LOG [PID]    wait up to 300 s for the unix socket SOCK; on failure print
#                               LOG and exit 1 (at once when PID, given, has exited)
#   wait_for FILE PATTERN       wait up to 60 s for a line matching PATTERN (grep) in FILE;
#                               on failure print FILE and exit 1
#
# fio (its nbd engine)
#   fio_nbd SOCK OUT [ARG...]   fio --ioengine=nbd on unix socket SOCK (export ${nbd_export},
#                               default: the server's default export) with ARG..., JSON report
#                               in OUT; fio's stdout is discarded, its stderr kept
#   fio_get OUT read|write FIELD...
#                               prints the fields of one side of the first job of fio's JSON
#                               report OUT, space-separated: iops (as fio reports it, a float),
#                               iops_int (rounded), mbps (bytes per second / 1e6), io_bytes,
#                               total_ios

_bench_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_bench_name=$(basename "$0")
export PYTHONPATH=$_bench_here${PYTHONPATH:+:$PYTHONPATH}

bench_options() {
  _bench_name=$1
  shift
  local -a _bo_vars=()
  while [[ $# -gt 0 && $1 != -- ]]; do _bo_vars+=("$1"); shift; done
  [[ $# -gt 0 ]] || { echo "bench_options: no -- before the arguments" >&2; exit 2; }
  shift
  case ${1:-} in
    -h | --help) _bench_help ;;
    "" | -*) echo "usage: $0 BUILD [OPTION...] (see $0 --help)" >&2; exit 2 ;;
  esac
  build=$1
  shift
  local _bo_opt _bo_v _bo_var _bo_found
  while [[ $# -gt 0 ]]; do
    _bo_opt=$1 _bo_found=""
    case $_bo_opt in -h | --help) _bench_help ;; esac
    for _bo_v in "${_bo_vars[@]}"; do
      _bo_var=${_bo_v%!}
      if [[ $_bo_opt == "--${_bo_var//_/-}" ]]; then _bo_found=$_bo_v; break; fi
    done
    [[ -n $_bo_found ]] || { echo "$_bench_name: unknown option $_bo_opt" >&2; exit 2; }
    if [[ $_bo_found == *! ]]; then
      printf -v "${_bo_found%!}" 1
      shift
    else
      [[ $# -ge 2 ]] || { echo "$_bench_name: $_bo_opt needs a value" >&2; exit 2; }
      printf -v "$_bo_found" '%s' "$2"
      shift 2
    fi
  done
}

# The script's header: the comment lines after the #! line.
_bench_help() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
  exit 0
}

bench_setup() {
  local base=${BENCH_WORK:-$build/bench-work}
  mkdir -p "$base"
  work=$(cd "$base" && pwd -P)/$1
  tm=$(readlink -m "$build/tools/tidemark")
  rm -rf "$work"
  mkdir -p "$work"
  pids=()
  trap _bench_exit EXIT
}

_bench_exit() {
  local p
  if declare -F bench_cleanup_hook >/dev/null; then bench_cleanup_hook || true; fi
  for p in "${pids[@]}"; do
    kill -CONT "$p" 2>/dev/null || true
    kill -s "${bench_kill_signal:-TERM}" "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  rm -rf "$work"
}

bench_requires() {
  local t
  for t in "$@"; do
    command -v "$t" >/dev/null || { echo "$_bench_name: $t is missing" >&2; exit 1; }
  done
}

# shellcheck disable=SC2154  # size_mib is the script's option
new_volume() {
  rm -f "$1"
  truncate -s "${size_mib}M" "$1"
}

# True while PID runs (a zombie, exited but not yet waited for, does not count).
_bench_alive() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  [[ ${s:0:1} != Z ]]
}

_bench_forget() {
  local p kept=()
  for p in "${pids[@]}"; do [[ $p == "$1" ]] || kept+=("$p"); done
  pids=("${kept[@]}")
}

wait_sock() {
  local i
  for ((i = 0; i < 3000; i++)); do
    [[ -S $1 ]] && return 0
    if [[ -n ${3:-} ]] && ! _bench_alive "$3"; then break; fi
    sleep 0.1
  done
  echo "$_bench_name: no server on $1" >&2
  cat "$2" >&2
  exit 1
}

wait_for() {
  local i
  for ((i = 0; i < 600; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "$_bench_name: timed out waiting for '$2' in $1" >&2
  cat "$1" >&2
  exit 1
}

stop_pid() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
  _bench_forget "$1"
}

stop_pids() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}

start_protect() {
  local dir=$1
  shift
  rm -f "$dir/p.sock"
  protect_log=$dir/protect.log
  : >"$protect_log"
  "$tm" protect --volume "$dir/vol.img" --journal "$dir/journal" --listen "unix:$dir/p.sock" \
    --name vol "$@" >"$protect_log" 2>&1 &
  protect_pid=$!
  pids+=("$protect_pid")
  wait_sock "$dir/p.sock" "$protect_log" "$protect_pid"
}

stop_protect() {
  kill -TERM "$protect_pid"
  wait "$protect_pid" || { echo "$_bench_name: protect exited non-zero" >&2; cat "$protect_log" >&2; exit 1; }
  _bench_forget "$protect_pid"
}

start_nbdkit() {
  local image=$1 sock=$2
  shift 2
  rm -f "$sock"
  nbdkit --exit-with-parent -f -U "$sock" "$@" file "$image" &
  nbdkit_pid=$!
  pids+=("$nbdkit_pid")
  wait_sock "$sock" /dev/null "$nbdkit_pid"
}

init_target() {
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$tm" target init --data "$work/tgt" --listen "127.0.0.1:$port" --host 127.0.0.1 >/dev/null
  "$tm" tenant add bench --config "$work/tgt/target.toml" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])' >"$work/token"
}

# The log is emptied before the daemon starts: its redirection happens in the child, which
# under load may run after wait_for has already read the last run's ready line.
start_target() {
  : >"$work/target.log"
  "$tm" target serve --config "$work/tgt/target.toml" >"$work/target.log" 2>&1 &
  target_pid=$!
  pids+=("$target_pid")
  wait_for "$work/target.log" '^target serving'
}

start_tap() {
  rm -f "$work/tap.sock"
  : >"$work/tap.log"
  "$tm" tap --volume "$work/vol.img" --target "127.0.0.1:$port" --tenant bench \
    --token-file "$work/token" --name vol --listen "unix:$work/tap.sock" \
    --ca "$work/tgt/ca.crt" --state "$work/st" "$@" >"$work/tap.log" 2>&1 &
  tap_pid=$!
  pids+=("$tap_pid")
  wait_for "$work/tap.log" '^tapping'
  wait_sock "$work/tap.sock" "$work/tap.log" "$tap_pid"
}

start_remote() {
  rm -rf "$work/tgt/tenants" "$work/st"
  new_volume "$work/vol.img"
  start_target
  start_tap "$@"
}

fio_nbd() {
  local sock=$1 out=$2
  shift 2
  fio --name=nbd --ioengine=nbd --uri="nbd+unix:///${nbd_export:-}?socket=$sock" "$@" \
    --output-format=json --output="$out" >/dev/null
}

fio_get() {
  python3 - "$@" <<'PY'
import json, sys
path, side, *fields = sys.argv[1:]
d = json.load(open(path))["jobs"][0][side]
get = {"iops": lambda: d["iops"], "iops_int": lambda: round(d["iops"]),
       "mbps": lambda: d["bw_bytes"] / 1e6, "io_bytes": lambda: d["io_bytes"],
       "total_ios": lambda: d["total_ios"]}
print(*(get[f]() for f in fields))
PY
}
