#!/usr/bin/env bash
# Benchmark (reports, never asserts): how late SIGKILL leaves podshim after a container's grace
# period ends, and how late the container is seen dead, for 1 container and for 100 containers
# terminating at once. Every container ignores SIGTERM; the grace period is 2 s.
#
# Usage: hack/bench-termination.sh [RUNS_FOR_1] [RUNS_FOR_100]   (root; defaults 20 and 3)
#        BENCH_JSON=FILE merges the figures into FILE's "sigkill_lateness" (hack/bench does).
# Env:   PODSHIM_BIN (default .build/debug/podshim; build with -c release for production numbers),
#        PODSHIM_IMAGE_DIR (default /var/lib/podshim/images, made by hack/setup.sh).
# Lateness = actual − planned deadline on CLOCK_MONOTONIC, from `podshim run --termination-report`:
#   send: SIGKILL's pidfd_send_signal returned; exit: the reaper saw the main process dead.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "bench-termination: needs root" >&2; exit 1; }
podshim=${PODSHIM_BIN:-.build/debug/podshim}
images=${PODSHIM_IMAGE_DIR:-/var/lib/podshim/images}
runs1=${1:-20}
runs100=${2:-3}
work=$(mktemp -d /tmp/podshim-bench-term.XXXXXX)
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; wait "$pid" 2>/dev/null || true; fi
  "$podshim" cleanup --state-dir "$work/state" --root "$work/root" >/dev/null 2>&1 || true
  rm -rf --one-file-system "$work"
}
trap cleanup EXIT

pod() { # pod N → manifest on stdout
  echo "apiVersion: v1"
  echo "kind: Pod"
  echo "metadata: { name: term-bench }"
  echo "spec:"
  echo "  terminationGracePeriodSeconds: 2"
  echo "  containers:"
  for i in $(seq 1 "$1"); do
    echo "  - { name: c$i, image: busybox, command: [sh, -c, \"trap '' TERM; echo ready; while true; do sleep 1; done\"] }"
  done
}

measure() { # measure N RUNS
  local n=$1 runs=$2 run
  pod "$n" > "$work/pod-$n.yaml"
  for run in $(seq 1 "$runs"); do
    local out=$work/out-$n-$run.txt report=$work/report-$n-$run.json
    : > "$out"
    "$podshim" run "$work/pod-$n.yaml" --state-dir "$work/state" --root "$work/root" --image-dir "$images" \
      --log-dir "$work/logs" --termination-report "$report" > "$out" 2>&1 &
    pid=$!
    local waited=0 ready=0
    while [ "$ready" -lt "$n" ]; do
      sleep 0.1; waited=$((waited + 1))
      ready=$(grep -c '| ready' "$out" || true)
      if ! kill -0 "$pid" 2>/dev/null || [ $waited -gt 600 ]; then
        echo "containers did not start:" >&2; tail "$out" >&2; exit 1
      fi
    done
    kill -INT "$pid"
    wait "$pid" || true
    pid=
  done
}

echo "podshim: $podshim ($(stat -c %s "$podshim") bytes), $(nproc) CPUs, kernel $(uname -r)"
measure 1 "$runs1"
measure 100 "$runs100"
python3 - "$work" "$runs1" "$runs100" "${BENCH_JSON:-}" <<'PY'
import json, os, sys, glob
work, runs1, runs100, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
figures = {}
def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]
print("%-16s %6s %10s %10s %10s   %10s %10s %10s" % ("containers", "kills", "send p50", "p99", "max", "exit p50", "p99", "max"))
for n, runs in ((1, runs1), (100, runs100)):
    send, exit_ = [], []
    for path in glob.glob("%s/report-%d-*.json" % (work, n)):
        for k in json.load(open(path)):
            send.append((k["sentNanoseconds"] - k["plannedNanoseconds"]) / 1000)
            if k.get("exitObservedNanoseconds"):
                exit_.append((k["exitObservedNanoseconds"] - k["plannedNanoseconds"]) / 1000)
    if not send:
        print("%-16s no kills recorded" % n); continue
    print("%-16s %6d %8.0fµs %8.0fµs %8.0fµs   %8.0fµs %8.0fµs %8.0fµs" % (
        "%d × %d runs" % (n, runs), len(send), pct(send, 50), pct(send, 99), max(send),
        pct(exit_, 50), pct(exit_, 99), max(exit_)))
    figures["%d_containers" % n] = {"kills": len(send), "send_p50_us": pct(send, 50), "send_p99_us": pct(send, 99),
                                    "send_max_us": max(send), "exit_p50_us": pct(exit_, 50), "exit_p99_us": pct(exit_, 99)}
if out:
    results = json.load(open(out)) if os.path.exists(out) else {}
    results["sigkill_lateness"] = figures
    with open(out, "w") as f:
        json.dump(results, f, indent=2)
PY
