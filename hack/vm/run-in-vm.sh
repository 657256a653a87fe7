#!/usr/bin/env bash
# hack/vm/run-in-vm.sh CMD [ARGS...]
#   Runs CMD as root in a throw-away QEMU VM (Debian kernel, TCG) that has a full cgroup v2 hierarchy
#   at /sys/fs/cgroup (cpu, memory, pids, ... available; the root's cgroup.subtree_control is left
#   empty). The guest's root is the host's / shared read-only over 9p under a tmpfs overlay: every host
#   path is visible at the same place, guest writes are discarded. /run, /var/tmp, /dev/shm are fresh
#   tmpfs; /tmp is the host's /tmp through the overlay. CMD runs in the current directory with
#   stdin=/dev/null, HOME=/root and PATH=usual dirs + /opt/swift/usr/bin; pass variables with
#   `env K=V CMD`. Its stdout and stderr are streamed to ours (separately; relative order between the
#   two is not kept) and we exit with its exit status.
#   Exit 124: timed out (the VM is killed); 125: the VM could not run CMD (console tail printed).
# Environment:
#   PODSHIM_VM_TIMEOUT  seconds before the VM is killed (default 600)
#   PODSHIM_VM_MEMORY   guest RAM in MiB (default 2048)     PODSHIM_VM_CPUS  vCPUs (default 2)
#   PODSHIM_VM_CACHE    cache of hack/vm/setup.sh (default /var/cache/podshim-vm)
#   PODSHIM_VM_MACHINE  microvm (default) | pc              PODSHIM_VM_DEBUG=1  print the console log
set -uo pipefail

if [ $# -eq 0 ] || [ "$1" = --help ] || [ "$1" = -h ]; then
  sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${PODSHIM_VM_CACHE:-/var/cache/podshim-vm}
export PODSHIM_VM_CACHE=$CACHE
TIMEOUT=${PODSHIM_VM_TIMEOUT:-600}
MEMORY=${PODSHIM_VM_MEMORY:-2048}
CPUS=${PODSHIM_VM_CPUS:-2}
MACHINE=${PODSHIM_VM_MACHINE:-microvm}
DEBUG=${PODSHIM_VM_DEBUG:-0}
fail() { echo "run-in-vm: $*" >&2; exit 125; }

[[ $TIMEOUT =~ ^[0-9]+$ ]] || fail "PODSHIM_VM_TIMEOUT must be a number of seconds"
[[ $MEMORY =~ ^[0-9]+$ ]] || fail "PODSHIM_VM_MEMORY must be a number of MiB"
[[ $CPUS =~ ^[0-9]+$ ]] || fail "PODSHIM_VM_CPUS must be a number"
[ "$(id -u)" = 0 ] || fail "must run as root"

if ! "$HERE/setup.sh" --check; then
  "$HERE/setup.sh" >&2 || fail "hack/vm/setup.sh failed"
fi
# KVER, BOOT_KERNEL
. "$CACHE/vm.env" || fail "cannot read $CACHE/vm.env"

tmp=$(mktemp -d /tmp/podshim-vm.XXXXXX) || fail "mktemp failed"
qpid="" catout="" caterr=""
cleanup() {
  trap - EXIT INT TERM HUP
  if [ -n "$qpid" ] && kill -0 "$qpid" 2>/dev/null; then
    kill -TERM "$qpid" 2>/dev/null           # timeout(1) passes it on to QEMU
    for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$qpid" 2>/dev/null || break; sleep 0.5; done
    pkill -KILL -P "$qpid" 2>/dev/null; kill -KILL "$qpid" 2>/dev/null
    wait "$qpid" 2>/dev/null
  fi
  for p in $catout $caterr; do kill "$p" 2>/dev/null; done
  rm -rf "$tmp"
}
on_signal() { echo "run-in-vm: interrupted ($1), stopping the VM" >&2; cleanup; exit $((128 + $2)); }
trap cleanup EXIT
trap 'on_signal INT 2' INT
trap 'on_signal TERM 15' TERM
trap 'on_signal HUP 1' HUP

# Per-run part of the initramfs: the command and its environment.
mkdir -p "$tmp/root/vm"
printf 'VM_EPOCH=%s\n' "$(date +%s)" >"$tmp/root/vm/config"
{
  echo 'export HOME=/root LANG=C.UTF-8 USER=root LOGNAME=root SHELL=/bin/bash'
  echo 'export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/opt/swift/usr/bin'
  printf 'cd -- %q || { echo "run-in-vm: directory %q does not exist in the guest" >&2; exit 125; }\n' "$PWD" "$PWD"
  printf 'exec'; printf ' %q' "$@"; echo
} >"$tmp/root/vm/cmd.sh"
(cd "$tmp/root" && find . -print0 | cpio --null -o -H newc --quiet) >"$tmp/run.cpio" || fail "cpio failed"
cat "$CACHE/initramfs.cpio" "$tmp/run.cpio" >"$tmp/initrd" || fail "cannot write $tmp/initrd"

case "$MACHINE" in
  microvm)
    VDEV=device
    # Under TCG, microvm has nothing to calibrate the TSC against: without its frequency the guest
    # hangs early in boot. The guest TSC runs at the host's rate.
    KHZ=$(awk -F: '/^cpu MHz/ { printf "%d", $2 * 1000; exit }' /proc/cpuinfo)
    EXTRA_APPEND="tsc_early_khz=${KHZ:-2000000}" ;;
  pc) VDEV=pci EXTRA_APPEND="" ;;
  *) fail "PODSHIM_VM_MACHINE must be microvm or pc" ;;
