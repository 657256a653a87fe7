#!/usr/bin/env python3
"""RunPodSandbox with CNI: podshim vs containerd (Debian's 1.6, runc), the same conflist, one run.

Called by hack/bench (which installs containerd, runc and containernetworking-plugins, builds
podshim in release mode and sets up the CRI venv); runs alone too, as root, with the venv's
Python, PYTHONPATH holding the generated stubs (hack/cri-venv.sh) and PODSHIM_BIN set.

Each runtime runs in a throw-away "node" network namespace of its own, pinned on a file under the
bench's temp dir (`unshare --net=FILE`, lo up): the daemon is started through `nsenter --net`, so
the plugins it runs and every bridge, veth, iptables rule and sysctl they touch live and die
there; no traffic leaves those namespaces. Both get the same conflist (bridge, isGateway, ipMasq,
host-local 10.x.y.0/24 with a default route, portmap with portMappings), host-local's dataDir
being a directory of each under the temp dir. containerd gets a private config (root, state,
sockets, runc root and pod netns pins all under the temp dir) and a pause image built here (an
OCI archive of podshim's static pause binary, imported with ctr: nothing is pulled).
Volatile state (podshim's --state-dir, containerd's state) is on a tmpfs, as /run is on a systemd
host; persistent state (podshim's --root, containerd's root) on the temp dir's disk.

The same client code drives both over CRI runtime.v1: a few warm-ups, then BENCH_RUNS (30)
iterations, alternating which runtime goes first, of RunPodSandbox (timed), PodSandboxStatus
(must carry network.ip, else the bench fails), StopPodSandbox + RemovePodSandbox (timed together).
Afterwards both nodes must hold no host-local lease and no veth. Prints p50/p90/p99/mean and the
ratios podshim/containerd, and merges them under "cni" into BENCH_JSON (bench.json).

Everything is removed at the end, also on failure: pods through CRI, both daemons (SIGTERM, then
SIGKILL), then processes proven ours (containerd's shims, found by the socket address we gave
them, their descendants, anything whose root, cwd or exe is under the temp dir), mounts under the
temp dir (pod netns pins, shm, rootfs, tmpfs, the node pins: the node namespaces go with them),
the cgroups under the cgroup parent named after this run, the shim sockets and CNI cache files
containerd left outside the temp dir (by the names it derives from our ids), and the temp dir.
That setup and teardown (Testbed) are shared with hack/bench_streaming.py; containerd and the
small helpers are hack/benchpeers.py's.
"""

import json
import os
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# The shared containerd and helpers (re-exported: hack/bench_streaming.py imports them from here).
from benchpeers import (CONTAINERD, CTR, PLUGINS, RUNC, BenchError, Containerd, cgroup_processes,  # noqa: E402
                        log, merge_json, pause_image_archive, pct, remove_cgroups, tail,
                        unmount_all_under, warn)
from crihelpers import Daemon, descendants, kill_recorded, pb, pbg, proc_starttime  # noqa: E402

import grpc  # noqa: E402

PODSHIM = os.environ["PODSHIM_BIN"]
PAUSE = os.environ.get("PODSHIM_PAUSE_BIN") or os.path.join(os.path.dirname(os.path.abspath(PODSHIM)), "podshim-pause")
IMAGES = os.environ.get("PODSHIM_IMAGE_DIR", "")
RUNS = int(os.environ.get("BENCH_RUNS", "30"))
WARMUP = int(os.environ.get("BENCH_CNI_WARMUP", "3"))
OUT = os.environ.get("BENCH_JSON", "bench.json")
NAMESPACE = "bench-cni"  # the pods' Kubernetes namespace
RPC_TIMEOUT = 60


def summary(values):
    return {"p50_ms": pct(values, 50) * 1000, "p90_ms": pct(values, 90) * 1000, "p99_ms": pct(values, 99) * 1000,
            "mean_ms": statistics.mean(values) * 1000, "runs": len(values)}


# ---------------------------------------------------------------------------
# The node network namespaces and the network configuration
# ---------------------------------------------------------------------------

