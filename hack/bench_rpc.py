#!/usr/bin/env python3
"""CRI RPCs and scale: podshim vs containerd 1.6 with runc and with crun (Debian's), one run.

Called by hack/bench (which installs containerd, runc and crun, builds podshim, podshim-pause and
podshim-bench in release mode and sets up the CRI venv); runs alone too, as root, with the
venv's Python and PYTHONPATH holding the generated stubs (hack/cri-venv.sh), PODSHIM_BIN and
PODSHIM_IMAGE_DIR (a busybox image dir, hack/make-busybox-image.sh) set.

The client is podshim-bench (Sources/podshim-bench, PODSHIM_BENCH_BIN), the same binary and the
same requests for every runtime, pods in the host's network namespace (no CNI anywhere), each
pod with cgroup_parent /podshim-bench-<run id>/pod<uid> as a kubelet with the cgroupfs driver
gives (containerd 1.6 fails ListPodSandboxStats without one), each connection used for 100
calls at most (grpc-go's BDP PINGs would trip swift-nio-http2's control-frame flood limit; see
Sources/podshim-bench/BenchSession.swift):
  - `podshim-bench rpc`: each CRI RPC one at a time (read-only ones 5 x BENCH_RUNS times with 10
    background pods running, with the daemon's CPU time per call, a mean from /proc/PID/stat;
    the lifecycle ones in BENCH_RUNS pod cycles) and the pod and container cycles; a read-only
    RPC that fails is recorded as an error, the run goes on;
  - `podshim-bench scale` for each N in BENCH_SCALE (100,500,1000): N pods of 2 `sleep`
    containers started, BENCH_SCALE_CONCURRENCY (16) requests in flight, then all removed; the
    daemon's threads and RSS from /proc (containerd's own pid for containerd). Meanwhile this
    script samples, once a second, the RSS and threads of the runtime's processes that are not
    the pods' own: the daemon, plus containerd's shims (one per pod). containerd runs only the N
    up to BENCH_PEER_SCALE_MAX (500): a shim per pod (10-20 MB each) makes 1,000 pods cost it
    ~15 GB and minutes; podshim runs every N.

The runtimes run one after the other, never at once, each with private dirs under one temp dir
(volatile state on a tmpfs there, as /run is on a systemd host):
  - podshim: `podshim serve --network none` (copies of podshim, podshim-pause and podshim-bench
    under the temp dir, so that a rebuild cannot swap them), --cgroup-root a cgroup v2 dir made
    for this run;
  - containerd + runc and containerd + crun: hack/benchpeers.py's Containerd, CRI runtime
    io.containerd.runc.v2 with BinaryName runc or crun (on a hybrid cgroup host through a wrapper
    that hides the cgroup v2 mount, as hack/bench_all.py runs crun), podshim's busybox rootfs
    imported as docker.io/library/busybox:latest and podshim's pause binary as sandbox_image.
The client asks every runtime for image "busybox": podshim's image dir holds it under that name,
containerd normalizes it to docker.io/library/busybox:latest.

After each runtime is stopped, nothing of it may be left: processes (its daemon's descendants,
shims given its socket, anything whose root, cwd or exe is under its dirs or in its cgroups),
mounts under its dirs, the cgroups it made (podshim: under its --cgroup-root; containerd: new
ones named by a 64-hex id, or a new top k8s.io; both: anything below a pod's cgroup parent
<hierarchy>/podshim-bench-<run id>/pod<uid>), shim sockets in /run/containerd/s. What is found
is reported (JSON "leftovers", a warning, exit 1) and removed; the same cleanup runs on failure,
SIGTERM and Ctrl-C. The cgroup parents themselves, in every hierarchy, are the kubelet's part:
the client removes them after its pods, and this script after the runtime stops, silently.

Prints tables, merges everything under "cri" into BENCH_JSON (bench.json) and writes an SVG chart
(BENCH_SVG, default bench.svg beside BENCH_JSON). BENCH_README=1 also writes the chart to
docs/bench.svg and the tables into README.md between <!-- bench-cri:begin --> and
<!-- bench-cri:end -->. Goals, podshim / containerd+crun at p50: lifecycle RPCs <= 0.1,
read-only RPCs <= 0.5. Reports, never asserts a goal.
"""

import datetime
import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.dont_write_bytecode = True  # no hack/__pycache__
sys.path.insert(0, HERE)
import benchpeers  # noqa: E402  (also puts Tests/cri on sys.path)
from benchpeers import (CTR, HEX64, RUNC, SHIM, BenchError, Containerd, cgroup_mounts, cgroup_processes,  # noqa: E402
                        cgroup_snapshot, log, merge_json, pause_image_archive, rmdir_cgroups, rootfs_image_archive,
                        tail, unmount_all_under, warn)
from crihelpers import descendants, kill_recorded, pb, pbg, processes_of, proc_cmdline, proc_starttime  # noqa: E402

import grpc  # noqa: E402

PODSHIM = os.environ.get("PODSHIM_BIN") or os.path.join(REPO, ".build-release", "release", "podshim")
PAUSE = os.environ.get("PODSHIM_PAUSE_BIN") or os.path.join(os.path.dirname(os.path.abspath(PODSHIM)), "podshim-pause")
CLIENT = os.environ.get("PODSHIM_BENCH_BIN") or os.path.join(REPO, ".build-release", "release", "podshim-bench")
IMAGES = os.environ.get("PODSHIM_IMAGE_DIR", "")
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
WARMUP = int(os.environ.get("BENCH_RPC_WARMUP", "20"))
BACKGROUND = int(os.environ.get("BENCH_RPC_BACKGROUND_PODS", "10"))
SCALE = [int(x) for x in os.environ.get("BENCH_SCALE", "100,500,1000").replace(" ", "").split(",") if x]
CONCURRENCY = int(os.environ.get("BENCH_SCALE_CONCURRENCY", "16"))
PEER_SCALE_MAX = int(os.environ.get("BENCH_PEER_SCALE_MAX", "500"))  # containerd: N above it not run
CONTAINERS = 2
OUT = os.environ.get("BENCH_JSON", "bench.json")
SVG = os.environ.get("BENCH_SVG") or os.path.join(os.path.dirname(os.path.abspath(OUT)), "bench.svg")
README = os.environ.get("BENCH_README", "0") == "1"
ONLY = [r for r in os.environ.get("BENCH_RPC_RUNTIMES", "").split(",") if r]  # for debugging: a subset
IMAGE = "busybox"
CONTAINERD_IMAGE = "docker.io/library/busybox:latest"  # what containerd makes of "busybox"
RUNTIMES = ["podshim", "containerd+runc", "containerd+crun"]
BASELINE = "containerd+crun"
READ_RPCS = ["Version", "Status", "ListPodSandbox", "ListContainers", "PodSandboxStatus", "ContainerStatus",
             "ContainerStats", "ListContainerStats", "ListPodSandboxStats", "ListImages", "ImageStatus", "ImageFsInfo"]
