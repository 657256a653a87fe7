#!/usr/bin/env bash
# Runs every test suite and reports every failure (a failing suite does not stop the next one):
#  1. unit tests (no root needed) and integration tests that run pods on this kernel (root);
#  2. the CRI API tests: `podshim serve` driven by an independent client, Python's grpcio with
#     stubs generated from Proto/ (hack/test-cri.sh), a kubelet's call sequence among them;
#  3. the cgroup v2 enforcement tests inside a VM with a full cgroup v2 hierarchy
#     (hack/vm/run-in-vm.sh), because hosts like ours are hybrid (cgroup v1 owns cpu/memory):
#     podshim run's limits, and the kubelet's cgroup tree through the CRI (hack/test-cri-vm.sh);
#  4. libFuzzer over the parsers of untrusted input (hack/fuzz.sh; PODSHIM_FUZZ_SECONDS per target).
# Usage: hack/test.sh [extra swift test arguments]      PODSHIM_SKIP_VM=1 skips step 3.
# Exit status: 0 when every suite passed, 1 otherwise (the summary at the end names the failures).
set -uo pipefail
cd "$(dirname "$0")/.."

failed=()
summary=()
# step NAME COMMAND…: runs COMMAND, records its outcome and duration, never stops the script.
step() {
  local name=$1
  shift
  local start status
  start=$(date +%s)
  echo "== $name"
  "$@"
  status=$?
  local took=$(( $(date +%s) - start ))
  if [ "$status" = 0 ]; then
    summary+=("ok     $name (${took} s)")
  else
    summary+=("FAILED $name (exit $status, ${took} s)")
    failed+=("$name")
  fi
  return "$status"
}

finish() {
  echo
  echo "== summary"
  printf '  %s\n' "${summary[@]}"
  if [ ${#failed[@]} -gt 0 ]; then
    echo "== ${#failed[@]} suite(s) failed: ${failed[*]}"
    exit 1
  fi
  echo "== every suite passed"
  exit 0
}

# Without a build nothing else can run: that one failure ends the run.
if ! step "setup (packages, build, pause, busybox image)" hack/setup.sh \
  || ! step "build tests" swift build --build-tests \
  || ! step "pause binary for the tests" hack/build-pause.sh .build/debug/podshim-pause; then
  finish
fi

# swift test (XCTest and swift-testing) leaves a few TemporaryDirectory.* behind in $TMPDIR per run:
# give it a directory of its own, removed afterwards.
test_tmp=$(mktemp -d /tmp/podshim-swift-test.XXXXXX)
step "swift test (unit and root integration tests)" env TMPDIR="$test_tmp" swift test --skip-build "$@"
rm -rf "$test_tmp"
step "CRI API tests (podshim serve, Python grpcio client; chaos: 200 daemon kills)" hack/test-cri.sh
step "fuzzing (libFuzzer, ${PODSHIM_FUZZ_SECONDS:-60} s per target)" hack/fuzz.sh "${PODSHIM_FUZZ_SECONDS:-60}"

if [ "${PODSHIM_SKIP_VM:-0}" = 1 ]; then
  summary+=("skipped cgroup v2 enforcement in a VM (PODSHIM_SKIP_VM=1)")
else
  if step "VM setup" hack/vm/setup.sh; then
    step "cgroup v2 enforcement tests in a VM" hack/vm/run-in-vm.sh env PODSHIM_TEST_DIR=/run/podshim-it \
      PODSHIM_REQUIRE_CGROUP_V2=1 .build/debug/podshimPackageTests.xctest PodshimIntegrationTests.CgroupEnforcementTests
    step "CRI cgroup tests in a VM (cgroup_parent, resources, unified, live resize)" hack/test-cri-vm.sh
  fi
fi
finish
