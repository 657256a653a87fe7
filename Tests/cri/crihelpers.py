"""Shared helpers for podshim's CRI integration tests (Tests/cri/test_*.py).

An independent client: grpcio plus stubs generated from Proto/runtime/v1/api.proto by
hack/test-cri.sh. Every test class runs its own `podshim serve` on a fresh temp dir and
cleans up after itself, even on failure: sandboxes are removed through the API, the daemon
is stopped (SIGTERM, then SIGKILL), processes of our pods still alive are killed (only those
proven to be ours: in a pod cgroup of ours, descendants of our daemon, or rooted in our temp
dir), mounts left under the temp dir are detached and the temp dir is removed without
crossing file systems.
"""

import errno
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import uuid

# Our forked children (run_as_nobody) never touch gRPC; skip grpc's fork handlers and their noise.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")
import grpc  # noqa: E402

from runtime.v1 import api_pb2 as pb  # noqa: F401  (re-exported)
from runtime.v1 import api_pb2_grpc as pbg

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PODSHIM_BIN = os.environ.get("PODSHIM_BIN") or os.path.join(REPO, ".build", "debug", "podshim")
IMAGE_DIR = os.environ.get("PODSHIM_IMAGE_DIR", "")
LOG_KEEP_DIR = os.environ.get("PODSHIM_CRI_LOG_DIR", "")
IMAGE = "busybox"

# A unique tag for this test run: pod uids and names carry it, so nothing we match can be
# somebody else's.
RUN_TAG = uuid.uuid4().hex[:8]


def log(msg):
    sys.stderr.write("    [cri] %s\n" % msg)
    sys.stderr.flush()


def require_environment(testcase_cls):
    if os.geteuid() != 0:
        raise unittest.SkipTest("needs root")
    if not os.access(PODSHIM_BIN, os.X_OK):
        raise unittest.SkipTest("no podshim binary at %s" % PODSHIM_BIN)
    if not IMAGE_DIR or not os.path.isdir(os.path.join(IMAGE_DIR, IMAGE, "rootfs")):
        raise unittest.SkipTest("PODSHIM_IMAGE_DIR does not hold busybox/rootfs (run hack/test-cri.sh)")


# ---------------------------------------------------------------------------
# /proc, mounts, cgroups
# ---------------------------------------------------------------------------

def _unescape_mountinfo(s):
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), s)


def mountinfo():
    """[(mount_point, fstype)] of this process's mount namespace."""
    out = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            fields = left.split()
            fstype = right.split()[0] if right else ""
            out.append((_unescape_mountinfo(fields[4]), fstype))
    return out


def mounts_under(path):
    path = path.rstrip("/") + "/"
    return [m for m, _ in mountinfo() if (m + "/").startswith(path)]


def cgroup2_mount():
    for m, fstype in mountinfo():
        if fstype == "cgroup2":
            return m
    return None


def pod_cgroup_dirs(keys):
    """Existing `<cgroup2>/podshim/pod-<key>` dirs for any key (sandbox ids, uids)."""
    root = cgroup2_mount()
    if not root:
        return []
    base = os.path.join(root, "podshim")
    found = []
    try:
        names = os.listdir(base)
    except OSError:
        return []
    keys = set(k for k in keys if k)
    for name in names:
        if name.startswith("pod-") and name[4:] in keys:
            found.append(os.path.join(base, name))
    return found


