#!/usr/bin/env bash
# Builds a busybox root filesystem from Debian's busybox-static into podshim's image store.
# Usage: hack/make-busybox-image.sh [IMAGE_DIR]   (default /var/lib/podshim/images)
# Result: IMAGE_DIR/busybox/rootfs, usable as `image: busybox`.
set -euo pipefail
image_dir=${1:-/var/lib/podshim/images}
busybox=/bin/busybox
if ! "$busybox" --list >/dev/null 2>&1; then
  echo "no busybox at $busybox: apt-get install busybox-static" >&2
  exit 1
fi
if ldd "$busybox" >/dev/null 2>&1; then
  echo "$busybox is dynamically linked: apt-get install busybox-static" >&2
  exit 1
fi
target=$image_dir/busybox
staging=$(mktemp -d "$image_dir.busybox.XXXXXX" 2>/dev/null || { mkdir -p "$image_dir"; mktemp -d "$image_dir/.busybox.XXXXXX"; })
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
echo "podshim busybox image: it works" > "$root/var/www/index.html"
mkdir -p "$image_dir"
rm -rf "$target"
mv "$staging" "$target"
trap - EXIT
echo "built $target/rootfs ($("$busybox" --list | wc -l) applets)"