LIFECYCLE_RPCS = ["RunPodSandbox", "CreateContainer", "StartContainer", "StopContainer", "RemoveContainer",
                  "StopPodSandbox", "RemovePodSandbox"]
CYCLES = ["pod_cycle", "container_cycle"]
GOALS = {"read-only": 0.5, "lifecycle": 0.1}
MARK_BEGIN, MARK_END = "<!-- bench-cri:begin -->", "<!-- bench-cri:end -->"
RPC_TIMEOUT = 60


# ---------------------------------------------------------------------------
# The runtimes
# ---------------------------------------------------------------------------

def status_fields(pid):
    """(VmRSS KB, Threads) of a live process, or None."""
    rss = threads = None
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    rss = int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads = int(line.split()[1])
    except (OSError, ValueError):
        return None
    return (rss or 0, threads or 0)


def wait_cri(socket_path, proc, what, log_path, timeout=30):
    deadline = time.time() + timeout
    while True:
        if proc.poll() is not None:
            raise BenchError("%s exited with %s:\n%s" % (what, proc.returncode, tail(log_path)))
        if os.path.exists(socket_path):
            ch = grpc.insecure_channel("unix://" + socket_path)
            try:
                return pbg.RuntimeServiceStub(ch).Version(pb.VersionRequest(version="v1"), timeout=1)
            except grpc.RpcError:
                pass
            finally:
                ch.close()
        if time.time() > deadline:
            raise BenchError("%s did not answer CRI Version in %ds:\n%s" % (what, timeout, tail(log_path)))
        time.sleep(0.1)