class Node:
    """A network namespace pinned on a file (as Tests/cri/test_network.py's Node), lo up."""

    def __init__(self, path):
        self.path = path
        open(path, "w").close()
        subprocess.run(["unshare", "--net=" + path, "true"], check=True)
        self.run(["ip", "link", "set", "lo", "up"])

    def run(self, argv, **kw):
        kw.setdefault("check", True)
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(["nsenter", "--net=" + self.path] + argv, **kw)

    def veths(self):
        return [l for l in self.run(["ip", "-o", "link"]).stdout.splitlines() if "veth" in l]

    def cni_chains(self):
        """Per-pod iptables chains (the shared CNI-HOSTPORT-* ones stay once made)."""
        out = self.run(["iptables", "-t", "nat", "-S"], check=False).stdout
        return [l for l in out.splitlines() if l.startswith("-N CNI-") and "HOSTPORT" not in l]


def conflist(name, bridge, subnet, data_dir):
    return {
        "cniVersion": "1.0.0", "name": name,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}],
                      "dataDir": data_dir}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def leases(data_dir, net_name):
    d = os.path.join(data_dir, net_name)
    try:
        return sorted(f for f in os.listdir(d) if f != "lock" and not f.startswith("last_reserved_ip"))
    except FileNotFoundError:
        return []


# ---------------------------------------------------------------------------
# The client (the same for both runtimes)
# ---------------------------------------------------------------------------

class Runtime:
    def __init__(self, name, socket_path, node, data_dir, namespace=NAMESPACE):
        self.name = name
        self.namespace = namespace  # the Kubernetes namespace of our pods (remove_all's filter)
        self.node = node
        self.data_dir = data_dir
        self.channel = grpc.insecure_channel("unix://" + socket_path)
        self.rt = pbg.RuntimeServiceStub(self.channel)
        self.run_samples = []
        self.stop_remove_samples = []
        self.ips = []
        self.on_created = None  # called with each sandbox id

    def wait_network_ready(self, timeout=30):
        deadline = time.time() + timeout
        while True:
            status = self.rt.Status(pb.StatusRequest(), timeout=RPC_TIMEOUT).status
            conds = {c.type: c for c in status.conditions}
            net = conds.get("NetworkReady")
            rt = conds.get("RuntimeReady")
            if net is not None and net.status and rt is not None and rt.status:
                return
            if time.time() > deadline:
                raise BenchError("%s: not ready after %ds: %s" % (self.name, timeout, [
                    (c.type, c.status, c.reason, c.message) for c in status.conditions]))
            time.sleep(0.2)

    def pod(self, index, cgroup_parent, record=True):
        name = "%s-%d" % (self.name, index)
        uid = "%s-%s" % (cgroup_parent.rsplit("/", 1)[1], name)
        config = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace=self.namespace, attempt=0),
            hostname=name,
            linux=pb.LinuxPodSandboxConfig(cgroup_parent=cgroup_parent))
        start = time.perf_counter()
        try:
            sandbox = self.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=config), timeout=RPC_TIMEOUT).pod_sandbox_id
        except grpc.RpcError as e:
            raise BenchError("%s: RunPodSandbox %s failed: %s: %s" % (self.name, name, e.code(), e.details()))
        run = time.perf_counter() - start
        if self.on_created:
            self.on_created(sandbox)
        status = self.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=sandbox), timeout=RPC_TIMEOUT).status
        ip = status.network.ip
        if not ip:
            raise BenchError("%s: pod %s (%s) has no IP in PodSandboxStatus (network: %s)" % (
                self.name, name, sandbox, status.network))
        start = time.perf_counter()
        try:
            self.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=sandbox), timeout=RPC_TIMEOUT)
            self.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=sandbox), timeout=RPC_TIMEOUT)
        except grpc.RpcError as e:
            raise BenchError("%s: Stop/RemovePodSandbox %s failed: %s: %s" % (self.name, name, e.code(), e.details()))
        stop_remove = time.perf_counter() - start
        if record:
            self.run_samples.append(run)
            self.stop_remove_samples.append(stop_remove)
            self.ips.append(ip)

    def remove_all(self):
        """Stops and removes every pod of ours this runtime still has (cleanup, never timed)."""
        try:
            pods = self.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=RPC_TIMEOUT).items
        except grpc.RpcError as e:
            warn("%s: ListPodSandbox: %s" % (self.name, e.details()))
            return
        for p in pods:
            if p.metadata.namespace != self.namespace:
                continue
            if self.on_created:
                self.on_created(p.id)
            for call, req in ((self.rt.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=p.id)),
                              (self.rt.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=p.id))):
                try:
                    call(req, timeout=RPC_TIMEOUT)
                except grpc.RpcError as e:
                    warn("%s: cleaning pod %s: %s" % (self.name, p.id, e.details()))

    def close(self):
        self.channel.close()


