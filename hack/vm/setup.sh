#!/usr/bin/env bash
# Prepares the cgroup v2 test VM used by hack/vm/run-in-vm.sh. Idempotent.
#   - installs the missing Debian packages (qemu-system-x86 linux-image-amd64 busybox-static cpio kmod
#     xz-utils; apt-get update first when something is missing),
#   - builds the guest initramfs (busybox + virtio/9p/overlay modules + hack/vm/guest/*) and extracts
#     the uncompressed kernel ELF (booting it skips the slow in-guest decompression under TCG),
#   - caches both in $PODSHIM_VM_CACHE (default /var/cache/podshim-vm); they are rebuilt only when
#     the kernel or these scripts change.
# Prints one line on success.
# Usage: hack/vm/setup.sh           set up (or check and do nothing)
#        hack/vm/setup.sh --check   exit 0 if everything is ready, 1 otherwise; changes nothing
#        hack/vm/setup.sh --force   rebuild the cache even if it looks current
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${PODSHIM_VM_CACHE:-/var/cache/podshim-vm}
PACKAGES=(qemu-system-x86 linux-image-amd64 busybox-static cpio kmod xz-utils)
COMMANDS=(qemu-system-x86_64 cpio modprobe xz)
# Guest modules, given by name; modprobe --show-depends adds what they need, in load order.
# virtio_pci* is only used with PODSHIM_VM_MACHINE=pc, virtio_mmio only with microvm.
MODULES=(virtio_mmio virtio_pci virtio_console 9pnet_virtio 9p overlay)
GUEST_FILES=("$HERE/setup.sh" "$HERE/guest/init" "$HERE/guest/stage2.sh")

mode=${1:-}
case "$mode" in
  ""|--check|--force) ;;
  *) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac

die() { echo "hack/vm/setup.sh: $*" >&2; exit 1; }

# Newest installed generic Debian kernel (the -cloud- flavour has no 9p). Prints nothing if none.
find_kernel() {
  local k
  k=$(ls /boot/vmlinuz-*-amd64 2>/dev/null | grep -v -- -cloud- | sort -V | tail -1 || true)
  [ -n "$k" ] && [ -d "/lib/modules/${k#/boot/vmlinuz-}" ] && echo "$k"
  return 0
}

# Everything the cached artifacts depend on.
cache_key() {
  local kernel=$1
  {
    echo "kver=${kernel#/boot/vmlinuz-}"
    stat -c 'kernel=%s %Y' "$kernel"
    stat -c 'busybox=%s %Y' /bin/busybox
    sha256sum "${GUEST_FILES[@]}" | cut -d' ' -f1
  } | sha256sum | cut -d' ' -f1
}

tools_present() {
  local c
  for c in "${COMMANDS[@]}"; do command -v "$c" >/dev/null 2>&1 || return 1; done
  [ -x /bin/busybox ] && [ -n "$(find_kernel)" ]
}

is_current() {
  tools_present || return 1
  [ -r "$CACHE/vm.env" ] && [ -s "$CACHE/initramfs.cpio" ] || return 1
  [ "$(sed -n 's/^KEY=//p' "$CACHE/vm.env")" = "$(cache_key "$(find_kernel)")" ]
}

if [ "$mode" = --check ]; then
  is_current
  exit
fi

[ "$(id -u)" = 0 ] || die "must run as root (installs packages, writes $CACHE)"