class Podshim:
    """`podshim serve --network none` on dirs under `base`, state on the tmpfs, pods' cgroups
    under a cgroup v2 dir of this run's."""

    def __init__(self, base, state, bindir, cgroup_root):
        self.name = "podshim"
        self.base = base
        self.dirs = [base, state]
        self.state = state
        self.root = os.path.join(base, "root")
        self.logs = os.path.join(base, "logs")
        self.socket = os.path.join(base, "podshim.sock")
        self.log_path = os.path.join(base, "podshim.log")
        self.binary = os.path.join(bindir, "podshim")
        self.pause = os.path.join(bindir, "podshim-pause")
        self.cgroup_root = cgroup_root
        self.proc = None
        self.recorded = {}  # {pid: starttime} of its descendants seen before it stopped
        self.run_ids = []  # the client's --run-id of each run against it (its pods' cgroup parents)
        for d in (self.root, self.logs, self.state):
            os.makedirs(d, exist_ok=True)

    def host_args(self):
        return ["--state-dir", self.state, "--root", self.root, "--image-dir", IMAGES, "--log-dir", self.logs,
                "--pause-binary", self.pause] + (["--cgroup-root", self.cgroup_root] if self.cgroup_root else [])

    def start(self):
        out = open(self.log_path, "wb")
        try:
            # Its own session: a Ctrl-C on the terminal reaches the client, which removes its pods
            # through this daemon, not the daemon.
            self.proc = subprocess.Popen([self.binary, "serve", "--socket", self.socket, "--network", "none"]
                                         + self.host_args(), stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, cwd="/", start_new_session=True)
        finally:
            out.close()
        v = wait_cri(self.socket, self.proc, "podshim", self.log_path)
        return "%s %s" % (v.runtime_name, v.runtime_version)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def side_pids(self):
        return []  # no shim: podshim's pods are its children

    def stop(self, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return
        self.recorded.update((p, proc_starttime(p)) for p in descendants(self.proc.pid))
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            warn("podshim ignored SIGTERM for %ds, SIGKILL" % timeout)
            self.proc.kill()
            self.proc.wait()

    def leftover_processes(self):
        found = {p: st for p, st in self.recorded.items() if st is not None and proc_starttime(p) == st}
        for d in self.dirs:
            found.update(processes_of(d))
        found.update(processes_of(os.path.dirname(self.binary)))  # the pause copy's exe
        if self.cgroup_root:
            found.update(cgroup_processes(os.path.relpath(self.cgroup_root, cgroup2_mount())))
        found.pop(os.getpid(), None)
        return found

    def ours_cgroup(self, path):
        """A cgroup this podshim made: under its --cgroup-root, not the root's podshim/ itself."""
        if not self.cgroup_root or not (path + "/").startswith(self.cgroup_root + "/"):
            return False
        return path not in (self.cgroup_root, os.path.join(self.cgroup_root, "podshim"))

    def cleanup(self):
        """`podshim cleanup` on its dirs: what a stopped podshim may have left (nothing, normally)."""
        r = subprocess.run([self.binary, "cleanup"] + self.host_args(), capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            warn("podshim cleanup exited %d: %s" % (r.returncode, (r.stdout + r.stderr)[-1000:]))

    def shim_sockets(self):
        return []


class ContainerdRuntime:
    """hack/benchpeers.py's Containerd in the host's network namespace (host-network pods only)."""

    def __init__(self, name, base, state, runtime, runtime_binary, sandbox_image):
        self.name = name
        self.base = base
        self.dirs = [base, state]
        self.cd = Containerd(base, state=state, sandbox_image=sandbox_image, runtime=runtime,
                             runtime_binary=runtime_binary)
        self.socket = self.cd.socket
        self.log_path = self.cd.log_path
        self.side = SideProcesses(self.cd.socket)
        self.run_ids = []  # the client's --run-id of each run against it (its pods' cgroup parents)

    def start(self, archives):
        self.cd.start()
        for archive in archives:
            self.cd.import_image(archive)
        ch = grpc.insecure_channel("unix://" + self.socket)
        try:
            v = pbg.RuntimeServiceStub(ch).Version(pb.VersionRequest(version="v1"), timeout=RPC_TIMEOUT)
        finally:
            ch.close()
        return "%s %s" % (v.runtime_name, v.runtime_version)

    @property
    def pid(self):
        return self.cd.pid

    def side_pids(self):
        return self.side.pids()

    def stop(self):
        self.cd.stop()

    def leftover_processes(self):
        found = self.cd.leftover_processes()
        found.pop(os.getpid(), None)
        return found

    @staticmethod
    def ours_cgroup(path):
        """A cgroup containerd's runtime made without a cgroup parent: /k8s.io/<64-hex id> (a
        containerd sandbox or container id) in some hierarchy. (With one, the client's, it is below
        /podshim-bench-<run id>/pod<uid>: bench_parent_leftovers. Not any 64-hex name anywhere:
        another podshim or containerd on the host, with pods of another bench run, makes those.)"""
        for mount in cgroup_mounts():
            rel = os.path.relpath(path, mount)
            if not rel.startswith(".."):
                parts = rel.split("/")
                return len(parts) >= 2 and parts[0] == "k8s.io" and any(HEX64.match(c) for c in parts[1:])
        return False

    def cleanup(self):
        pass

    def shim_sockets(self):
        return [s for s in set(self.cd.shim_sockets(self.cd.task_ids())) | set(self.cd.new_shim_sockets())
                if os.path.lexists(s)]


class SideProcesses:
    """containerd's shims (given our socket address): found by scanning /proc, each new pid's
    cmdline read once."""

    def __init__(self, socket_path):
        self.socket = socket_path
        self.known = {}  # pid -> (starttime, ours)

    def pids(self):
        out = []
        seen = set()
        for name in os.listdir("/proc"):
            if not name.isdigit():
                continue
            pid = int(name)
            seen.add(pid)
            st = proc_starttime(pid)
            if st is None:
                continue
            k = self.known.get(pid)
            if k is None or k[0] != st:
                argv = proc_cmdline(pid)
                k = self.known[pid] = (st, "-address" in argv and self.socket in argv and "-id" in argv)
            if k[1]:
                out.append(pid)
        for pid in list(self.known):
            if pid not in seen:
                del self.known[pid]
        return out


class Sampler(threading.Thread):
    """Once a second: the summed RSS and threads of the runtime's own processes (daemon + side
    processes, i.e. containerd's shims); keeps the peaks."""

    def __init__(self, runtime, interval=1.0):
        super().__init__(daemon=True)
        self.runtime, self.interval = runtime, interval
        self.stop_event = threading.Event()
        self.peak_rss_kb = self.peak_threads = self.peak_side = self.peak_side_rss_kb = self.peak_side_threads = 0
        self.samples = 0

    def sample(self):
        side = self.runtime.side_pids()
        rss = threads = side_rss = side_threads = 0
        for pid in [self.runtime.pid] + side:
            f = status_fields(pid)
            if f:
                rss += f[0]
                threads += f[1]
                if pid != self.runtime.pid:
                    side_rss += f[0]
                    side_threads += f[1]
        self.peak_rss_kb = max(self.peak_rss_kb, rss)
        self.peak_threads = max(self.peak_threads, threads)
        self.peak_side = max(self.peak_side, len(side))
        self.peak_side_rss_kb = max(self.peak_side_rss_kb, side_rss)
        self.peak_side_threads = max(self.peak_side_threads, side_threads)
        self.samples += 1

    def run(self):
        while not self.stop_event.wait(self.interval):
            try:
                self.sample()
            except Exception as e:  # noqa: BLE001  (a sample lost is no failure)
                warn("sampler: %s" % e)

    def finish(self):
        self.stop_event.set()
        self.join()
        return {"rss_kb_peak": self.peak_rss_kb, "threads_peak": self.peak_threads,
                "side_processes_peak": self.peak_side, "side_rss_kb_peak": self.peak_side_rss_kb,
                "side_threads_peak": self.peak_side_threads,
                "samples": self.samples}


def cgroup2_mount():
    for m, fstype in benchpeers.mountinfo():
        if fstype == "cgroup2":
            return m
    return None


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------

def run_client(argv, log_path, timeout):
    """Runs podshim-bench (in our process group: a Ctrl-C reaches it and it removes what it
    made); on any exception here (^C, SIGTERM, a timeout) it gets SIGINT and 120 s to clean up."""
    with open(log_path, "wb") as out:
        out.write(("$ %s\n" % " ".join(argv)).encode())
        out.flush()
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, cwd="/")
    try:
        rc = proc.wait(timeout)
    except BaseException:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        raise
    if rc != 0:
        last = [l for l in tail(log_path, 4000).splitlines() if l.startswith("podshim-bench:")][-3:]
        raise BenchError("%s exited %d: %s (log: %s)" % (os.path.basename(argv[0]) + " " + argv[1], rc,
                                                        " | ".join(last) or "?", log_path))


def remove_pods(socket_path, namespace, passes=1):
    """Stops and removes every container and pod of ours the runtime still lists (a client killed
    or cut off before its own teardown). With passes > 1 it lists again a second later while the
    last listing found something: a RunPodSandbox cut short may still be making its pod. Never
    timed. Returns how many pods it removed."""
    if not os.path.exists(socket_path):
        return 0
    ch = grpc.insecure_channel("unix://" + socket_path)
    rt = pbg.RuntimeServiceStub(ch)
    n = 0
    try:
        for i in range(passes):
            if i:
                time.sleep(1)
            pods = [p for p in rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=RPC_TIMEOUT).items
                    if p.metadata.namespace == namespace]
            ids = set(p.id for p in pods)
            containers = [c for c in rt.ListContainers(pb.ListContainersRequest(), timeout=RPC_TIMEOUT).containers
                          if c.pod_sandbox_id in ids]
            if not pods and not containers and i:
                break
            for c in containers:
                for call, req in ((rt.StopContainer, pb.StopContainerRequest(container_id=c.id, timeout=0)),
                                  (rt.RemoveContainer, pb.RemoveContainerRequest(container_id=c.id))):
                    try:
                        call(req, timeout=RPC_TIMEOUT)
                    except grpc.RpcError as e:
                        warn("cleaning container %s: %s" % (c.id[:13], e.details()))
            for p in pods:
                n += 1
                for call, req in ((rt.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=p.id)),
                                  (rt.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=p.id))):
                    try:
                        call(req, timeout=RPC_TIMEOUT)
                    except grpc.RpcError as e:
                        warn("cleaning pod %s: %s" % (p.id[:13], e.details()))
    except grpc.RpcError as e:
        warn("listing pods for cleanup: %s" % e.details())
    finally:
        ch.close()
    return n


# ---------------------------------------------------------------------------
# One runtime: start, measure, stop, check, clean
# ---------------------------------------------------------------------------