esac
LOGLEVEL=quiet
[ "$DEBUG" = 1 ] && LOGLEVEL=loglevel=7

# stdout/stderr: virtio-serial ports -> FIFOs -> cat -> our fds (streams while CMD runs).
: >"$tmp/ret"
: >"$tmp/console"
mkfifo "$tmp/out" "$tmp/err" || fail "mkfifo failed"
cat "$tmp/out" & catout=$!
cat "$tmp/err" >&2 & caterr=$!

# timeout(1) --foreground keeps QEMU in our process group (a CI killing the group ends it too);
# --pdeathsig ends QEMU if timeout dies, and timeout if this script dies. Our traps cover the rest.
setpriv --pdeathsig TERM timeout --foreground -k 10 "$TIMEOUT" \
  setpriv --pdeathsig KILL qemu-system-x86_64 \
  -name podshim-vm -nodefaults -no-user-config -nographic -no-reboot \
  -M "$MACHINE" -accel tcg,thread=multi -cpu max -smp "$CPUS" -m "${MEMORY}M" \
  -kernel "$BOOT_KERNEL" -initrd "$tmp/initrd" \
  -append "console=ttyS0 $LOGLEVEL $EXTRA_APPEND panic=-1 rdinit=/init cgroup_no_v1=all mitigations=off tsc=reliable random.trust_cpu=on cryptomgr.notests" \
  -serial "file:$tmp/console" -monitor none \
  -fsdev local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap \
  -device "virtio-9p-$VDEV,fsdev=hostroot,mount_tag=hostroot" \
  -device "virtio-serial-$VDEV,id=vser" \
  -chardev "file,id=out,path=$tmp/out" -device virtserialport,bus=vser.0,chardev=out,name=vm.out \
  -chardev "file,id=err,path=$tmp/err" -device virtserialport,bus=vser.0,chardev=err,name=vm.err \
  -chardev "file,id=ret,path=$tmp/ret" -device virtserialport,bus=vser.0,chardev=ret,name=vm.ret \
  </dev/null >"$tmp/qemu.log" 2>&1 &
qpid=$!
wait "$qpid"
qrc=$?
qpid=""
# If QEMU died before opening the FIFOs the cats still wait for a writer: open and close one each.
exec 5<>"$tmp/out" 6<>"$tmp/err"
exec 5>&- 6>&-
wait "$catout" "$caterr"
catout="" caterr=""

[ "$DEBUG" = 1 ] && { echo "--- podshim-vm console:" >&2; cat "$tmp/console" >&2; }
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
  echo "run-in-vm: TIMEOUT: the command did not finish within ${TIMEOUT}s (PODSHIM_VM_TIMEOUT); the VM was killed" >&2
  exit 124
fi
rc=$(tr -dc '0-9' <"$tmp/ret")
if [ -z "$rc" ]; then
  echo "run-in-vm: the VM stopped (qemu exit status $qrc) without reporting the command's status" >&2
  [ -s "$tmp/qemu.log" ] && { echo "--- qemu:" >&2; tail -20 "$tmp/qemu.log" >&2; }
  echo "--- console tail:" >&2; tail -40 "$tmp/console" >&2
  exit 125
fi
exit "$rc"
