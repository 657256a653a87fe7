#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine (with Swift at /opt/swift) to build and run podshim:
# Debian packages, the Swift build, the pause binary and the busybox image.
# Usage: hack/setup.sh [--release]
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=/opt/swift/usr/bin:$PATH

# containernetworking-plugins and iptables: pod networking through CNI (bridge, host-local, portmap).
# docker-registry, skopeo, apache2-utils (htpasswd), openssl, zstd: the offline test registry of the pull tests.
packages=(libseccomp-dev libcap-dev busybox-static gcc libc6-dev containernetworking-plugins iptables zlib1g-dev libzstd-dev
          docker-registry skopeo apache2-utils openssl zstd)
missing=()
for package in "${packages[@]}"; do
  dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

configuration=debug
[ "${1:-}" = --release ] && configuration=release
echo "== swift build -c $configuration"
swift build -c "$configuration"
hack/build-pause.sh ".build/$configuration/podshim-pause"
if [ ! -x /var/lib/podshim/images/busybox/rootfs/bin/busybox ]; then
  hack/make-busybox-image.sh /var/lib/podshim/images
fi
echo "== ready: .build/$configuration/podshim run examples/web.yaml"
