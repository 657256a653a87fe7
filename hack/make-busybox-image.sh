#!/usr/bin/env bash
# Builds a busybox root filesystem from Debian's busybox-static and imports it into podshim's image
# store as busybox:latest, default command `sh` (as the registry's busybox image has it).
# Usage: hack/make-busybox-image.sh [IMAGE_DIR]   (default /var/lib/podshim/images)
# Env:   PODSHIM_BIN, the podshim that imports it (default: .build/debug/podshim, then release).
# Result: IMAGE_DIR/busybox/rootfs, usable as `image: busybox`.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
image_dir=${1:-/var/lib/podshim/images}
podshim=${PODSHIM_BIN:-}
for candidate in "$repo/.build/debug/podshim" "$repo/.build/release/podshim"; do
  [ -n "$podshim" ] && break
  [ -x "$candidate" ] && podshim=$candidate
done
[ -n "$podshim" ] && [ -x "$podshim" ] || { echo "no podshim binary to import with: swift build first" >&2; exit 1; }
busybox=/bin/busybox
if ! "$busybox" --list >/dev/null 2>&1; then
  echo "no busybox at $busybox: apt-get install busybox-static" >&2
  exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
  echo "$busybox is dynamically linked: apt-get install busybox-static" >&2
  exit 1
fi
staging=$(mktemp -d /tmp/podshim-busybox.XXXXXX)
trap 'rm -rf "$staging"' EXIT
root=$staging/rootfs
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,root,var/tmp,var/www,home,run}
chmod 1777 "$root/tmp" "$root/var/tmp"
chmod 700 "$root/root"
cp "$busybox" "$root/bin/busybox"
# One hard link per applet, in the directory busybox would install it to.
"$busybox" --list-full | while read -r applet; do
  [ "$applet" = bin/busybox ] && continue
  mkdir -p "$root/$(dirname "$applet")"
  ln -f "$root/bin/busybox" "$root/$applet"
done
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
GROUP
# Debian's busybox-static has no pgrep applet; the CRI conformance tests (critest) use one.
cat > "$root/usr/bin/pgrep" <<'PGREP'
#!/bin/sh
# pgrep PATTERN: print the PIDs whose command name matches PATTERN (a basic regular expression).
[ $# -eq 1 ] || { echo "usage: pgrep PATTERN" >&2; exit 2; }
status=1
for dir in /proc/[0-9]*; do
  pid=${dir#/proc/}
  [ "$pid" = $$ ] && continue
  comm=$(cat "$dir/comm" 2>/dev/null) || continue
  if echo "$comm" | grep -q -- "$1"; then echo "$pid"; status=0; fi
done
exit $status
PGREP
chmod 755 "$root/usr/bin/pgrep"
echo "podshim busybox image: it works" > "$root/var/www/index.html"
mkdir -p "$image_dir"
"$podshim" images import --image-dir "$image_dir" --cmd sh "$root" busybox:latest >/dev/null
echo "built $image_dir/busybox/rootfs ($("$busybox" --list | wc -l) applets), imported as busybox:latest"
