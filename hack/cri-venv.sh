# Shared setup for the Python CRI client (hack/test-cri.sh, hack/bench-cri.sh). Source it.
#   cri_venv_setup   creates/reuses $repo/.build-venv, installs grpcio + grpcio-tools,
#                    regenerates the runtime.v1 stubs into $repo/.build-venv/stubs and sets
#                    CRI_PY (the venv's python), CRI_STUBS and PYTHONPATH (exported).
#   cri_image_dir D  builds the busybox image under D/images with hack/make-busybox-image.sh and
#                    sets CRI_IMAGE_DIR.
#   cri_remove_tmp D removes a temp dir without crossing mounts (refuses while anything is mounted
#                    under it).
# Nothing generated is committed (.build* is git-ignored).

CRI_GRPCIO_VERSION=${CRI_GRPCIO_VERSION:-1.85.1}

cri_repo() { (cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd); }

cri_venv_setup() {
  local repo venv
  repo=$(cri_repo)
  venv=$repo/.build-venv
  if [ ! -x "$venv/bin/python" ]; then
    echo "== creating venv $venv" >&2
    python3 -m venv "$venv"
  fi
  if ! "$venv/bin/python" -c "import grpc, grpc_tools; assert grpc.__version__ == '$CRI_GRPCIO_VERSION'" 2>/dev/null; then
    echo "== pip install grpcio==$CRI_GRPCIO_VERSION grpcio-tools==$CRI_GRPCIO_VERSION" >&2
    "$venv/bin/python" -m pip install -q --disable-pip-version-check \
      "grpcio==$CRI_GRPCIO_VERSION" "grpcio-tools==$CRI_GRPCIO_VERSION"
  fi
  CRI_STUBS=$venv/stubs
  rm -rf "$CRI_STUBS"
  mkdir -p "$CRI_STUBS"
  (cd "$repo" && "$venv/bin/python" -m grpc_tools.protoc -I Proto \
      --python_out="$CRI_STUBS" --grpc_python_out="$CRI_STUBS" Proto/runtime/v1/api.proto Proto/podshim/v1/pods.proto)
  # Flat aliases too (api_pb2 / api_pb2_grpc), for interactive use.
  cp "$CRI_STUBS/runtime/v1/api_pb2.py" "$CRI_STUBS/api_pb2.py"
  sed 's/^from runtime\.v1 import api_pb2 as/import api_pb2 as/' \
      "$CRI_STUBS/runtime/v1/api_pb2_grpc.py" > "$CRI_STUBS/api_pb2_grpc.py"
  CRI_PY=$venv/bin/python
  PYTHONPATH=$CRI_STUBS:$repo/Tests/cri${PYTHONPATH:+:$PYTHONPATH}
  export CRI_PY CRI_STUBS PYTHONPATH
}

cri_image_dir() {
  local repo
  repo=$(cri_repo)
  "$repo/hack/make-busybox-image.sh" "$1/images" >&2
  CRI_IMAGE_DIR=$1/images
  export CRI_IMAGE_DIR
}

# cri_snapshot_bin D: copies $PODSHIM_BIN and the podshim-pause beside it into D/bin and points
# PODSHIM_BIN there, so that a rebuild during the run cannot swap the binary under the tests.
# PODSHIM_CRI_NO_SNAPSHOT=1 skips this.
cri_snapshot_bin() {
  [ "${PODSHIM_CRI_NO_SNAPSHOT:-0}" = 1 ] && return 0
  local real dir
  real=$(readlink -f "$PODSHIM_BIN")
  dir=$(dirname "$real")
  mkdir -p "$1/bin"
  cp "$real" "$1/bin/podshim"
  if [ -x "$dir/podshim-pause" ]; then
    cp "$dir/podshim-pause" "$1/bin/podshim-pause"
  fi
  PODSHIM_BIN=$1/bin/podshim
  export PODSHIM_BIN
}

cri_remove_tmp() {
  local dir=$1
  [ -n "$dir" ] && [ -d "$dir" ] || return 0
  if awk -v d="$dir/" 'index($5"/", d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    echo "warning: something is still mounted under $dir; not removing it" >&2
    return 0
  fi
  rm -rf --one-file-system "$dir"
}
