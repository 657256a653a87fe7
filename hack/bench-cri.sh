#!/usr/bin/env bash
# Benchmark of podshim's CRI gRPC server (not a test): Version / ContainerStatus round-trip
# latency over one channel and pods started per second, sequential and concurrent.
# Usage: hack/bench-cri.sh [-n ROUND_TRIPS] [--pods N] [--workers W]   (root; PODSHIM_BIN overrides
# the binary, default .build/debug/podshim — build with -c release for meaningful numbers)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
if [ "$(id -u)" != 0 ]; then
  echo "bench-cri: skipped, needs root"
  exit 0
fi
. hack/cri-venv.sh
cri_venv_setup
export PODSHIM_BIN=${PODSHIM_BIN:-$repo/.build/debug/podshim}
tmp=$(mktemp -d /tmp/podshim-bench-img.XXXXXX)
trap 'cri_remove_tmp "$tmp"' EXIT
cri_image_dir "$tmp"
cri_snapshot_bin "$tmp"
export PODSHIM_IMAGE_DIR=$CRI_IMAGE_DIR
"$CRI_PY" hack/bench_cri.py "$@"
