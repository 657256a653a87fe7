#!/usr/bin/env bash
# Builds the pod's pause process: a freestanding static C program (no libc, raw syscalls).
# Usage: hack/build-pause.sh [OUTPUT]   (default: .build/podshim-pause next to the podshim binary)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-.build/debug/podshim-pause}
mkdir -p "$(dirname "$out")"
cc -static -nostdlib -ffreestanding -fno-stack-protector -fno-asynchronous-unwind-tables \
   -fno-pie -no-pie -Os -s -Wall -Wextra -Werror -o "$out.tmp" CShims/pause/pause.c
mv "$out.tmp" "$out"
echo "built $out ($(stat -c %s "$out") bytes)"
