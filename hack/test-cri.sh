#!/usr/bin/env bash
# Integration tests of podshim's CRI gRPC API with an independent Python client (grpcio).
# Usage: hack/test-cri.sh [extra `python -m unittest discover` arguments]
#        e.g. hack/test-cri.sh -k test_restart
# Env:   PODSHIM_BIN (default .build/debug/podshim; copied to a temp dir with its podshim-pause so a
#        rebuild mid-run cannot swap it; PODSHIM_CRI_NO_SNAPSHOT=1 uses it in place),
#        PODSHIM_CRI_SCALE_PODS (default 50). Every daemon's stderr is kept in .build-venv/cri-logs.
# Needs root (skips otherwise, exit 0) and busybox-static (hack/setup.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
if [ "$(id -u)" != 0 ]; then
  echo "test-cri: skipped, needs root (run as root to start podshim serve)"
  exit 0
fi
. hack/cri-venv.sh
cri_venv_setup

export PODSHIM_BIN=${PODSHIM_BIN:-$repo/.build/debug/podshim}
if [ ! -x "$PODSHIM_BIN" ]; then
  echo "test-cri: no podshim binary at $PODSHIM_BIN (swift build first)" >&2
  exit 1
fi
tmp=$(mktemp -d /tmp/podshim-cri-img.XXXXXX)
trap 'cri_remove_tmp "$tmp"' EXIT
cri_image_dir "$tmp"
cri_snapshot_bin "$tmp"
export PODSHIM_IMAGE_DIR=$CRI_IMAGE_DIR
export PODSHIM_CRI_LOG_DIR=$repo/.build-venv/cri-logs
rm -rf "$PODSHIM_CRI_LOG_DIR"
mkdir -p "$PODSHIM_CRI_LOG_DIR"

status=0
"$CRI_PY" -m unittest discover -s Tests/cri -p 'test_*.py' -v "$@" || status=$?
echo "test-cri: daemon logs in $PODSHIM_CRI_LOG_DIR"
exit $status
