#!/usr/bin/env bash
# The CRI tests that need a full cgroup v2 hierarchy (Tests/cri/test_kubelet_cgroups.py: the
# kubelet's cgroup_parent, every resource field, `unified`, live resize, memory stats), run by the
# Python grpcio client inside the cgroup v2 VM (hack/vm/run-in-vm.sh). The venv, the stubs and the
# busybox image are prepared on the host; the daemon's state lives on the guest's /run (tmpfs: an
# overlay upper layer cannot live on the guest's overlaid /tmp).
# Usage: hack/test-cri-vm.sh [extra unittest arguments]       Env: PODSHIM_BIN as hack/test-cri.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
. hack/cri-venv.sh
cri_venv_setup
export PODSHIM_BIN=${PODSHIM_BIN:-$repo/.build/debug/podshim}
tmp=$(mktemp -d /tmp/podshim-cri-vm.XXXXXX)
trap 'cri_remove_tmp "$tmp"' EXIT
cri_image_dir "$tmp"
cri_snapshot_bin "$tmp"
hack/vm/setup.sh --check || hack/vm/setup.sh
hack/vm/run-in-vm.sh env PYTHONPATH="$PYTHONPATH" PODSHIM_BIN="$PODSHIM_BIN" PODSHIM_IMAGE_DIR="$CRI_IMAGE_DIR" \
  PODSHIM_CRI_TMP=/run PODSHIM_REQUIRE_CGROUP_V2=1 "$CRI_PY" -m unittest -v test_kubelet_cgroups "$@"
