#!/usr/bin/env bash
# libFuzzer over podshim's parsers of untrusted input: the manifest parser, quantities, seccomp
# profiles, image references, tar member names, layer blobs unpacked in process, the CRI request
# translation, SPDY frames from a streaming client, CNI configuration files, and what a registry
# sends (challenges, manifests, indexes, token and error bodies).
# Usage: hack/fuzz.sh [SECONDS per target, default 60] [TARGET ...]
#        hack/fuzz.sh 600          # the ≥ 10 min per target run
# Builds Tests/Fuzz (PODSHIM_FUZZ=1: podshim's parsing modules instrumented), runs two
# targets at a time from the committed seeds in Tests/Fuzz/corpus (new inputs go to a temp dir),
# and fails on any crash, trap, leak or hang, printing the input that caused it. A finding
# becomes a regression test and its input a seed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(manifest quantity seccomp image-reference tar-member cri-pod cri-container spdy cni-config layer registry)
echo "== building podshim-fuzz (podshim's parsers with -sanitize=fuzzer,address)"
# The same .build as everything else: only podshim's own modules compile again (instrumented).
PODSHIM_FUZZ=1 swift build --product podshim-fuzz 2>&1 | grep -vE "ld.gold: warning: Cannot export local symbol" | tail -3
bin=$(PODSHIM_FUZZ=1 swift build --show-bin-path)/podshim-fuzz
work=$(mktemp -d /tmp/podshim-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT

fuzz() {
  local target=$1
  mkdir -p "$work/$target/new" "$work/$target/artifacts"
  if PODSHIM_FUZZ_TARGET=$target ASAN_OPTIONS=detect_leaks=0 "$bin" -max_total_time="$seconds" -timeout=10 \
       -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 -artifact_prefix="$work/$target/artifacts/" \
       "$work/$target/new" "Tests/Fuzz/corpus/$target" > "$work/$target/log" 2>&1; then
    runs=$(grep -m1 '^stat::number_of_executed_units' "$work/$target/log" | awk '{print $2}')
    echo "fuzz $target: ${seconds}s, ${runs:-?} runs, no finding"
  else
    echo "fuzz $target: FINDING"
    tail -40 "$work/$target/log"
    for input in "$work/$target/artifacts"/*; do
      [ -e "$input" ] || continue
      echo "-- input $(basename "$input") (base64):"
      base64 -w0 "$input"; echo
    done
    return 1
  fi
}

status=0
pids=()
for target in "${targets[@]}"; do
  fuzz "$target" & pids+=($!)
  if [ ${#pids[@]} -ge 2 ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
exit $status