def measure(rt, namespace, outdir, client):
    """podshim-bench rpc, then scale for each N; the results. A step that fails is recorded under
    "errors" and the next one runs (the runtime's pods are removed between steps)."""
    res = {"rpc": None, "scale": {}, "errors": []}
    stem = os.path.join(outdir, rt.name.replace("+", "-"))

    def common():
        """The options of every client run, with a fresh run id (its pods' cgroup parent
        /podshim-bench-<id>/pod<uid>: check_and_clean looks there)."""
        rid = secrets.token_hex(4)
        rt.run_ids.append(rid)
        return ["--socket", rt.socket, "--image", IMAGE, "--label", rt.name, "--namespace", namespace, "--run-id", rid]
    log("%s: podshim-bench rpc, %d runs (%d calls per read-only RPC), %d background pods" % (
        rt.name, RUNS, RUNS * 5, BACKGROUND))
    start = time.time()
    try:
        run_client([client, "rpc"] + common() + ["--json", stem + "-rpc.json", "--runs", str(RUNS), "--warmup",
                                                 str(WARMUP), "--background-pods", str(BACKGROUND), "--host-network",
                                                 "--pid", str(rt.pid)],
                   stem + "-rpc.log", timeout=3600)
        with open(stem + "-rpc.json") as f:
            res["rpc"] = json.load(f)
        res["rpc_wall_s"] = time.time() - start
    except BenchError as e:
        res["errors"].append("rpc: %s" % e)
        warn("%s: %s" % (rt.name, e))
        if remove_pods(rt.socket, namespace, passes=3):
            warn("%s: removed pods the client left" % rt.name)
    for n in SCALE:
        if rt.name != "podshim" and n > PEER_SCALE_MAX:
            res["scale"][str(n)] = {"not_run": "N > BENCH_PEER_SCALE_MAX (%d)" % PEER_SCALE_MAX}
            log("%s: scale %d not run (N > BENCH_PEER_SCALE_MAX %d)" % (rt.name, n, PEER_SCALE_MAX))
            continue
        log("%s: podshim-bench scale, %d pods x %d containers, %d in flight" % (rt.name, n, CONTAINERS, CONCURRENCY))
        out = "%s-scale-%d.json" % (stem, n)
        sampler = Sampler(rt)
        sampler.sample()
        sampler.start()
        try:
            run_client([client, "scale"] + common() + ["--json", out, "--pods", str(n), "--containers", str(CONTAINERS),
                                                     "--concurrency", str(CONCURRENCY), "--pid", str(rt.pid)],
                       "%s-scale-%d.log" % (stem, n), timeout=max(1800, n * 10))
            with open(out) as f:
                s = json.load(f)
        except BenchError as e:
            res["errors"].append("scale %d: %s" % (n, e))
            warn("%s: %s" % (rt.name, e))
            if remove_pods(rt.socket, namespace, passes=3):
                warn("%s: removed pods the client left" % rt.name)
            continue
        finally:
            sampled = sampler.finish()
        s["sampled"] = sampled
        res["scale"][str(n)] = s
        log("%s: %d pods started in %.2f s, removed in %.2f s; daemon RSS %s -> %s KB (%s KB a pod), threads peak %s;"
            " with shims: RSS peak %.1f MB, %d shims (%.1f MB, %d threads)" % (
                rt.name, n, s["start_s"], s["remove_s"], s.get("rss_kb_start"), s.get("rss_kb_end"),
                s.get("rss_kb_per_pod"), s.get("threads_peak"), sampled["rss_kb_peak"] / 1024,
                sampled["side_processes_peak"], sampled["side_rss_kb_peak"] / 1024, sampled["side_threads_peak"]))
    return res


def check_and_clean(rt, cg_before, namespace):
    """After rt.stop(): what it left, then that removed. Returns {what: [..]} of the leftovers."""
    left = {}
    procs = rt.leftover_processes()
    for rid in rt.run_ids:  # anything still in the pods' cgroup parents
        procs.update(cgroup_processes(BENCH_CGROUP_PREFIX + rid))
    procs.pop(os.getpid(), None)
    left["processes"] = ["%d %s" % (p, " ".join(proc_cmdline(p))[:120]) for p in sorted(procs)]
    left["mounts"] = sorted(m for d in rt.dirs for m in benchpeers.mounts_under(d))
    new = cgroup_snapshot() - cg_before
    ours = sorted(d for d in new if rt.ours_cgroup(d))
    # (Parents a runtime makes once and keeps, as on a real node, are not ours_cgroup: /k8s.io,
    # <cgroup-root>/podshim.)
    left["cgroups"] = ours_leaf_or_busy(sorted(set(ours) | set(bench_parent_leftovers(rt.run_ids))))
    left["shim_sockets"] = sorted(rt.shim_sockets())
    left = {k: v for k, v in left.items() if v}
    if left:
        warn("%s left behind: %s" % (rt.name, json.dumps(left, indent=1)))
    # Clean, whatever the check found.
    killed = kill_recorded(procs)
    if killed:
        warn("%s: killed leftover processes %s" % (rt.name, killed))
    rt.cleanup()
    for d in rt.dirs:
        still = unmount_all_under(d)
        if still:
            warn("%s: still mounted: %s" % (rt.name, still))
    new = cgroup_snapshot() - cg_before
    extra = new_containerd_parents(new) if isinstance(rt, ContainerdRuntime) else []
    # The pods' cgroup parents (the kubelet's part; the client removed them unless something was
    # left in them) in every hierarchy, only this run's ids.
    stuck = rmdir_cgroups(sorted(set([d for d in new if rt.ours_cgroup(d)] + extra + bench_parent_dirs(rt.run_ids))))
    if stuck:
        warn("%s: cgroups not removed: %s" % (rt.name, stuck))
    if isinstance(rt, ContainerdRuntime):
        removed, busy = rt.cd.remove_shim_sockets()
        if busy:
            warn("%s: shim sockets still listened on: %s" % (rt.name, busy))
    return left


BENCH_CGROUP_PREFIX = "podshim-bench-"  # the client's cgroup parents: /podshim-bench-<run id>/pod<uid>


def bench_parent_dirs(run_ids):
    """Every directory under <hierarchy>/podshim-bench-<id> for these run ids, in every hierarchy."""
    out = []
    for mount in cgroup_mounts():
        for rid in run_ids:
            top = os.path.join(mount, BENCH_CGROUP_PREFIX + rid)
            if os.path.isdir(top):
                out += [d for d, _, _ in os.walk(top)]
    return out


def bench_parent_leftovers(run_ids):
    """What a runtime left in the pods' cgroup parents: any cgroup below a pod's
    (<top>/pod<uid>/<leaf>), and any of them with processes in it."""
    out = []
    for d in bench_parent_dirs(run_ids):
        parts = d.split("/")
        below_top = next((len(parts) - i - 1 for i, c in enumerate(parts) if c.startswith(BENCH_CGROUP_PREFIX)), 0)
        if below_top >= 2 or cgroup_procs(d):
            out.append(d)
    return out


def cgroup_procs(d):
    try:
        with open(os.path.join(d, "cgroup.procs")) as f:
            return f.read().split()
    except OSError:
        return []


