#!/usr/bin/env bash
# Installs podshim as a systemd service next to a kubelet:
#   <prefix>/bin/podshim, <prefix>/libexec/podshim/podshim-pause,
#   /etc/podshim/podshim.conf (only if absent), /etc/systemd/system/podshim.service,
# then enables and starts podshim.service when systemd is running.
#
# Usage: hack/install.sh [--prefix DIR] [--root DIR] [--no-start] [--no-build [--build-dir DIR]]
#   --prefix DIR     where the binaries go (default /usr/local)
#   --root DIR       install everything under DIR instead of / (a staging root; implies --no-start)
#   --no-start       install only; do not enable or start the service
#   --no-build       do not run hack/setup.sh --release; take the binaries already built
#   --build-dir DIR  where the built podshim and podshim-pause are (default .build/release)
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=/usr/local
root=/
start=1
build=1
build_dir=.build/release

usage() { sed -n '2,13s/^# \{0,1\}//p' "$0"; }
die() { echo "install.sh: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) [ $# -ge 2 ] || die "--prefix needs a directory"; prefix=$2; shift 2 ;;
    --prefix=*) prefix=${1#*=}; shift ;;
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
    --root=*) root=${1#*=}; shift ;;
    --build-dir) [ $# -ge 2 ] || die "--build-dir needs a directory"; build_dir=$2; shift 2 ;;
    --build-dir=*) build_dir=${1#*=}; shift ;;
    --no-start) start=0; shift ;;
    --no-build) build=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
case "$prefix" in /*) ;; *) die "--prefix must be an absolute path: $prefix" ;; esac
prefix=${prefix%/}
[ -n "$prefix" ] || die "--prefix must not be /"
root=$(realpath -m "$root")
if [ "$root" = / ]; then
  dest=
  [ "$(id -u)" -eq 0 ] || die "run as root to install into / (or stage the files with --root DIR)"
else
  dest=$root
  start=0
fi

bin=$prefix/bin/podshim
pause=$prefix/libexec/podshim/podshim-pause
config=/etc/podshim/podshim.conf
unit=/etc/systemd/system/podshim.service

if [ "$build" = 1 ]; then
  hack/setup.sh --release
fi
for built in "$build_dir/podshim" "$build_dir/podshim-pause"; do
  [ -x "$built" ] || die "$built is missing (build it with hack/setup.sh --release)"
done

# Copy next to the target, then rename: a running podshim keeps its old binary intact.
put() { # put SOURCE TARGET MODE
  install -d -m 0755 "$(dirname "$2")"
  install -m "$3" "$1" "$2.new"
  mv -f "$2.new" "$2"
  echo "== installed $2"
}
put "$build_dir/podshim" "$dest$bin" 0755
put "$build_dir/podshim-pause" "$dest$pause" 0755

if [ -e "$dest$config" ]; then
  echo "== kept $dest$config (already present)"
else
  # podshim finds the pause binary under /usr/local/libexec by itself; another prefix is named.
  pause_line="#pause-binary = $pause"
  [ "$prefix" = /usr/local ] || pause_line="pause-binary = $pause"
  install -d -m 0755 "$dest/etc/podshim"
  cat >"$dest$config.new" <<EOF
# Settings of \`podshim serve\` (podshim serve --help). An option given on the command line
# wins over this file. Format: \`key = value\` lines; \`#\` starts a comment.
# Commented-out lines show the built-in defaults, or an example where there is no default.

# The CRI socket; the kubelet's containerRuntimeEndpoint is unix://<socket>.
#socket = /run/podshim/podshim.sock
# A group (name or gid) whose members may use the socket besides root. Default: root only.
#socket-group = kube

# Volatile state (pod records, /dev/shm); persistent data (container layers, emptyDir volumes);
# the image store (podshim images import); container logs of manifest pods.
#state-dir = /run/podshim
#root = /var/lib/podshim
#image-dir = /var/lib/podshim/images
#log-dir = /var/log/podshim/pods
$pause_line

# How the kubelet names cgroup_parent: cgroupfs or systemd. Must match the kubelet's cgroupDriver.
#cgroup-driver = cgroupfs
# The cgroup v2 directory under which podshim/pod-<uid>/ is created. Default: the cgroup2 mount
# point (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host).
#cgroup-root = /sys/fs/cgroup
# true: refuse to start unless cgroup v2 can enforce cpu, memory and pids limits.
#require-cgroups = false
# pids.max of every pod cgroup, like the kubelet's podPidsLimit. Default: no limit.
#pod-pids-limit = 4096

# Pod networking: cni (the first configuration in cni-conf-dir) or none (loopback only).
#network = cni
#cni-conf-dir = /etc/cni/net.d
#cni-bin-dir = /opt/cni/bin:/usr/lib/cni
# Seconds a CNI plugin call may take.
#cni-timeout = 60

# The streaming server (Exec, PortForward URLs): address, port (0 = any free port), idle timeout.
#stream-address = 127.0.0.1
#stream-port = 0
#stream-idle-timeout = 14400
EOF
  chmod 0644 "$dest$config.new"
  mv -f "$dest$config.new" "$dest$config"
  echo "== wrote $dest$config"
fi

# A default pod network (Debian's containernetworking-plugins), unless the node has one already:
# bridge psh0 with 10.88.0.0/16, hostPorts through portmap. Pods then reach each other by IP.
cni_dir=$dest/etc/cni/net.d
if ls "$cni_dir"/*.conf "$cni_dir"/*.conflist "$cni_dir"/*.json >/dev/null 2>&1; then
  echo "== kept the CNI configuration in $cni_dir"
else
  install -d -m 0755 "$cni_dir"
  cat >"$cni_dir/10-podshim.conflist.new" <<'EOF'
{
  "cniVersion": "1.0.0",
  "name": "podshim",
  "plugins": [
    { "type": "bridge", "bridge": "psh0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "10.88.0.0/16" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "firewall" }
  ]
}
EOF
  chmod 0644 "$cni_dir/10-podshim.conflist.new"
  mv -f "$cni_dir/10-podshim.conflist.new" "$cni_dir/10-podshim.conflist"
  echo "== wrote $cni_dir/10-podshim.conflist"
fi

install -d -m 0755 "$dest/etc/systemd/system"
sed "s#/usr/local/bin/podshim #$bin #" hack/systemd/podshim.service >"$dest$unit.new"
chmod 0644 "$dest$unit.new"
mv -f "$dest$unit.new" "$dest$unit"
echo "== installed $dest$unit"

by_hand="$bin serve --config $config"
if [ -n "$dest" ]; then
  echo "== staged under $dest; nothing was started"
elif [ "$start" = 0 ]; then
  echo "== not started (--no-start): systemctl daemon-reload && systemctl enable --now podshim"
elif [ -d /run/systemd/system ]; then
  systemctl daemon-reload
  if systemctl is-active --quiet podshim; then
    # The pods keep running (KillMode=process); the new daemon re-adopts them.
    systemctl enable podshim
    systemctl restart podshim
  else
    systemctl enable --now podshim
  fi
  echo "== podshim.service is $(systemctl is-active podshim): systemctl status podshim; journalctl -u podshim"
else
  echo "== systemd is not running on this host (no /run/systemd/system): the unit is installed but not started."
  echo "   Start the daemon by hand, e.g.:"
  echo "     setsid -f $by_hand >>/var/log/podshim-serve.log 2>&1"
  echo "   and stop it with SIGTERM (the pods keep running)."
fi
echo "== CRI endpoint: unix:///run/podshim/podshim.sock (images: podshim images import; see README, \"Use with a kubelet\")"