def proc_starttime(pid):
    """The start time of a live process; None when it is gone or a zombie (dead, not reaped yet
    by whoever inherited it)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        fields = data.rsplit(")", 1)[1].split()
        if fields[0] == "Z":
            return None
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def proc_ppid(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
        return int(data.rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def proc_cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def proc_cgroup2_path(pid):
    try:
        with open("/proc/%d/cgroup" % pid) as f:
            for line in f:
                if line.startswith("0::"):
                    return line[3:].strip()
    except OSError:
        pass
    return None


def all_pids():
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(root_pid):
    children = {}
    for pid in all_pids():
        ppid = proc_ppid(pid)
        if ppid is not None:
            children.setdefault(ppid, []).append(pid)
    out, todo = [], [root_pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            out.append(c)
            todo.append(c)
    return out


def _link_under(pid, what, base):
    try:
        target = os.readlink("/proc/%d/%s" % (pid, what))
    except OSError:
        return False
    return (target + "/").startswith(base.rstrip("/") + "/")


def processes_of(base, keys=(), exclude=()):
    """{pid: starttime} of processes that are provably ours: in a podshim pod cgroup named after
    one of `keys` (sandbox ids / uids we created) or whose root, cwd or exe is under `base`."""
    keys = set(k for k in keys if k)
    me = os.getpid()
    found = {}
    for pid in all_pids():
        if pid == me or pid in exclude:
            continue
        ours = False
        cg = proc_cgroup2_path(pid)
        if cg and keys:
            for comp in cg.split("/"):
                if comp.startswith("pod-") and comp[4:] in keys:
                    ours = True
                    break
        if not ours:
            ours = any(_link_under(pid, w, base) for w in ("root", "cwd", "exe"))
        if ours:
            st = proc_starttime(pid)
            if st is not None:
                found[pid] = st
    return found


def read_until(path, done, timeout=10):
    """The text of `path` once `done(text)` holds, or what it was when `timeout` passed."""
    deadline = time.time() + timeout
    text = ""
    while True:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
        if done(text) or time.time() > deadline:
            return text
        time.sleep(0.1)


def kill_recorded(pids):
    """SIGKILL each {pid: starttime} that is still the same process. Returns the pids killed."""
    killed = []
    for pid, st in pids.items():
        if st is not None and proc_starttime(pid) == st:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            except ProcessLookupError:
                pass
    deadline = time.time() + 5
    while time.time() < deadline and any(proc_starttime(p) == pids[p] for p in killed):
        time.sleep(0.05)
    return killed


def find_container_pid(cmd_args, keys=(), daemon_pid=None, base=None):
    """The pid of a container process whose argv equals cmd_args, provably ours (pod cgroup of
    ours, descendant of our daemon, or rooted under base)."""
    cands = []
    desc = set(descendants(daemon_pid)) if daemon_pid else set()
    keys = set(k for k in keys if k)
    for pid in all_pids():
        if proc_cmdline(pid) != list(cmd_args):
            continue
        ours = pid in desc
        cg = proc_cgroup2_path(pid) or ""
        if not ours and keys:
            ours = any(c.startswith("pod-") and c[4:] in keys for c in cg.split("/"))
        if not ours and base:
            ours = any(_link_under(pid, w, base) for w in ("root", "cwd"))
        if ours:
            cands.append(pid)
    return cands[0] if len(cands) == 1 else None


def safe_rmtree(path):
    """Remove a temp dir: detach leftover mounts under it first, never cross file systems."""
    if not path or not os.path.isdir(path):
        return
    leftovers = mounts_under(path)
    for m in sorted(leftovers, key=len, reverse=True):
        subprocess.call(["umount", "-l", m], stderr=subprocess.DEVNULL)
    still = mounts_under(path)
    if still:
        log("not removing %s: still mounted: %s" % (path, still[:5]))
        return
    subprocess.call(["rm", "-rf", "--one-file-system", path])


# ---------------------------------------------------------------------------
# The daemon
# ---------------------------------------------------------------------------

class Daemon:
    """One `podshim serve` on dirs under `base`."""

    def __init__(self, base, socket_path=None, socket_group=None, name="daemon",
                 state=None, root=None, logs=None, precreate_socket_dir=True, extra_args=(), image_dir=None,
                 node_netns=None):
        self.base = base
        # A network namespace file the daemon runs in (a throw-away "node" for CNI tests).
        self.node_netns = node_netns
        self.image_dir = image_dir or IMAGE_DIR
        self.name = name
        self.socket = socket_path or os.path.join(base, "run", "cri.sock")
        self.state = state or os.path.join(base, "state")
        self.root = root or os.path.join(base, "root")
        self.logs = logs or os.path.join(base, "logs")
        self.socket_group = socket_group
        self.precreate_socket_dir = precreate_socket_dir
        self.extra_args = list(extra_args)
        self.env = {}  # extra environment of the next start (PODSHIM_FAILPOINT, for one)
        self.proc = None
        self.starts = 0
        self.stderr_path = None
        assert len(self.socket) < 100, self.socket

    def argv(self):
        a = [PODSHIM_BIN, "serve", "--socket", self.socket, "--state-dir", self.state,
             "--root", self.root, "--image-dir", self.image_dir, "--log-dir", self.logs]
        if self.socket_group is not None:
            a += ["--socket-group", str(self.socket_group)]
        if "--network" not in self.extra_args:
            a += ["--network", "none"]  # CNI tests say otherwise
        if self.node_netns:
            # nsenter enters the network namespace and execs podshim (same pid).
            a = ["nsenter", "--net=" + self.node_netns] + a
        return a + self.extra_args

    def spawn(self):
        if self.precreate_socket_dir:
            os.makedirs(os.path.dirname(self.socket), mode=0o755, exist_ok=True)
        self.starts += 1
        self.stderr_path = os.path.join(self.base, "%s-%d.stderr" % (self.name, self.starts))
        err = open(self.stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=err,
                                         stderr=subprocess.STDOUT, cwd="/", env=dict(os.environ, **self.env))
        finally:
            err.close()
        return self.proc

    def start(self, timeout=20):
        self.spawn()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=20):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError("%s exited with %s before answering Version:\n%s"
                                     % (self.name, self.proc.returncode, self.stderr_tail()))
            if os.path.exists(self.socket):
                ch = grpc.insecure_channel("unix://" + self.socket)
                try:
                    pbg.RuntimeServiceStub(ch).Version(pb.VersionRequest(version="v1"), timeout=1)
                    return
                except grpc.RpcError as e:
                    last = e
                finally:
                    ch.close()
            time.sleep(0.1)
        raise AssertionError("%s did not answer Version within %ss (last: %s):\n%s"
                             % (self.name, timeout, last, self.stderr_tail()))

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after `timeout`. Returns the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                log("%s ignored SIGTERM for %ss, SIGKILL" % (self.name, timeout))
                self.proc.kill()
                self.proc.wait()
        self.keep_log()
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.keep_log()

    def keep_log(self):
        if LOG_KEEP_DIR and self.stderr_path and os.path.exists(self.stderr_path):
            try:
                shutil.copy(self.stderr_path, os.path.join(
                    LOG_KEEP_DIR, "%s-%s" % (os.path.basename(self.base), os.path.basename(self.stderr_path))))
            except OSError:
                pass

    def stderr_tail(self, n=3000):
        try:
            with open(self.stderr_path, "rb") as f:
                data = f.read()
            return data[-n:].decode(errors="replace")
        except (OSError, TypeError):
            return "(no daemon stderr)"

    def stderr_text(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except (OSError, TypeError):
            return ""


class Client:
    def __init__(self, socket_path, options=None):
        self.channel = grpc.insecure_channel("unix://" + socket_path, options=options or [])
        self.rt = pbg.RuntimeServiceStub(self.channel)
        self.img = pbg.ImageServiceStub(self.channel)

    def close(self):
        self.channel.close()


# ---------------------------------------------------------------------------
# Configs
# ---------------------------------------------------------------------------

def pod_config(name, uid=None, namespace="default", attempt=0, log_directory="", labels=None,
               hostname=None):
    cfg = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid or ("%s-%s" % (RUN_TAG, uuid.uuid4().hex[:12])),
                                       namespace=namespace, attempt=attempt),
        hostname=hostname or name[:63],
        log_directory=log_directory,
        linux=pb.LinuxPodSandboxConfig(security_context=pb.LinuxSandboxSecurityContext()),
    )
    for k, v in (labels or {}).items():
        cfg.labels[k] = v
    return cfg


def container_config(name, command, args=(), log_path="", labels=None, envs=None, attempt=0,
                     resources=None, mounts=()):
    cfg = pb.ContainerConfig(
        metadata=pb.ContainerMetadata(name=name, attempt=attempt),
        image=pb.ImageSpec(image=IMAGE),
        command=list(command),
        args=list(args),
        log_path=log_path,
        mounts=list(mounts),
    )
    for k, v in (envs or {}).items():
        try:
            cfg.envs.add(key=k, value=v)              # string in upstream cri-api
        except TypeError:
            cfg.envs.add(key=k, value=v.encode())     # bytes in older renderings
    for k, v in (labels or {}).items():
        cfg.labels[k] = v
    if resources is not None:
        cfg.linux.resources.CopyFrom(resources)
    return cfg


def code_of(fn, *args, **kwargs):
    """Call an RPC; return (grpc.StatusCode, details, response)."""
    try:
        resp = fn(*args, **kwargs)
        return grpc.StatusCode.OK, "", resp
    except grpc.RpcError as e:
        return e.code(), e.details() or "", None


# ---------------------------------------------------------------------------
# Base test case
# ---------------------------------------------------------------------------

class CRITestCase(unittest.TestCase):
    """One daemon per class on a fresh temp dir; tracked pods are removed after each test."""

    start_daemon = True
    daemon_kwargs = {}

    @classmethod
    def setUpClass(cls):
        require_environment(cls)
        cls.base = tempfile.mkdtemp(prefix="podshim-cri-", dir=os.environ.get("PODSHIM_CRI_TMP", "/tmp"))
        cls.keys = set()          # sandbox ids and uids of pods we created
        cls.daemons = []
        cls.clients = []
        cls.recorded = {}         # {pid: starttime} of processes known to be ours
        cls.addClassCleanup(cls._class_cleanup)
        cls.pod_log_root = os.path.join(cls.base, "podlogs")
        os.makedirs(cls.pod_log_root)
        if cls.start_daemon:
            cls.daemon = cls.new_daemon(**cls.daemon_kwargs)
            cls.daemon.start()
            cls.client = cls.new_client(cls.daemon.socket)

    @classmethod
    def new_daemon(cls, **kw):
        kw.setdefault("name", "%s-d%d" % (cls.__name__, len(cls.daemons)))
        d = Daemon(cls.base, **kw)
        cls.daemons.append(d)
        return d

    @classmethod
    def new_client(cls, sock, options=None):
        c = Client(sock, options)
        cls.clients.append(c)
        return c

    @classmethod
    def remember_descendants(cls):
        for d in cls.daemons:
            if d.alive():
                for pid in descendants(d.pid):
                    st = proc_starttime(pid)
                    if st is not None:
                        cls.recorded[pid] = st

    @classmethod
    def remove_all_pods(cls, client):
        try:
            items = client.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items
        except grpc.RpcError as e:
            log("cleanup: ListPodSandbox failed: %s" % e.code())
            return
        for p in items:
            cls.keys.add(p.id)
            cls.keys.add(p.metadata.uid)
            try:
                client.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=30)
            except grpc.RpcError as e:
                log("cleanup: RemovePodSandbox %s: %s %s" % (p.id[:12], e.code(), e.details()))

    @classmethod
    def _class_cleanup(cls):
        cls.remember_descendants()
        # Remove pods through every live daemon.
        for d in cls.daemons:
            if d.alive():
                c = Client(d.socket)
                try:
                    cls.remove_all_pods(c)
                finally:
                    c.close()
        for c in cls.clients:
            try:
                c.close()
            except Exception:
                pass
        cls.remember_descendants()
        for d in cls.daemons:
            d.stop()
        leftovers = processes_of(cls.base, cls.keys, exclude=set(d.pid for d in cls.daemons if d.pid))
        leftovers.update(cls.recorded)
        names = {p: " ".join(proc_cmdline(p))[:60] for p in leftovers if proc_starttime(p) == leftovers[p]}
        killed = kill_recorded(leftovers)
        if killed:
            log("cleanup: killed %d leftover pod processes: %s" % (len(killed), [(p, names.get(p)) for p in killed[:20]]))
        for cg in pod_cgroup_dirs(cls.keys):
            for dirpath, dirnames, _ in os.walk(cg, topdown=False):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
        safe_rmtree(cls.base)

    def tearDown(self):
        # Per-test: remove every pod the class daemon knows (tests are independent).
        d = getattr(type(self), "daemon", None)
        if d is not None and d.alive():
            self.remove_all_pods(type(self).client)

    # -- helpers for tests ------------------------------------------------------------

    def restart_daemon(self, env=None, down_seconds=0):
        """SIGKILLs the class daemon (its pods stay), waits `down_seconds`, starts it again with
        `env` in its environment; returns the new class client."""
        cls = type(self)
        cls.remember_descendants()
        self.daemon.kill()
        time.sleep(down_seconds)
        self.daemon.env = dict(env or {})
        self.daemon.start()
        cls.client = self.new_client(self.daemon.socket)
        return cls.client

    def crash_in(self, failpoint, rpc):
        """Restarts the daemon with `failpoint` armed, runs `rpc(client)` (the daemon dies in it),
        then starts it again unarmed. Returns the new client."""
        armed = self.restart_daemon(env={"PODSHIM_FAILPOINT": failpoint})
        try:
            rpc(armed)
            self.fail("the daemon survived failpoint %s" % failpoint)
        except grpc.RpcError as error:
            self.assertIn(error.code(), (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN,
                                         grpc.StatusCode.INTERNAL, grpc.StatusCode.CANCELLED), str(error))
        armed.close()
        self.daemon.proc.wait(timeout=10)
        return self.restart_daemon()

    def track(self, pod_id=None, uid=None):
        if pod_id:
            type(self).keys.add(pod_id)
        if uid:
            type(self).keys.add(uid)

    def run_pod(self, client, name, **kw):
        kw.setdefault("log_directory", os.path.join(self.pod_log_root, name + "-" + uuid.uuid4().hex[:6]))
        cfg = pod_config(name, **kw)
        self.track(uid=cfg.metadata.uid)
        resp = client.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=30)
        self.track(pod_id=resp.pod_sandbox_id)
        return resp.pod_sandbox_id, cfg

    def create_container(self, client, pod_id, pod_cfg, name, command, **kw):
        ccfg = container_config(name, command, **kw)
        resp = client.rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=ccfg, sandbox_config=pod_cfg), timeout=30)
        return resp.container_id

    def start_container(self, client, cid):
        client.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=30)

    def run_pod_with_sleeper(self, client, name, sleep_arg="3600", cname="sleeper"):
        pod_id, cfg = self.run_pod(client, name)
        cid = self.create_container(client, pod_id, cfg, cname, ["sleep", sleep_arg])
        self.start_container(client, cid)
        return pod_id, cfg, cid

    def container_status(self, client, cid, verbose=False):
        return client.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=verbose),
                                         timeout=10)

    def wait_container_state(self, client, cid, state, timeout=15):
        deadline = time.time() + timeout
        st = None
        while time.time() < deadline:
            st = self.container_status(client, cid).status
            if st.state == state:
                return st
            time.sleep(0.1)
        self.fail("container %s: state %s, wanted %s after %ss" % (
            cid[:12], pb.ContainerState.Name(st.state) if st else None, pb.ContainerState.Name(state), timeout))

    def assertCode(self, expected, fn, *args, **kwargs):
        kwargs.setdefault("timeout", 15)
        code, details, resp = code_of(fn, *args, **kwargs)
        self.assertEqual(code, expected, "expected %s, got %s (%r)" % (expected, code, details))
        return details, resp


# ---------------------------------------------------------------------------
# A hand-written HTTP/2 gRPC probe (for forked children: no grpc core after fork)
# ---------------------------------------------------------------------------

def _h2_frame(ftype, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def _hpack_literal(name, value):
    name, value = name.encode(), value.encode()
    assert len(name) < 127 and len(value) < 127
    return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value


def h2_version_probe(sock_path, timeout=3.0):
    """Calls /runtime.v1.RuntimeService/Version over a raw socket.
    Returns ("answered", detail) when a response message arrived, else ("refused", reason)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        try:
            s.connect(sock_path)
        except OSError as e:
            return "refused", "connect: %s" % errno.errorcode.get(e.errno, e.errno)
        headers = b"".join(_hpack_literal(k, v) for k, v in [
            (":method", "POST"), (":scheme", "http"), (":path", "/runtime.v1.RuntimeService/Version"),
            (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers")])
        msg = pb.VersionRequest(version="v1").SerializeToString()
        try:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _h2_frame(4, 0, 0, b"")
                      + _h2_frame(1, 4, 1, headers)
                      + _h2_frame(0, 1, 1, b"\x00" + struct.pack(">I", len(msg)) + msg))
        except OSError as e:
            return "refused", "send: %s" % errno.errorcode.get(e.errno, e.errno)
        buf = b""
        deadline = time.time() + timeout
        while time.time() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                return "refused", "timeout"
            except OSError as e:
                return "refused", "recv: %s" % errno.errorcode.get(e.errno, e.errno)
            if not chunk:
                return "refused", "connection closed"
            buf += chunk
            while len(buf) >= 9:
                length = struct.unpack(">I", b"\x00" + buf[:3])[0]
                if len(buf) < 9 + length:
                    break
                ftype, flags = buf[3], buf[4]
                stream = struct.unpack(">I", buf[5:9])[0] & 0x7FFFFFFF
                payload = buf[9:9 + length]
                buf = buf[9 + length:]
                if ftype == 4 and not flags & 1:
                    s.sendall(_h2_frame(4, 1, 0, b""))
                elif ftype == 0 and stream == 1 and length >= 5:
                    return "answered", payload[5:].decode(errors="replace")
                elif ftype == 7:
                    return "refused", "GOAWAY"
                elif ftype == 3 and stream == 1:
                    return "refused", "RST_STREAM"
        return "refused", "timeout"
    finally:
        s.close()


def run_as_nobody(fn, uid=65534, gid=65534, groups=(), timeout=15):
    """Fork; in the child drop to uid/gid (no supplementary groups) and run fn() -> int exit
    status. Returns the child's exit status (or -signal)."""
    pid = os.fork()
    if pid == 0:
        status = 3
        try:
            os.setgroups(list(groups))
            os.setgid(gid)
            os.setuid(uid)
            status = fn()
        except BaseException as e:  # noqa
            try:
                sys.stderr.write("child: %r\n" % (e,))
            except Exception:
                pass
            status = 3
        finally:
            os._exit(status)
    deadline = time.time() + timeout
    while True:
        wpid, st = os.waitpid(pid, os.WNOHANG)
        if wpid == pid:
            return os.waitstatus_to_exitcode(st)
        if time.time() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, st = os.waitpid(pid, 0)
            return os.waitstatus_to_exitcode(st)
        time.sleep(0.02)


class EventCollector:
    """Consumes GetContainerEvents in a thread."""

    def __init__(self, client):
        self.call = client.rt.GetContainerEvents(pb.GetEventsRequest())
        self.events = []
        self.error = None
        self.cond = threading.Condition()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            for ev in self.call:
                with self.cond:
                    self.events.append(ev)
                    self.cond.notify_all()
        except grpc.RpcError as e:
            with self.cond:
                self.error = e
                self.cond.notify_all()

    def seen(self, cid, etype):
        with self.cond:
            return any(e.container_id == cid and e.container_event_type == etype for e in self.events)

    def wait_for(self, cid, etype, timeout=10):
        deadline = time.time() + timeout
        with self.cond:
            while True:
                if any(e.container_id == cid and e.container_event_type == etype for e in self.events):
                    return True
                left = deadline - time.time()
                if left <= 0:
                    return False
                self.cond.wait(left)

    def summary(self):
        with self.cond:
            return [(e.container_id[:12], pb.ContainerEventType.Name(e.container_event_type)) for e in self.events]

    def stop(self):
        self.call.cancel()
        self.thread.join(5)