def ours_leaf_or_busy(ours):
    """The cgroups that count as left behind: every one made during the run, except empty
    parents of others (their children are counted)."""
    return [d for d in ours if cgroup_procs(d) or not any(o.startswith(d + "/") for o in ours)]


def new_containerd_parents(new):
    """New, now empty /k8s.io parents (in any hierarchy) that containerd's runtime made."""
    out = []
    for mount in cgroup_mounts():
        d = os.path.join(mount, "k8s.io")
        if d in new:
            out.append(d)
    return out


# ---------------------------------------------------------------------------
# Figures: ratios, goals, tables, the chart, README
# ---------------------------------------------------------------------------

def rpc_stats(results, runtime, name):
    r = results["runtimes"].get(runtime, {}).get("rpc") or {}
    return (r.get("rpcs", {}).get(name) or r.get("cycles", {}).get(name))


def analyse(results):
    """Adds ratios and goals (podshim / containerd+crun at p50) to results."""
    ratios, goals = {}, {}
    for kind, names in (("read-only", READ_RPCS), ("lifecycle", LIFECYCLE_RPCS), ("cycle", CYCLES)):
        for name in names:
            p, b = rpc_stats(results, "podshim", name), rpc_stats(results, BASELINE, name)
            if not p or not b or "p50_us" not in p or "p50_us" not in b or not b["p50_us"]:
                continue
            ratios[name] = {"p50": p["p50_us"] / b["p50_us"], "p99": p["p99_us"] / b["p99_us"] if b["p99_us"] else None}
            runc = rpc_stats(results, "containerd+runc", name)
            if runc and runc.get("p50_us"):
                ratios[name]["p50_vs_runc"] = p["p50_us"] / runc["p50_us"]
            if p.get("server_cpu_us") is not None and b.get("server_cpu_us"):
                # The daemon's mean CPU time per call, podshim ÷ containerd+crun.
                ratios[name]["server_cpu"] = p["server_cpu_us"] / b["server_cpu_us"]
            if kind in GOALS:
                goals[name] = {"kind": kind, "goal": GOALS[kind], "value": ratios[name]["p50"],
                               "met": ratios[name]["p50"] <= GOALS[kind]}
    results["ratio_podshim_containerd_crun"] = ratios
    results["goals"] = goals
    met = [g["met"] for g in goals.values()]
    results["goals_met"] = "%d of %d" % (sum(met), len(met))


def fmt_us(us):
    if us is None:
        return "-"
    if us < 1000:
        return "%.0f µs" % us if us >= 100 else "%.1f µs" % us
    if us < 1e6:
        return "%.*f ms" % (2 if us < 1e4 else 1 if us < 1e5 else 0, us / 1000)
    return "%.2f s" % (us / 1e6)


def cell(s):
    if not s:
        return "-"
    if s.get("unimplemented"):
        return "unimplemented"
    if s.get("error"):
        return "error"
    return "%s / %s" % (fmt_us(s["p50_us"]), fmt_us(s["p99_us"]))


def cpu_cell(s):
    """The daemon's mean CPU per call, µs (read-only RPCs)."""
    if not s or s.get("server_cpu_us") is None:
        return "error" if s and s.get("error") else "-"
    v = s["server_cpu_us"]
    return "%.0f" % v if v >= 100 else "%.1f" % v


def table_rows(results):
    """[(rpc, kind, {runtime: cell}, ratio text, goal text, {runtime: server CPU}, server CPU ratio text)]"""
    rows = []
    for kind, names in (("read-only", READ_RPCS), ("lifecycle", LIFECYCLE_RPCS), ("cycle", CYCLES)):
        for name in names:
            cells = {rt: cell(rpc_stats(results, rt, name)) for rt in RUNTIMES}
            cpu = {rt: (cpu_cell(rpc_stats(results, rt, name)) if kind == "read-only" else "") for rt in RUNTIMES}
            r = results["ratio_podshim_containerd_crun"].get(name)
            g = results["goals"].get(name)
            rows.append((name, kind, cells, "%.2f" % r["p50"] if r else "-",
                         ("≤ %g %s" % (g["goal"], "met" if g["met"] else "not met")) if g else "", cpu,
                         "%.2f" % r["server_cpu"] if r and r.get("server_cpu") is not None else
                         ("-" if kind == "read-only" else "")))
    return rows


def scale_rows(results):
    """[(label, {runtime: text})] per N."""
    rows = []
    for n in SCALE:
        per = {rt: (results["runtimes"].get(rt, {}).get("scale") or {}).get(str(n)) for rt in RUNTIMES}
        first = [True]

        def row(label, fn):
            def text(s):
                if not s:
                    return "-"
                if s.get("not_run"):  # a peer above BENCH_PEER_SCALE_MAX: said once, on the first row
                    return "not run (N > BENCH_PEER_SCALE_MAX)" if first[0] else "-"
                return fn(s)
            rows.append((label, {rt: text(s) for rt, s in per.items()}))
            first[0] = False
        pre = "%d pods × %d: " % (n, CONTAINERS)
        row(pre + "start (s)", lambda s: "%.2f" % s["start_s"])
        row(pre + "remove (s)", lambda s: "%.2f" % s["remove_s"])
        row(pre + "daemon threads start / peak / end",
            lambda s: "%s / %s / %s" % (s.get("threads_start"), s.get("threads_peak"), s.get("threads_end")))
        row(pre + "daemon RSS per running pod (KB)", lambda s: "%.0f" % s["rss_kb_per_pod"] if s.get("rss_kb_per_pod") is not None else "-")
        row(pre + "daemon RSS start → end (MB)",
            lambda s: "%.1f → %.1f" % (s["rss_kb_start"] / 1024, s["rss_kb_end"] / 1024) if s.get("rss_kb_start") else "-")
        row(pre + "daemon + shims: RSS peak (MB), threads peak",
            lambda s: "%.0f, %d" % (s["sampled"]["rss_kb_peak"] / 1024, s["sampled"]["threads_peak"]))
        row(pre + "shims alone: peak count, RSS (MB), threads",
            lambda s: "%d, %.0f, %d" % (s["sampled"]["side_processes_peak"], s["sampled"]["side_rss_kb_peak"] / 1024,
                                        s["sampled"].get("side_threads_peak", 0))
            if s["sampled"]["side_processes_peak"] else "none")
    return rows


