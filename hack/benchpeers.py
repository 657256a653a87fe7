"""What the peer benchmarks share (hack/bench_cni.py, bench_streaming.py through bench_cni,
bench_pull.py, bench_rpc.py): a private containerd 1.6 and the small helpers around it.

Containerd: Debian's containerd 1.6 with a config of its own, every path (root, state, temp, gRPC
and ttrpc sockets, the OCI runtime's root) under the bench's temp dir, optionally in a network
namespace pinned on a file (started through `nsenter --net`), with the CRI plugin's runtime
`io.containerd.runc.v2` running runc or crun (BinaryName), with or without a CNI conf dir, and a
sandbox image imported with `ctr images import` from an OCI archive built here (nothing pulled).
Its leftovers: processes proven ours (shims given our socket address, their descendants,
anything whose root, cwd or exe is under our dirs), the shim sockets containerd 1.6 puts in
/run/containerd/s whatever its state dir (by the ids we know, or the ones that appeared while it
ran and nobody listens on any more).

The rest: log/warn, nearest-rank percentiles, a file's tail, TOML strings, OCI image archives (of
one layer: a pause binary, a rootfs), merging into bench.json, unmounting everything under a dir,
cgroups under a top directory (their processes, their removal), new cgroups since a snapshot.
Importing this module puts Tests/cri on sys.path (crihelpers, the generated CRI stubs).
"""

import hashlib
import io
import json
import os
import platform
import re
import signal
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "Tests", "cri"))
from crihelpers import (all_pids, descendants, mountinfo, mounts_under, pb, pbg, proc_cmdline,  # noqa: E402
                        proc_starttime)

import grpc  # noqa: E402

CONTAINERD = "/usr/bin/containerd"
CTR = "/usr/bin/ctr"
SHIM = "/usr/bin/containerd-shim-runc-v2"
RUNC = "/usr/sbin/runc"
CRUN = "/usr/bin/crun"
PLUGINS = "/usr/lib/cni"
CGROUP2_HYBRID = "/sys/fs/cgroup/unified"  # a hybrid host's cgroup v2 mount


class BenchError(Exception):
    pass


PROG = os.path.splitext(os.path.basename(sys.argv[0]))[0] or "bench"


def log(msg):
    print("== " + msg, flush=True)


def warn(msg):
    print("%s: warning: %s" % (PROG, msg), file=sys.stderr, flush=True)