# --- packages -------------------------------------------------------------------------------------
missing=()
for p in "${PACKAGES[@]}"; do
  [ "$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)" = installed ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log=$(mktemp /tmp/podshim-vm-apt.XXXXXX)
  if ! { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
    tail -30 "$log" >&2
    die "apt-get install ${missing[*]} failed (full log: $log)"
  fi
  rm -f "$log"
fi
tools_present || die "packages installed but a tool or the kernel is missing (need ${COMMANDS[*]}, /bin/busybox, /boot/vmlinuz-*-amd64 with /lib/modules)"

# --- cache ----------------------------------------------------------------------------------------
mkdir -p "$CACHE"
exec 9>"$CACHE/.lock"
flock 9   # another setup may be building; once it is done, is_current below sees its result

KERNEL=$(find_kernel)
KVER=${KERNEL#/boot/vmlinuz-}
if [ "$mode" != --force ] && is_current; then
  echo "podshim-vm: ready (kernel $KVER, cache $CACHE)"
  exit 0
fi

work=$(mktemp -d /tmp/podshim-vm-setup.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Uncompressed kernel: find the compressed payload inside the bzImage and decompress it. QEMU boots
# the ELF through its PVH entry point; if anything about that fails, fall back to the bzImage.
extract_vmlinux() {
  local img=$1 out=$2 magic tool off
  for magic in 'xz:\xFD7zXZ\x00' 'zstd:\x28\xB5\x2F\xFD' 'gzip:\x1F\x8B\x08'; do
    tool=${magic%%:*}
    command -v "$tool" >/dev/null 2>&1 || continue
    for off in $(LC_ALL=C grep -aboP "${magic#*:}" "$img" | cut -d: -f1); do
      case "$tool" in
        xz)   tail -c +$((off + 1)) "$img" | xz -dc --single-stream >"$out" 2>/dev/null || true ;;
        zstd) tail -c +$((off + 1)) "$img" | zstd -dcq >"$out" 2>/dev/null || true ;;
        gzip) tail -c +$((off + 1)) "$img" | gzip -dc >"$out" 2>/dev/null || true ;;
      esac
      [ "$(head -c 4 "$out" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 7f454c46 ] && return 0
    done
  done
  rm -f "$out"
  return 1
}
BOOT_KERNEL=$KERNEL
if extract_vmlinux "$KERNEL" "$work/vmlinux"; then
  mv "$work/vmlinux" "$CACHE/vmlinux.tmp" && mv "$CACHE/vmlinux.tmp" "$CACHE/vmlinux-$KVER"
  BOOT_KERNEL=$CACHE/vmlinux-$KVER
else
  echo "hack/vm/setup.sh: warning: could not extract an ELF vmlinux from $KERNEL; booting the bzImage (slower)" >&2
fi
# drop artifacts of other kernels
for f in "$CACHE"/vmlinux-*; do
  [ -e "$f" ] && [ "$f" != "$CACHE/vmlinux-$KVER" ] && rm -f "$f"
done

# Initramfs: static busybox, the modules (decompressed: busybox insmod cannot read .xz), the guest scripts.
root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,mods,host,newroot,rw,vm}
cp /bin/busybox "$root/bin/busybox"
: >"$root/mods/order"
while read -r kind path _; do
  [ "$kind" = insmod ] || continue          # "builtin NAME" lines need nothing
  name=$(basename "$path"); name=${name%%.ko*}
  grep -qx "$name" "$root/mods/order" && continue
  case "$path" in
    *.ko)     cp "$path" "$root/mods/$name.ko" ;;
    *.ko.xz)  xz -dc "$path" >"$root/mods/$name.ko" ;;
    *.ko.zst) zstd -dcq "$path" >"$root/mods/$name.ko" ;;
    *.ko.gz)  gzip -dc "$path" >"$root/mods/$name.ko" ;;
    *) die "unknown module format: $path" ;;
  esac
  echo "$name" >>"$root/mods/order"
done < <(for m in "${MODULES[@]}"; do modprobe -S "$KVER" --show-depends "$m" || die "module $m not found for $KVER"; done)
for m in 9p overlay virtio_console; do
  grep -qx "$m" "$root/mods/order" || modprobe -S "$KVER" --show-depends "$m" | grep -q "^builtin $m" \
    || die "module $m missing from the initramfs"
done
install -m 755 "$HERE/guest/init" "$root/init"
install -m 644 "$HERE/guest/stage2.sh" "$root/vm/stage2.sh"
(cd "$root" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --quiet) >"$CACHE/initramfs.cpio.tmp"
mv "$CACHE/initramfs.cpio.tmp" "$CACHE/initramfs.cpio"

{
  printf 'KEY=%s\n' "$(cache_key "$KERNEL")"
  printf 'KVER=%s\n' "$KVER"
  printf 'BOOT_KERNEL=%s\n' "$BOOT_KERNEL"
} >"$CACHE/vm.env.tmp"
mv "$CACHE/vm.env.tmp" "$CACHE/vm.env"
echo "podshim-vm: ready (kernel $KVER, $( [ "$BOOT_KERNEL" = "$KERNEL" ] && echo bzImage || echo 'uncompressed ELF'), built cache $CACHE)"