def print_report(results):
    v = results["versions"]
    print("CRI RPCs, podshim-bench (one call at a time, <= 100 per connection, %d runs, read-only RPCs %d calls each, %d background pods); "
          "p50 / p99:" % (RUNS, RUNS * 5, BACKGROUND))
    print("  " + "; ".join("%s: %s" % (k, v[k]) for k in RUNTIMES if k in v))
    w = 22
    print("%-*s %-21s %-21s %-21s %7s  %-13s | %s" % (
        w, "RPC", "podshim", "containerd+runc", "containerd+crun", "÷ crun", "goal (p50)",
        "server CPU µs per call (mean): podshim, c+runc, c+crun, ÷ crun"))
    for name, kind, cells, ratio, goal, cpu, cpu_ratio in table_rows(results):
        print("%-*s %-21s %-21s %-21s %7s  %-13s | %s" % (
            w, name, cells["podshim"], cells["containerd+runc"], cells["containerd+crun"], ratio, goal,
            "%8s %8s %8s %7s" % (cpu["podshim"], cpu["containerd+runc"], cpu["containerd+crun"], cpu_ratio)
            if kind == "read-only" else ""))
    print("goals met: %s" % results["goals_met"])
    errors = ["%s %s: %s" % (rt, n, s["error"]) for rt in RUNTIMES for n in READ_RPCS
              for s in [rpc_stats(results, rt, n)] if s and s.get("error")]
    for e in errors:
        print("error: " + e)
    print("Scale (%d in flight):" % CONCURRENCY)
    for label, cells in scale_rows(results):
        print("%-58s %-18s %-18s %-18s" % (label, cells["podshim"], cells["containerd+runc"], cells["containerd+crun"]))
    prof = (results["runtimes"].get("podshim", {}).get("rpc") or {}).get("profile")
    if prof:
        print("podshim StartContainer stages (p50 / p99): " + ", ".join(
            "%s %s / %s" % (p["stage"], fmt_us(p.get("p50_us")), fmt_us(p.get("p99_us"))) for p in prof))
    for rt in RUNTIMES:
        if rt in results["leftovers"]:
            lo = results["leftovers"][rt]
            print("%s left behind: %s" % (rt, "nothing" if not lo else json.dumps(lo)))
    print("JSON (key \"cri\"): %s; chart: %s" % (OUT, SVG))


def markdown(results):
    v = results["versions"]
    lines = [
        "Measured %s, %d CPUs, kernel %s; %s; %d runs (read-only RPCs %d calls each, %d background pods), "
        "one call at a time, at most 100 calls per connection; p50 / p99; ratio = podshim ÷ containerd+crun at p50." % (
            results["date"], results["machine"]["cpus"], results["machine"]["kernel"],
            ", ".join("%s (%s)" % (k, v[k]) for k in RUNTIMES if k in v), RUNS, RUNS * 5, BACKGROUND),
        "",
        "Server CPU µs: the daemon's CPU time (utime + stime from /proc/PID/stat: podshim's, containerd's "
        "own with its CRI plugin, not the shims') per call over a read-only RPC's timed calls, a mean; "
        "CPU ratio = podshim ÷ containerd+crun.",
        "",
        "| RPC | podshim | containerd + runc | containerd + crun | ratio | goal | server CPU µs podshim "
        "| server CPU µs containerd + runc | server CPU µs containerd + crun | CPU ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, kind, cells, ratio, goal, cpu, cpu_ratio in table_rows(results):
        label = name if kind != "cycle" else "%s (whole cycle)" % name
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
            label, cells["podshim"], cells["containerd+runc"], cells["containerd+crun"], ratio, goal,
            cpu["podshim"], cpu["containerd+runc"], cpu["containerd+crun"], cpu_ratio))
    lines += ["", "Scale, %d requests in flight, each worker on its own connection; daemon figures from /proc of "
                  "podshim or containerd, \"+ shims\" sampled once a second; containerd not run above %d pods "
                  "(BENCH_PEER_SCALE_MAX: a shim per pod):" % (CONCURRENCY, PEER_SCALE_MAX), "",
              "| measure | podshim | containerd + runc | containerd + crun |", "|---|---|---|---|"]
    for label, cells in scale_rows(results):
        lines.append("| %s | %s | %s | %s |" % (label, cells["podshim"], cells["containerd+runc"], cells["containerd+crun"]))
    lines += ["", "![CRI RPC latency, p50, log scale](docs/bench.svg)"]
    return "\n".join(lines) + "\n"


def write_readme(results):
    path = os.path.join(REPO, "README.md")
    with open(path) as f:
        text = f.read()
    if MARK_BEGIN not in text or MARK_END not in text:
        warn("README.md has no %s ... %s markers; not updating it" % (MARK_BEGIN, MARK_END))
        return
    i, j = text.index(MARK_BEGIN) + len(MARK_BEGIN), text.index(MARK_END)
    text = text[:i] + "\n" + markdown(results) + text[j:]
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)


COLORS = {"podshim": "#1b9e77", "containerd+runc": "#7570b3", "containerd+crun": "#d95f02"}


