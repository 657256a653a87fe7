#!/usr/bin/env bash
# Runs every test:
#  1. unit tests (no root needed) and integration tests that run pods on this kernel (root);
#  2. the CRI API tests: `podshim serve` driven by an independent client, Python's grpcio with
#     stubs generated from Proto/ (hack/test-cri.sh);
#  3. the cgroup v2 enforcement tests inside a VM with a full cgroup v2 hierarchy
#     (hack/vm/run-in-vm.sh), because hosts like ours are hybrid (cgroup v1 owns cpu/memory).
# Usage: hack/test.sh [extra swift test arguments]      PODSHIM_SKIP_VM=1 skips step 3.
set -euo pipefail
cd "$(dirname "$0")/.."
hack/setup.sh
echo "== swift test"
swift build --build-tests
hack/build-pause.sh .build/debug/podshim-pause
swift test --skip-build "$@"

echo "== CRI API tests (podshim serve, Python grpcio client)"
start=$(date +%s)
hack/test-cri.sh
echo "== CRI suite: $(( $(date +%s) - start )) s"

if [ "${PODSHIM_SKIP_VM:-0}" = 1 ]; then
  echo "== cgroup v2 enforcement in a VM: skipped (PODSHIM_SKIP_VM=1)"
  exit 0
fi
echo "== cgroup v2 enforcement tests in a VM"
hack/vm/setup.sh
start=$(date +%s)
hack/vm/run-in-vm.sh env PODSHIM_TEST_DIR=/run/podshim-it PODSHIM_REQUIRE_CGROUP_V2=1 \
  .build/debug/podshimPackageTests.xctest PodshimIntegrationTests.CgroupEnforcementTests
echo "== VM suite: $(( $(date +%s) - start )) s"