# ---------------------------------------------------------------------------

def preflight(extra=()):
    problems = []
    if os.geteuid() != 0:
        problems.append("needs root")
    for path in (PODSHIM, PAUSE, CONTAINERD, CTR, RUNC, "/usr/bin/containerd-shim-runc-v2") + tuple(
            os.path.join(PLUGINS, p) for p in ("bridge", "host-local", "portmap")) + tuple(extra):
        if not os.access(path, os.X_OK):
            problems.append("missing %s" % path)
    if problems:
        raise BenchError("; ".join(problems) + " (hack/bench installs containerd, runc and containernetworking-plugins)")


class Testbed:
    """podshim and containerd side by side (shared with hack/bench_streaming.py): a temp dir named
    after `label`, a tmpfs for volatile state, a node namespace per runtime, the same conflist,
    `podshim serve` with CNI, containerd with the pause image, a Runtime client for each.
    setup() raises on failure; teardown(failure) removes everything, whatever setup reached."""

    def __init__(self, label, tmpfs_size="256m"):
        self.label = label
        self.tmpfs_size = tmpfs_size
        self.tag = secrets.token_hex(3)
        self.base = tempfile.mkdtemp(prefix="podshim-bench-%s-" % label, dir="/tmp")
        os.chmod(self.base, 0o711)
        self.namespace = "bench-" + label  # the pods' Kubernetes namespace
        self.cgroup_top = "podshim-bench-%s-%s" % (label, self.tag)
        self.cgroup_parent = "/%s/pods" % self.cgroup_top
        self.net_name = "bench-%s-%s" % (label, self.tag)
        self.bridge = "pshb" + self.tag  # 10 characters (≤ 15)
        self.subnet = "10.%d.%d.0/24" % (100 + secrets.randbelow(100), secrets.randbelow(250))
        self.sandbox_image = "localhost/podshim-bench-pause:" + self.tag
        self.run_created = not os.path.exists("/run/containerd")
        self.cni_cache_created = not os.path.exists("/var/lib/cni")
        self.nodes, self.runtimes, self.data_dirs, self.conf_dirs, self.versions = {}, {}, {}, {}, {}
        self.podshim = self.containerd = None

    def setup(self, runtime_class=Runtime):
        base = self.base
        volatile = os.path.join(base, "run")
        os.makedirs(volatile)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0711,size=" + self.tmpfs_size, "podshim-bench-" + self.label,
                        volatile], check=True)
        os.makedirs(os.path.join(base, "nodes"))
        self.nodes["podshim"] = Node(os.path.join(base, "nodes", "podshim.netns"))
        self.nodes["containerd"] = Node(os.path.join(base, "nodes", "containerd.netns"))
        for name in ("podshim", "containerd"):
            self.data_dirs[name] = os.path.join(base, name, "ipam")
            self.conf_dirs[name] = os.path.join(base, name, "net.d")
            os.makedirs(self.data_dirs[name])
            os.makedirs(self.conf_dirs[name])
            with open(os.path.join(self.conf_dirs[name], "10-bench.conflist"), "w") as f:
                json.dump(conflist(self.net_name, self.bridge, self.subnet, self.data_dirs[name]), f, indent=2)
        log("network %s: bridge %s, %s, a node namespace per runtime (%s)" % (
            self.net_name, self.bridge, self.subnet, os.path.join(base, "nodes")))

        # podshim
        image_dir = IMAGES or os.path.join(base, "podshim", "images")
        os.makedirs(image_dir, exist_ok=True)
        self.podshim = Daemon(os.path.join(base, "podshim"), name="podshim", state=os.path.join(volatile, "podshim"),
                              image_dir=image_dir, node_netns=self.nodes["podshim"].path,
                              extra_args=["--network", "cni", "--cni-conf-dir", self.conf_dirs["podshim"],
                                          "--cni-bin-dir", PLUGINS, "--pause-binary", PAUSE])
        self.podshim.start()

        # containerd
        self.containerd = Containerd(os.path.join(base, "containerd"), state=os.path.join(volatile, "containerd"),
                                     netns=self.nodes["containerd"].path, cni_conf_dir=self.conf_dirs["containerd"],
                                     sandbox_image=self.sandbox_image, runtime="runc")
        self.containerd.start()
        archive = os.path.join(base, "pause-image.tar")
        pause_image_archive(archive, PAUSE, self.sandbox_image)
        self.containerd.import_image(archive)

        for name, sock in (("podshim", self.podshim.socket), ("containerd", self.containerd.socket)):
            self.runtimes[name] = runtime_class(name, sock, self.nodes[name], self.data_dirs[name],
                                                namespace=self.namespace)
        self.runtimes["containerd"].on_created = self.containerd.ids.add
        for name, r in self.runtimes.items():
            r.wait_network_ready()
            v = r.rt.Version(pb.VersionRequest(version="v1"), timeout=RPC_TIMEOUT)
            self.versions[name] = "%s %s" % (v.runtime_name, v.runtime_version)

    def teardown(self, failure):
        base, podshim, containerd = self.base, self.podshim, self.containerd
        for r in self.runtimes.values():
            r.remove_all()
            r.close()
        recorded = {}
        if podshim is not None:
            if podshim.alive():  # its pause processes, should a pod be left
                recorded.update((p, proc_starttime(p)) for p in descendants(podshim.pid))
            podshim.stop()
            if failure:
                sys.stderr.write("podshim log:\n%s\n" % podshim.stderr_tail())
            # What a stopped podshim may have left (nothing, normally); in its node: it may DEL.
            subprocess.run(["nsenter", "--net=" + self.nodes["podshim"].path, PODSHIM, "cleanup",
                            "--state-dir", podshim.state, "--root", podshim.root, "--pause-binary", PAUSE],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if containerd is not None:
            containerd.stop()
            if failure:
                sys.stderr.write("containerd log:\n%s\n" % tail(containerd.log_path))
            killed = kill_recorded(containerd.leftover_processes())
            if killed:
                warn("killed containerd leftovers: %s" % killed)
        recorded.update(cgroup_processes(self.cgroup_top))
        killed = kill_recorded({p: st for p, st in recorded.items() if st is not None})
        if killed:
            warn("killed leftover pod processes: %s" % killed)
        still = unmount_all_under(base)  # pod netns pins, shm, rootfs, tmpfs, then the node pins
        if still:
            warn("still mounted under %s: %s" % (base, still))
        left = remove_cgroups(self.cgroup_top)
        if left:
            warn("cgroups not removed: %s" % left)
        if containerd is not None:
            for s in containerd.shim_sockets():
                if os.path.exists(s):
                    os.unlink(s)
            if os.path.isdir(Containerd.CNI_CACHE):
                ours = [self.net_name + "-"] + ["cni-loopback-%s-" % i for i in containerd.ids]
                for f in os.listdir(Containerd.CNI_CACHE):
                    if any(f.startswith(prefix) for prefix in ours):
                        warn("removing containerd's CNI cache file %s" % f)
                        os.unlink(os.path.join(Containerd.CNI_CACHE, f))
        for created, dirs in ((self.run_created, ("/run/containerd/s", "/run/containerd")),
                              (self.cni_cache_created, ("/var/lib/cni/results", "/var/lib/cni"))):
            if created:
                for d in dirs:
                    try:
                        os.rmdir(d)
                    except OSError:
                        pass
        if not still:
            subprocess.run(["rm", "-rf", "--one-file-system", base])


def main():
    try:
        preflight()
    except BenchError as e:
        print("bench_cni: %s" % e, file=sys.stderr)
        return 2
    # SIGTERM (and ^C) unwind through the cleanup below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("bench_cni: terminated"))
    bed = Testbed("cni")
    runtimes = bed.runtimes
    results = None
    failure = None
    try:
        bed.setup()
        versions = bed.versions
        runc_version = subprocess.run([RUNC, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
        log("%s vs %s (%s); %d warm-ups, %d runs each, alternating" % (
            versions["podshim"], versions["containerd"], runc_version, WARMUP, RUNS))

        parent = bed.cgroup_parent
        order = ["podshim", "containerd"]
        for i in range(WARMUP):
            for name in order:
                runtimes[name].pod(i, parent, record=False)
        for i in range(RUNS):
            for name in (order if i % 2 == 0 else order[::-1]):
                runtimes[name].pod(WARMUP + i, parent)

        leftovers = {}
        for name, r in runtimes.items():
            leftovers[name] = {"leases": leases(r.data_dir, bed.net_name), "veths": r.node.veths(),
                               "cni_chains": r.node.cni_chains()}
        bad = {n: l for n, l in leftovers.items() if l["leases"] or l["veths"]}
        if bad:
            raise BenchError("pods left host-local leases or veths behind: %s" % json.dumps(bad))

        results = {
            "runs": RUNS, "warmups": WARMUP, "versions": versions, "runc": runc_version,
            "conflist": conflist(bed.net_name, bed.bridge, bed.subnet, "<temp dir>/<runtime>/ipam"),
            "run_pod_sandbox": {n: summary(r.run_samples) for n, r in runtimes.items()},
            "stop_remove_pod_sandbox": {n: summary(r.stop_remove_samples) for n, r in runtimes.items()},
            "leftovers": {n: {k: len(v) for k, v in l.items()} for n, l in leftovers.items()},
            "sample_ips": {n: r.ips[:2] for n, r in runtimes.items()},
        }
        for key in ("run_pod_sandbox", "stop_remove_pod_sandbox"):
            g = results[key]
            g["ratio_podshim_containerd"] = {
                m: g["podshim"][m + "_ms"] / g["containerd"][m + "_ms"] for m in ("p50", "p90", "p99", "mean")}
        goal = results["run_pod_sandbox"]["ratio_podshim_containerd"]["p50"]
        results["goal"] = {"goal": "RunPodSandbox (bridge) p50 podshim/containerd <= 1", "value": goal,
                           "met": goal <= 1}
    except BenchError as e:
        failure = str(e)
    except Exception as e:  # noqa: BLE001  (cleanup below, then the traceback)
        failure = "%s: %s" % (type(e).__name__, e)
        import traceback
        traceback.print_exc()
    finally:
        bed.teardown(failure)

    if failure:
        print("bench_cni: FAILED: %s" % failure, file=sys.stderr)
        return 1
    merge_json(OUT, "cni", results)
    report(results)
    return 0


def report(results):
    print("RunPodSandbox with CNI (bridge + portmap, same conflist), %d runs each:" % results["runs"])
    print("%-42s %9s %9s %9s %9s" % ("measure (ms)", "p50", "p90", "p99", "mean"))
    for key, label in (("run_pod_sandbox", "RunPodSandbox"), ("stop_remove_pod_sandbox", "Stop+RemovePodSandbox")):
        g = results[key]
        for name in ("podshim", "containerd"):
            s = g[name]
            print("%-42s %9.2f %9.2f %9.2f %9.2f" % ("%s %s" % (label, name), s["p50_ms"], s["p90_ms"], s["p99_ms"],
                                                    s["mean_ms"]))
        r = g["ratio_podshim_containerd"]
        print("%-42s %9.2f %9.2f %9.2f %9.2f" % ("%s podshim/containerd" % label, r["p50"], r["p90"], r["p99"],
                                                r["mean"]))
    g = results["goal"]
    print("goal %s: measured %.2f, %s" % (g["goal"], g["value"], "met" if g["met"] else "NOT met"))
    print("JSON (key \"cni\"): %s" % OUT)


if __name__ == "__main__":
    sys.exit(main())