def svg_chart(results):
    """Horizontal bars of p50 latency per RPC and runtime on a log axis, goal marks, legend."""
    import math

    def esc(s):
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    groups = [("Read-only RPCs — goal: podshim ≤ 0.5 × containerd+crun", READ_RPCS, 0.5),
              ("Lifecycle RPCs — goal: podshim ≤ 0.1 × containerd+crun", LIFECYCLE_RPCS, 0.1),
              ("Whole cycles (pod: Run…Remove of a pod and its container; container: Create…Remove)", CYCLES, None)]
    values = [s["p50_us"] for rt in RUNTIMES for _, names, _ in groups for n in names
              for s in [rpc_stats(results, rt, n)] if s and s.get("p50_us")]
    if not values:
        return None
    lo = 10 ** math.floor(math.log10(max(min(values), 1) * 0.8))
    hi = 10 ** math.ceil(math.log10(max(values) * 1.05))
    width, left, right_col = 1000, 170, 90
    x0, x1 = left + 10, width - right_col - 20
    bar_h, bar_gap, row_gap = 7, 1, 9
    row_h = len(RUNTIMES) * (bar_h + bar_gap) + row_gap

    def x(us):
        return x0 + (x1 - x0) * (math.log10(max(us, lo)) - math.log10(lo)) / (math.log10(hi) - math.log10(lo))

    out = []
    y = 78
    body = []
    for title, names, goal in groups:
        body.append('<text x="10" y="%d" class="group">%s</text>' % (y + 14, esc(title)))
        y += 24
        for n in names:
            top = y
            body.append('<text x="%d" y="%d" class="label">%s</text>' % (left, top + row_h / 2 - 2, esc(n)))
            texts = []  # over the bars and the goal mark
            for k, rt in enumerate(RUNTIMES):
                s = rpc_stats(results, rt, n)
                by = top + k * (bar_h + bar_gap)
                if s and s.get("p50_us"):
                    body.append('<rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"><title>%s %s p50 %s, p99 %s'
                                '</title></rect>' % (x0, by, max(1.0, x(s["p50_us"]) - x0), bar_h, COLORS[rt], esc(rt),
                                                     esc(n), fmt_us(s["p50_us"]), fmt_us(s["p99_us"])))
                    texts.append('<text x="%.1f" y="%d" class="value">%s</text>' % (x(s["p50_us"]) + 3, by + bar_h,
                                                                                   esc(fmt_us(s["p50_us"]))))
                elif s and s.get("unimplemented"):
                    texts.append('<text x="%d" y="%d" class="value na">unimplemented</text>' % (x0 + 3, by + bar_h))
                elif s and s.get("error"):
                    texts.append('<text x="%d" y="%d" class="value na"><title>%s</title>error</text>' % (
                        x0 + 3, by + bar_h, esc(s["error"])))
            base = rpc_stats(results, BASELINE, n)
            if goal and base and base.get("p50_us"):
                gx = x(goal * base["p50_us"])
                body.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="goal"><title>goal: %s</title></line>' % (
                    gx, top - 2, gx, top + len(RUNTIMES) * (bar_h + bar_gap), fmt_us(goal * base["p50_us"])))
            body += texts
            r = results["ratio_podshim_containerd_crun"].get(n)
            if r:
                met = results["goals"].get(n, {}).get("met")
                cls = "ratio" + ("" if met is None else (" met" if met else " miss"))
                body.append('<text x="%d" y="%d" class="%s">%.2f×</text>' % (width - 20, top + row_h / 2 - 2, cls,
                                                                              r["p50"]))
            y += row_h
        y += 6
    height = y + 40
    # Axis: decades labelled, 2 and 5 as minor lines.
    grid = []
    d = lo
    while d <= hi * 1.001:
        for m in (1, 2, 5):
            v = d * m
            if v > hi * 1.001:
                break
            grid.append('<line x1="%.1f" y1="70" x2="%.1f" y2="%d" class="%s"/>' % (
                x(v), x(v), height - 34, "major" if m == 1 else "minor"))
            if m == 1:
                grid.append('<text x="%.1f" y="%d" class="axis" text-anchor="middle">%s</text>' % (
                    x(v), height - 18, fmt_us(v).replace(".0 ", " ").replace(".00 ", " ")))
        d *= 10
    v = results["versions"]
    out.append('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" '
               'font-family="DejaVu Sans, Helvetica, Arial, sans-serif">' % (width, height, width, height))
    out.append("<style>.title{font-size:16px;font-weight:bold}.sub{font-size:11px;fill:#444}"
               ".group{font-size:12px;font-weight:bold;fill:#222}.label{font-size:11px;text-anchor:end;fill:#111}"
               ".value{font-size:9px;fill:#333;paint-order:stroke;stroke:white;stroke-width:2px;stroke-linejoin:round}.na{fill:#999}.axis{font-size:10px;fill:#444}"
               ".major{stroke:#bbb;stroke-width:1}.minor{stroke:#e6e6e6;stroke-width:1}"
               ".goal{stroke:#c00;stroke-width:2;stroke-dasharray:3,2}"
               ".ratio{font-size:11px;text-anchor:end;fill:#333}.met{fill:#1a7f37;font-weight:bold}"
               ".miss{fill:#c00;font-weight:bold}.legend{font-size:11px}</style>")
    out.append('<rect width="100%" height="100%" fill="white"/>')
    out.append('<text x="10" y="22" class="title">CRI RPC latency, p50 (log scale): podshim vs containerd %s with '
               'runc and crun</text>' % esc(results["containerd_version"]))
    out.append('<text x="10" y="40" class="sub">%s</text>' % esc(
        "%s, %d CPUs, kernel %s; podshim-bench, one call at a time, ≤ 100 per connection, %d runs (read-only: %d calls), %d background pods, "
        "host network" % (results["date"], results["machine"]["cpus"], results["machine"]["kernel"], RUNS, RUNS * 5,
                          BACKGROUND)))
    if not results.get("complete", True):
        missing = [rt for rt in RUNTIMES if (results["runtimes"].get(rt) or {}).get("errors")]
        out.append('<text x="%d" y="40" class="sub miss" text-anchor="end">incomplete: %s failed (bench.json)</text>' % (
            width - 10, esc(", ".join(missing))))
    lx = 10
    for rt in RUNTIMES:
        label = rt + (" (%s)" % v[rt].split()[-1] if rt == "podshim" and rt in v else "")
        out.append('<rect x="%d" y="52" width="12" height="10" fill="%s"/><text x="%d" y="61" class="legend">%s</text>'
                   % (lx, COLORS[rt], lx + 16, esc(label)))
        lx += 16 + 7 * len(label) + 18
    out.append('<line x1="%d" y1="50" x2="%d" y2="64" class="goal"/><text x="%d" y="61" class="legend">goal '
               '(0.5× or 0.1× containerd+crun p50)</text>' % (lx + 4, lx + 4, lx + 12))
    out.append('<text x="%d" y="61" class="legend" text-anchor="end">podshim ÷ crun</text>' % (width - 10))
    out += grid + body
    out.append('<text x="%.1f" y="%d" class="axis" text-anchor="middle">p50 latency per call (log scale)</text>' % (
        (x0 + x1) / 2, height - 4))
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------

def preflight():
    problems = []
    if os.geteuid() != 0:
        problems.append("needs root")
    for path in (PODSHIM, PAUSE, CLIENT, benchpeers.CONTAINERD, CTR, SHIM, RUNC, benchpeers.CRUN):
        if not os.access(path, os.X_OK):
            problems.append("missing %s" % path)
    if not IMAGES or not os.path.isdir(os.path.join(IMAGES, IMAGE, "rootfs")):
        problems.append("PODSHIM_IMAGE_DIR (%r) holds no %s/rootfs (hack/make-busybox-image.sh)" % (IMAGES, IMAGE))
    if not SCALE or any(n <= 0 for n in SCALE):
        problems.append("BENCH_SCALE must list positive pod counts")
    if problems:
        raise BenchError("; ".join(problems) + " (hack/bench installs and builds them)")


