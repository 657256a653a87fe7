"""A small benchmark of podshim's CRI server (not a test). Run it through hack/bench-cri.sh.

Starts `podshim serve` on temp dirs, measures round trips of Version and of ContainerStatus (one
running container) over one channel, and pods started per second (RunPodSandbox +
CreateContainer + StartContainer of `sleep 3600`) sequentially and with concurrent workers.
Cleans up everything it created (pods through the API, the daemon, leftover processes of its
pods, the temp dir).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Tests", "cri"))

import crihelpers  # noqa: E402
from crihelpers import (Client, Daemon, container_config, descendants, kill_recorded, pb, pod_cgroup_dirs,  # noqa: E402
                        pod_config, proc_starttime, processes_of, safe_rmtree)


def percentile(xs, p):
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1)))))
    return xs[k]


def latency(fn, n, warmup=20):
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1e6)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=2000, help="round trips per latency measurement")
    ap.add_argument("--pods", type=int, default=30, help="pods per throughput measurement")
    ap.add_argument("--workers", type=int, default=8)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench-cri: needs root")
        return 0
    if not crihelpers.IMAGE_DIR:
        print("bench-cri: PODSHIM_IMAGE_DIR is not set (run hack/bench-cri.sh)", file=sys.stderr)
        return 2

    base = tempfile.mkdtemp(prefix="podshim-bench-", dir="/tmp")
    d = Daemon(base, name="bench")
    client = None
    keys = set()
    recorded = {}
    rows = []
    try:
        d.start()
        client = Client(d.socket)
        rt = client.rt

        def new_pod(tag):
            cfg = pod_config("bench-%s" % tag, log_directory=os.path.join(base, "podlogs", tag))
            keys.add(cfg.metadata.uid)
            pod = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=120).pod_sandbox_id
            keys.add(pod)
            cid = rt.CreateContainer(pb.CreateContainerRequest(
                pod_sandbox_id=pod, config=container_config("s", ["sleep", "3600"]), sandbox_config=cfg),
                timeout=120).container_id
            rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=120)
            return pod, cid

        def remove_all():
            for p in rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items:
                rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=120)

        vreq = pb.VersionRequest(version="v1")
        lat = latency(lambda: rt.Version(vreq, timeout=10), args.n)
        rows.append(("Version", lat))
        pod, cid = new_pod("status")
        sreq = pb.ContainerStatusRequest(container_id=cid)
        lat = latency(lambda: rt.ContainerStatus(sreq, timeout=10), args.n)
        rows.append(("ContainerStatus", lat))
        lreq = pb.ListContainersRequest()
        lat = latency(lambda: rt.ListContainers(lreq, timeout=10), max(100, args.n // 10))
        rows.append(("ListContainers (1)", lat))
        remove_all()

        rates = []
        t0 = time.perf_counter()
        for i in range(args.pods):
            new_pod("seq-%d" % i)
        dt = time.perf_counter() - t0
        rates.append(("sequential", args.pods, dt))
        for pid in descendants(d.pid):
            recorded[pid] = proc_starttime(pid)
        t0 = time.perf_counter()
        remove_all()
        rates.append(("remove sequential", args.pods, time.perf_counter() - t0))

        t0 = time.perf_counter()
        with ThreadPoolExecutor(args.workers) as ex:
            list(ex.map(lambda i: new_pod("par-%d" % i), range(args.pods)))
        dt = time.perf_counter() - t0
        rates.append(("%d workers" % args.workers, args.pods, dt))
        for pid in descendants(d.pid):
            recorded[pid] = proc_starttime(pid)
        t0 = time.perf_counter()
        items = rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items
        with ThreadPoolExecutor(args.workers) as ex:
            list(ex.map(lambda p: rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=120),
                        items))
        rates.append(("remove %d workers" % args.workers, args.pods, time.perf_counter() - t0))

        print()
        print("podshim CRI benchmark (%s, one channel over %s)" % (
            rt.Version(vreq, timeout=10).runtime_version, d.socket))
        print("%-22s %8s %10s %10s %10s" % ("round trip", "n", "p50 µs", "p99 µs", "mean µs"))
        for name, xs in rows:
            print("%-22s %8d %10.0f %10.0f %10.0f" % (name, len(xs), percentile(xs, 50), percentile(xs, 99),
                                                       statistics.mean(xs)))
        print()
        print("%-22s %8s %10s %10s" % ("pods (run+create+start)", "n", "seconds", "pods/s"))
        for name, n, dt in rates:
            print("%-22s %8d %10.2f %10.1f" % (name, n, dt, n / dt))
        return 0
    finally:
        if client is not None:
            try:
                for p in client.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items:
                    keys.add(p.id)
                    client.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=60)
            except Exception as e:  # noqa
                print("bench-cri: cleanup through the API failed: %s" % e, file=sys.stderr)
            client.close()
        if d.alive():
            for pid in descendants(d.pid):
                recorded[pid] = proc_starttime(pid)
        d.stop()
        left = processes_of(base, keys, exclude={d.pid} if d.pid else ())
        left.update({p: s for p, s in recorded.items() if s is not None})
        killed = kill_recorded(left)
        if killed:
            print("bench-cri: killed %d leftover processes" % len(killed), file=sys.stderr)
        for cg in pod_cgroup_dirs(keys):
            for dirpath, _, _ in os.walk(cg, topdown=False):
                try:
                    os.rmdir(dirpath)
                except OSError:
                    pass
        if os.environ.get("PODSHIM_BENCH_KEEP_LOG"):
            print("daemon log: %s" % d.stderr_tail(2000), file=sys.stderr)
        safe_rmtree(base)


if __name__ == "__main__":
    sys.exit(main())