def pct(values, p):
    """Nearest-rank percentile."""
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def tail(path, n=4000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")
    except OSError:
        return "(no %s)" % path


def toml_str(s):
    return json.dumps(s)  # a TOML basic string is a JSON string for what we write


def merge_json(path, key, value):
    """Sets `key` in the JSON object in `path` (made if missing), atomically."""
    data = {}
    if os.path.exists(path):
        try:
            with open(path) as f:
                data = json.load(f)
        except (OSError, ValueError) as e:
            warn("%s is not JSON (%s); writing it afresh" % (path, e))
    data[key] = value
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
    os.rename(tmp, path)


# ---------------------------------------------------------------------------
# OCI image archives (for `ctr images import`)
# ---------------------------------------------------------------------------

def oci_arch():
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def image_archive(path, layer, image_config, ref):
    """An OCI image archive (oci-layout, index.json, blobs) of one uncompressed layer (tar bytes)
    and `image_config` (the config's "config"), named `ref` (io.containerd.image.name) for
    `ctr images import`."""
    blobs = {}

    def blob(data):
        digest = hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return "sha256:" + digest

    layer_digest = blob(layer)
    config = json.dumps({
        "architecture": oci_arch(), "os": "linux", "config": image_config,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},  # uncompressed: digest = diff id
    }, sort_keys=True).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest,
                    "size": len(layer)}],
    }, sort_keys=True).encode()
    index = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(manifest),
                       "size": len(manifest), "platform": {"architecture": oci_arch(), "os": "linux"},
                       "annotations": {"io.containerd.image.name": ref,
                                       "org.opencontainers.image.ref.name": ref.rsplit(":", 1)[1]}}],
    }, sort_keys=True).encode()
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        def add(name, data, mode=0o644):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            t.addfile(info, io.BytesIO(data))
        for d in ("blobs", "blobs/sha256"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            t.addfile(info)
        add("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        add("index.json", index)
        for digest, data in blobs.items():
            add("blobs/sha256/" + digest, data)


def pause_image_archive(path, pause_binary, ref):
    """An OCI image archive of one layer holding pause_binary as /pause, Entrypoint ["/pause"]."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        with open(pause_binary, "rb") as f:
            data = f.read()
        info = tarfile.TarInfo("pause")
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        t.addfile(info, io.BytesIO(data))
    image_archive(path, layer.getvalue(), {"Entrypoint": ["/pause"], "WorkingDir": "/"}, ref)


PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def rootfs_layer(rootfs):
    """An uncompressed layer (tar bytes) of a rootfs directory (podshim's busybox); hard links stay links."""
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        for d, dirs, files in os.walk(rootfs):
            dirs.sort()
            for name in sorted(dirs) + sorted(files):
                full = os.path.join(d, name)
                t.add(full, arcname=os.path.relpath(full, rootfs), recursive=False)
    return layer.getvalue()


def rootfs_image_archive(path, rootfs, ref):
    """An OCI archive of `rootfs` as one layer, Cmd ["sh"], the usual PATH."""
    image_archive(path, rootfs_layer(rootfs), {"Cmd": ["sh"], "Env": [PATH_ENV], "WorkingDir": "/"}, ref)


# ---------------------------------------------------------------------------
# Mounts and cgroups
# ---------------------------------------------------------------------------

def unmount_all_under(path):
    """Unmounts (deepest first, lazily if busy) everything under `path`; returns what is left."""
    for m in sorted(mounts_under(path), key=len, reverse=True):
        if subprocess.call(["umount", m], stderr=subprocess.DEVNULL) != 0:
            subprocess.call(["umount", "-l", m], stderr=subprocess.DEVNULL)
    return mounts_under(path)


def cgroup_mounts():
    return [m for m, fstype in mountinfo() if fstype in ("cgroup", "cgroup2")]


def cgroup_processes(top):
    """{pid: starttime} of the processes in any cgroup under <each hierarchy>/<top>: ours by name."""
    found = {}
    for mount in cgroup_mounts():
        for d, _, files in os.walk(os.path.join(mount, top.strip("/"))):
            if "cgroup.procs" not in files:
                continue
            try:
                with open(os.path.join(d, "cgroup.procs")) as f:
                    pids = [int(x) for x in f.read().split()]
            except OSError:
                continue
            for pid in pids:
                st = proc_starttime(pid)
                if st is not None:
                    found[pid] = st
    return found


def rmdir_cgroups(dirs):
    """rmdir, deepest first, these cgroup directories; returns those left."""
    left = []
    for d in sorted(dirs, key=len, reverse=True):
        for _ in range(50):  # a cgroup whose last process just died can be busy for a moment
            try:
                os.rmdir(d)
                break
            except FileNotFoundError:
                break
            except OSError:
                time.sleep(0.1)
        else:
            left.append(d)
    return left


def remove_cgroups(top):
    """rmdir, deepest first, every cgroup directory under <each hierarchy>/<top> (only those)."""
    dirs = []
    for mount in cgroup_mounts():
        root = os.path.join(mount, top.strip("/"))
        if os.path.isdir(root):
            dirs += [d for d, _, _ in os.walk(root)]
    return rmdir_cgroups(dirs)


def cgroup_snapshot():
    """Every cgroup directory of every hierarchy (a set of paths)."""
    out = set()
    for mount in cgroup_mounts():
        for d, _, _ in os.walk(mount):
            out.add(d)
    return out


def crun_binary(tmpdir):
    """crun, or where the host is hybrid with a controller on the cgroup v2 side (crun 1.8 refuses
    that: "cgroups in hybrid mode not supported, drop all controllers from cgroupv2"), a wrapper
    in `tmpdir` that runs it in a private mount namespace without the v2 mount (as
    hack/bench_all.py does): compiled from C when a compiler is there (one exec, no shell), else a
    shell script. Returns (path, note)."""
    try:
        with open(os.path.join(CGROUP2_HYBRID, "cgroup.controllers")) as f:
            controllers = f.read().split()
    except OSError:
        return CRUN, None
    if not controllers:
        return CRUN, None
    note = "crun runs in a private mount namespace without %s (hybrid host, v2 controllers: %s)" % (
        CGROUP2_HYBRID, " ".join(controllers))
    src = os.path.join(tmpdir, "crun-hybrid.c")
    path = os.path.join(tmpdir, "crun-hybrid")
    with open(src, "w") as f:
        f.write(r"""#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <sys/mount.h>
#include <unistd.h>
int main(int argc, char **argv) {
    (void)argc;
    if (unshare(CLONE_NEWNS) != 0) { perror("crun-hybrid: unshare"); return 125; }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) { perror("crun-hybrid: mount"); return 125; }
    if (umount2("@UNIFIED@", MNT_DETACH) != 0) { perror("crun-hybrid: umount"); return 125; }
    argv[0] = "@CRUN@";
    execv(argv[0], argv);
    perror("crun-hybrid: exec");
    return 125;
}
""".replace("@UNIFIED@", CGROUP2_HYBRID).replace("@CRUN@", CRUN))
    for cc in ("cc", "gcc", "clang"):
        try:
            if subprocess.run([cc, "-O2", "-o", path, src], capture_output=True).returncode == 0:
                return path, note + " (C wrapper)"
        except FileNotFoundError:
            continue
    with open(path, "w") as f:
        f.write("#!/bin/sh\nexec unshare -m sh -c 'umount %s && exec %s \"$@\"' crun \"$@\"\n" % (CGROUP2_HYBRID, CRUN))
    os.chmod(path, 0o755)
    return path, note + " (shell wrapper)"


# ---------------------------------------------------------------------------
# containerd
# ---------------------------------------------------------------------------

SHIM_SOCKET_DIR = "/run/containerd/s"  # containerd 1.6 puts shim sockets there, whatever its state dir
HEX64 = re.compile(r"^[0-9a-f]{64}$")


def listening_unix_paths():
    """The paths of every listening unix socket (/proc/net/unix), of all network namespaces we
    can see through our own: enough for /run/containerd/s, which shims bind in the host's."""
    paths = set()
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                fields = line.split()
                if len(fields) >= 8 and fields[7].startswith("/"):
                    paths.add(fields[7])
    except OSError:
        pass
    return paths


class Containerd:
    """containerd with a private config, every path under `base` (volatile state under `state`, a
    tmpfs's dir, if given), in the network namespace pinned at `netns` (None: the host's).

    runtime: "runc" or "crun" (the CRI plugin's default runtime, io.containerd.runc.v2 with
    options BinaryName = runtime_binary or /usr/sbin/runc, /usr/bin/crun; Root = <state>/<runtime>).
    cni_conf_dir: the CRI plugin's CNI conf dir (None: an empty dir under base; pods with a network
    namespace then fail, host-network ones work). registry_config_path, max_concurrent_downloads:
    for pulls."""

    SHIM_SOCKET_DIR = SHIM_SOCKET_DIR
    # go-cni's libcni cache (containerd 1.6 has no setting for it): <network>-<id>-eth0 and, for the
    # loopback network go-cni adds, cni-loopback-<id>-lo; DEL removes them.
    CNI_CACHE = "/var/lib/cni/results"

    def __init__(self, base, state=None, netns=None, sandbox_image="localhost/podshim-bench-no-pause:none",
                 runtime="runc", runtime_binary=None, cni_conf_dir=None, registry_config_path=None,
                 max_concurrent_downloads=None, log_level="warn"):
        self.base = base
        self.root = os.path.join(base, "root")
        self.state = state or os.path.join(base, "state")
        self.socket = os.path.join(base, "containerd.sock")
        self.config = os.path.join(base, "config.toml")
        self.log_path = os.path.join(base, "containerd.log")
        self.netns = netns
        self.sandbox_image = sandbox_image
        self.runtime = runtime
        self.runtime_binary = runtime_binary or {"runc": RUNC, "crun": CRUN}[runtime]
        self.log_level = log_level
        self.proc = None
        self.ids = set()  # sandbox ids containerd gave us, when the caller knows them (shim sockets)
        self.sockets_before = None  # /run/containerd/s before start (new_shim_sockets)
        self.run_created = not os.path.exists("/run/containerd")
        if cni_conf_dir is None:
            cni_conf_dir = os.path.join(base, "net.d")
        for d in (self.root, self.state, os.path.join(base, "tmp"), cni_conf_dir):
            os.makedirs(d, exist_ok=True)
        cri = '[plugins."io.containerd.grpc.v1.cri"'
        lines = [
            "version = 2",
            "root = %s" % toml_str(self.root),
            "state = %s" % toml_str(self.state),
            "temp = %s" % toml_str(os.path.join(base, "tmp")),
            # opt would install into /opt/containerd; nothing here needs it.
            'disabled_plugins = ["io.containerd.internal.v1.opt"]',
            "[grpc]",
            "  address = %s" % toml_str(self.socket),
            "[ttrpc]",
            "  address = %s" % toml_str(self.socket + ".ttrpc"),
            "[plugins]",
            '  %s]' % cri,
            "    sandbox_image = %s" % toml_str(sandbox_image),
            "    netns_mounts_under_state_dir = true",  # pod netns pins under <state>, not /var/run/netns
            "    disable_apparmor = true",
            # The sandbox's oom_score_adj (-998) clamped to containerd's own: this host refuses a
            # negative oom_score_adj (EIO), which runc init dies of otherwise.
            "    restrict_oom_score_adj = true",
            "    systemd_cgroup = false",
            "    stream_server_address = \"127.0.0.1\"",  # in the node namespace, if any
            "    stream_server_port = \"0\"",
        ]
        if max_concurrent_downloads is not None:
            lines.append("    max_concurrent_downloads = %d" % max_concurrent_downloads)
        lines += [
            '  %s.cni]' % cri,
            "    bin_dir = %s" % toml_str(PLUGINS),
            "    conf_dir = %s" % toml_str(cni_conf_dir),
            "    max_conf_num = 1",
            '  %s.containerd]' % cri,
            '    snapshotter = "overlayfs"',
            '    default_runtime_name = %s' % toml_str(runtime),
            '  %s.containerd.runtimes.%s]' % (cri, runtime),
            '    runtime_type = "io.containerd.runc.v2"',
            '  %s.containerd.runtimes.%s.options]' % (cri, runtime),
            "    BinaryName = %s" % toml_str(self.runtime_binary),
            "    Root = %s" % toml_str(os.path.join(self.state, runtime)),
            "    SystemdCgroup = false",
        ]
        if registry_config_path is not None:
            lines += ['  %s.registry]' % cri, "    config_path = %s" % toml_str(registry_config_path)]
        with open(self.config, "w") as f:
            f.write("\n".join(lines + [""]))

    def argv(self):
        a = [CONTAINERD, "--config", self.config, "--log-level", self.log_level]
        return (["nsenter", "--net=" + self.netns] + a) if self.netns else a

    def start(self, timeout=30):
        self.sockets_before = set(self._socket_dir())
        out = open(self.log_path, "wb")
        try:
            # Its own session: a Ctrl-C on the terminal stops the bench, which then removes the
            # pods through containerd before it stops it.
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                         cwd="/", start_new_session=True)
        finally:
            out.close()
        deadline = time.time() + timeout
        while True:
            if self.proc.poll() is not None:
                raise BenchError("containerd exited with %s:\n%s" % (self.proc.returncode, tail(self.log_path)))
            if os.path.exists(self.socket):
                ch = grpc.insecure_channel("unix://" + self.socket)
                try:
                    pbg.RuntimeServiceStub(ch).Version(pb.VersionRequest(version="v1"), timeout=1)
                    return self
                except grpc.RpcError:
                    pass
                finally:
                    ch.close()
            if time.time() > deadline:
                raise BenchError("containerd did not answer CRI Version in %ds:\n%s" % (timeout, tail(self.log_path)))
            time.sleep(0.1)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None  # nsenter execs containerd: the same pid

    def ctr_run(self, *args):
        return subprocess.run([CTR, "--address", self.socket, "--namespace", "k8s.io"] + list(args),
                              capture_output=True, text=True, timeout=120)

    def ctr(self, *args):
        r = self.ctr_run(*args)
        if r.returncode != 0:
            raise BenchError("ctr %s failed (%d): %s%s\ncontainerd log:\n%s" % (
                " ".join(args), r.returncode, r.stdout, r.stderr, tail(self.log_path)))
        return r.stdout

    def ctr_rows(self, *args):
        """Non-header rows of `ctr -n k8s.io <args>` (with -q: the names)."""
        lines = [l for l in self.ctr(*args).splitlines() if l.strip()]
        return lines if "-q" in args else lines[1:]

    def import_image(self, archive):
        # Unpacked into the default snapshotter (overlayfs), which the CRI plugin uses.
        self.ctr("images", "import", "--platform", "linux/" + oci_arch(), archive)

    def stop(self, timeout=20):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            warn("containerd ignored SIGTERM for %ds, SIGKILL" % timeout)
            self.proc.kill()
            self.proc.wait()

    def leftover_processes(self):
        """{pid: starttime} of processes provably of this containerd: shims given our socket address
        (a shim daemonizes, so it is not a descendant of containerd), their descendants (the pause
        processes), and anything whose root, cwd or exe is under our base or state (bundles, rootfs)."""
        found = set()
        me = os.getpid()
        for pid in all_pids():
            if pid == me:
                continue
            argv = proc_cmdline(pid)
            if "-address" in argv and self.socket in argv:
                found.add(pid)
                continue
            for what in ("root", "cwd", "exe"):
                try:
                    target = os.readlink("/proc/%d/%s" % (pid, what))
                except OSError:
                    continue
                if (target + "/").startswith(self.base + "/") or (target + "/").startswith(self.state + "/"):
                    found.add(pid)
                    break
        for pid in list(found):
            found.update(descendants(pid))
        if self.proc is not None and self.proc.poll() is None:
            found.add(self.proc.pid)
            found.update(descendants(self.proc.pid))
        return {pid: st for pid, st in ((p, proc_starttime(p)) for p in found) if st is not None}

    def task_ids(self):
        """Ids of the tasks (shims) containerd still has bundles of in its state dir."""
        try:
            return set(os.listdir(os.path.join(self.state, "io.containerd.runtime.v2.task", "k8s.io")))
        except OSError:
            return set()

    def shim_sockets(self, ids=None):
        """The shim sockets containerd 1.6 names sha256(<address>/<namespace>/<id>) in /run/containerd/s."""
        return [os.path.join(SHIM_SOCKET_DIR, hashlib.sha256(
            os.path.join(self.socket, "k8s.io", i).encode()).hexdigest()) for i in (self.ids if ids is None else ids)]

    @staticmethod
    def _socket_dir():
        try:
            return os.listdir(SHIM_SOCKET_DIR)
        except OSError:
            return []

    def new_shim_sockets(self):
        """Shim sockets that appeared in /run/containerd/s since start() (ours unless another
        containerd ran at the same time)."""
        before = self.sockets_before or set()
        return [os.path.join(SHIM_SOCKET_DIR, n) for n in self._socket_dir() if n not in before]

    def remove_shim_sockets(self):
        """Removes our shim sockets that nobody listens on any more (stopped, after the shims are
        gone): the known ids' and the new ones. Returns those removed and those still listened on."""
        listening = listening_unix_paths()
        removed, busy = [], []
        for s in sorted(set(self.shim_sockets()) | set(self.new_shim_sockets())):
            if not os.path.lexists(s):
                continue
            if s in listening:
                busy.append(s)
                continue
            try:
                os.unlink(s)
                removed.append(s)
            except OSError:
                pass
        return removed, busy

    def remove_run_dir(self):
        """/run/containerd (and its s/) if this containerd made it and it is empty."""
        if self.run_created:
            for d in (SHIM_SOCKET_DIR, "/run/containerd"):
                try:
                    os.rmdir(d)
                except OSError:
                    pass


def containerd_version():
    r = subprocess.run([CONTAINERD, "--version"], capture_output=True, text=True)
    return r.stdout.split()[2] if r.returncode == 0 and len(r.stdout.split()) > 2 else "?"


def tool_version(binary):
    r = subprocess.run([binary, "--version"], capture_output=True, text=True)
    first = r.stdout.splitlines()[0] if r.returncode == 0 and r.stdout else "?"
    return first.split()[2] if len(first.split()) > 2 else first
