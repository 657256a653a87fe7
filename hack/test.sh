#!/usr/bin/env bash
# Runs every test: unit tests (no root needed) and the integration tests, which run pods on
# the real kernel and need root (they skip with a message otherwise).
# Usage: hack/test.sh [extra swift test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
hack/setup.sh
echo "== swift test"
swift build --build-tests
hack/build-pause.sh .build/debug/podshim-pause
swift test --skip-build "$@"