def main():
    try:
        preflight()
    except BenchError as e:
        print("bench_rpc: %s" % e, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench_rpc: terminated"))
    tag = secrets.token_hex(3)
    base = tempfile.mkdtemp(prefix="podshim-bench-rpc-", dir="/tmp")
    os.chmod(base, 0o711)
    volatile = os.path.join(base, "run")
    namespace = "bench-rpc-" + tag
    cg_root = None
    run_created = not os.path.exists("/run/containerd")
    results = {"date": datetime.date.today().isoformat(), "runs": RUNS, "warmup": WARMUP,
               "background_pods": BACKGROUND, "scale_pods": SCALE, "scale_containers": CONTAINERS,
               "scale_concurrency": CONCURRENCY, "peer_scale_max": PEER_SCALE_MAX, "image": IMAGE,
               "machine": {"cpus": os.cpu_count(), "kernel": os.uname().release},
               "containerd_version": benchpeers.containerd_version(),
               "versions": {}, "runtimes": {}, "leftovers": {}, "notes": []}
    failure = None
    current = None
    try:
        os.makedirs(volatile)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0711,size=4g", "podshim-bench-rpc", volatile], check=True)
        bindir = os.path.join(base, "bin")
        os.makedirs(bindir)
        for src, name in ((PODSHIM, "podshim"), (PAUSE, "podshim-pause"), (CLIENT, "podshim-bench")):
            shutil.copy2(os.path.realpath(src), os.path.join(bindir, name))
        client = os.path.join(bindir, "podshim-bench")
        outdir = os.path.join(base, "out")
        os.makedirs(outdir)
        crun_bin, crun_note = benchpeers.crun_binary(bindir)
        if crun_note:
            results["notes"].append(crun_note)
            log(crun_note)
        results["runc"], results["crun"] = benchpeers.tool_version(RUNC), benchpeers.tool_version(benchpeers.CRUN)
        sandbox_image = "localhost/podshim-bench-pause:" + tag
        archives = [os.path.join(base, "pause-image.tar"), os.path.join(base, "busybox-image.tar")]
        pause_image_archive(archives[0], PAUSE, sandbox_image)
        rootfs_image_archive(archives[1], os.path.join(IMAGES, IMAGE, "rootfs"), CONTAINERD_IMAGE)
        v2 = cgroup2_mount()
        if v2:
            cg_root = os.path.join(v2, "podshim-bench-rpc-" + tag)
            os.mkdir(cg_root)

        def make(name):
            d = os.path.join(base, name.replace("+", "-"))
            st = os.path.join(volatile, name.replace("+", "-"))
            if name == "podshim":
                return Podshim(d, st, bindir, cg_root)
            runtime = name.split("+")[1]
            return ContainerdRuntime(name, d, st, runtime, crun_bin if runtime == "crun" else RUNC, sandbox_image)

        for name in RUNTIMES:
            if ONLY and name not in ONLY:
                continue
            cg_before = cgroup_snapshot()
            rt = current = make(name)
            version = rt.start() if name == "podshim" else rt.start(archives)
            results["versions"][name] = version + ("" if name == "podshim" else ", %s %s" % (
                name.split("+")[1], results[name.split("+")[1]]))
            log("%s: %s (pid %d)" % (name, results["versions"][name], rt.pid))
            try:
                results["runtimes"][name] = measure(rt, namespace, outdir, client)
            finally:
                current = None
                if remove_pods(rt.socket, namespace):
                    warn("%s: removed pods the client left" % name)
                rt.stop()
                results["leftovers"][name] = check_and_clean(rt, cg_before, namespace)
            r = results["runtimes"][name]
            # The client's own notes (an RPC unimplemented, teardown trouble).
            notes = list((r["rpc"] or {}).get("errors", []))
            for sc in r["scale"].values():
                notes += sc.get("errors", [])
            if notes:
                results["notes"].append("%s: %s" % (name, "; ".join(notes[:10])))
    except BenchError as e:
        failure = str(e)
    except KeyboardInterrupt:
        failure = "interrupted"
    except Exception as e:  # noqa: BLE001  (cleanup below, then the traceback)
        failure = "%s: %s" % (type(e).__name__, e)
        import traceback
        traceback.print_exc()
    finally:
        if current is not None:  # failed or interrupted while it ran: its pods, the daemon, its leftovers
            try:
                remove_pods(current.socket, namespace, passes=3)
            except Exception as e:  # noqa: BLE001
                warn("removing pods: %s" % e)
            current.stop()
            if failure:
                sys.stderr.write("%s log:\n%s\n" % (current.name, tail(current.log_path)))
            results["leftovers"][current.name] = check_and_clean(current, cg_before, namespace)
        if failure or any(results["leftovers"].values()) or any(
                r.get("errors") for r in results["runtimes"].values()):
            keep_logs(base, tag)
        teardown(base, cg_root, run_created)

    if failure:
        print("bench_rpc: FAILED: %s" % failure, file=sys.stderr)
        return 1
    analyse(results)
    failed = {n: r["errors"] for n, r in results["runtimes"].items() if r.get("errors")}
    results["complete"] = not failed
    merge_json(OUT, "cri", results)
    chart = svg_chart(results)
    # README.md and docs/bench.svg only from a complete run.
    targets = [SVG] + ([os.path.join(REPO, "docs", "bench.svg")] if README and not failed else [])
    for path in targets:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w") as f:
            f.write(chart or "")
    if README and not failed:
        write_readme(results)
    print_report(results)
    status = 0
    for name, errors in failed.items():
        print("bench_rpc: %s: %s" % (name, "; ".join(errors)), file=sys.stderr)
        status = 1
    if failed and README:
        print("bench_rpc: incomplete run: README.md and docs/bench.svg left as they were", file=sys.stderr)
    if any(results["leftovers"].values()):
        print("bench_rpc: a runtime left something behind (see above; removed since)", file=sys.stderr)
        status = 1
    return status


def keep_logs(base, tag):
    """The daemons' and the client's logs, kept (the temp dir goes) for a look after a failure."""
    keep = os.path.join(tempfile.gettempdir(), "podshim-bench-rpc-logs-" + tag)
    for src in glob.glob(os.path.join(base, "*", "*.log")) + glob.glob(os.path.join(base, "out", "*")):
        dst = os.path.join(keep, os.path.relpath(src, base))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        try:
            shutil.copy(src, dst)
        except OSError:
            pass
    warn("logs kept in %s" % keep)


def teardown(base, cg_root, run_created):
    if cg_root:
        left = rmdir_cgroups([d for d, _, _ in os.walk(cg_root)])
        if left:
            warn("cgroups not removed: %s" % left)
    still = unmount_all_under(base)
    if still:
        warn("still mounted under %s: %s; not removing it" % (base, still))
        return
    subprocess.run(["rm", "-rf", "--one-file-system", base])
    if run_created:  # /run/containerd and its s/, if a containerd of ours made them and they are empty
        for d in (benchpeers.SHIM_SOCKET_DIR, "/run/containerd"):
            try:
                os.rmdir(d)
            except OSError:
                pass


if __name__ == "__main__":
    sys.exit(main())
