"""50 pods created and removed concurrently, then nothing may be left behind."""

import os
import time
from concurrent.futures import ThreadPoolExecutor

import grpc

from crihelpers import (CRITestCase, container_config, log, mounts_under, pb, pod_cgroup_dirs, pod_config,
                        proc_cmdline, processes_of)

N = int(os.environ.get("PODSHIM_CRI_SCALE_PODS", "50"))
WORKERS = 32


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def state_leftovers(state_dir):
    """Pod records or directories left in the state dir: any file below a 'pods', 'containers'
    or 'sandboxes' directory, and any directory directly inside one (a per-pod directory)."""
    kinds = ("pods", "containers", "sandboxes")
    out = []
    for dirpath, dirnames, filenames in os.walk(state_dir):
        rel = os.path.relpath(dirpath, state_dir)
        parts = [] if rel == "." else rel.split(os.sep)
        if any(p in kinds for p in parts):
            out += [os.path.join(rel, f) for f in filenames]
        if parts and parts[-1] in kinds:
            out += [os.path.join(rel, d) + "/" for d in dirnames]
    return out


class StepError(Exception):
    pass


class ScaleTest(CRITestCase):

    def diagnose_busy(self, errors):
        # Which mount namespaces still hold the paths a removal found busy?
        import re
        paths = set()
        for e in errors:
            m = re.search(r"(/\S+): EBUSY", e)
            if m:
                paths.add(m.group(1))
        log("%d removal errors; busy paths: %d; mounted in our namespace: %d" % (
            len(errors), len(paths), len([p for p in paths if p in mounts_under(self.base)])))
        with open("/proc/self/mountinfo") as f:
            info = f.read().splitlines()
        for path in list(paths)[:2]:
            log("  our mountinfo for %s: %s" % (path[-40:], [l[:200] for l in info if path in l]))
        log("  mountinfo of the state dir's mount: %s" % [l[:200] for l in info if " /tmp " in l or " / / " in l][:3])
        for path in list(paths)[:3]:
            holders = []
            for pid in [int(x) for x in os.listdir("/proc") if x.isdigit()]:
                try:
                    with open("/proc/%d/mountinfo" % pid) as f:
                        if path in f.read():
                            with open("/proc/%d/cmdline" % pid, "rb") as g:
                                holders.append((pid, g.read()[:60]))
                except OSError:
                    pass
            log("  %s held by %s" % (path[-90:], holders[:6]))

    def test_50_pods_concurrently(self):
        c = self.client
        d = self.daemon
        c.rt.Version(pb.VersionRequest(), timeout=5)
        time.sleep(0.5)
        fds_before = fd_count(d.pid)
        state_before = sorted(os.listdir(d.state)) if os.path.isdir(d.state) else []
        log("daemon fds before: %d; state dir: %s" % (fds_before, state_before))

        def create(i):
            cfg = pod_config("scale-%d" % i, log_directory=os.path.join(self.pod_log_root, "scale-%d" % i))
            self.track(uid=cfg.metadata.uid)
            t0 = time.time()
            step = "RunPodSandbox"
            try:
                pod = c.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=120).pod_sandbox_id
                self.track(pod_id=pod)
                step = "CreateContainer"
                cid = c.rt.CreateContainer(pb.CreateContainerRequest(
                    pod_sandbox_id=pod, config=container_config("s", ["sleep", "3600"], log_path="s.log"),
                    sandbox_config=cfg), timeout=120).container_id
                step = "StartContainer"
                c.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=120)
            except grpc.RpcError as e:
                raise StepError("scale-%d %s: %s %s" % (i, step, e.code(), e.details()))
            return pod, cid, cfg.metadata.uid, time.time() - t0

        t0 = time.time()
        with ThreadPoolExecutor(WORKERS) as ex:
            futures = [ex.submit(create, i) for i in range(N)]
            results, errors = [], []
            for f in futures:
                try:
                    results.append(f.result())
                except StepError as e:
                    errors.append(str(e))
        created = time.time() - t0
        log("created %d pods in %.1fs (%.1f/s); slowest %.2fs; errors: %d"
            % (len(results), created, len(results) / created, max([r[3] for r in results] or [0]), len(errors)))
        if errors:
            died = [l for l in d.stderr_text().splitlines() if "pause exited" in l]
            self.fail("%d of %d pod starts failed, e.g. %s\n  daemon saw %d pause processes exit meanwhile "
                      "(nothing was removed yet), e.g. %s" % (len(errors), N, errors[:3], len(died), died[:2]))
        self.assertEqual(len(set(r[0] for r in results)), N)
        self.assertEqual(len(set(r[1] for r in results)), N)

        pods = c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items
        self.assertEqual(len(pods), N)
        self.assertTrue(all(p.state == pb.SANDBOX_READY for p in pods))
        running = c.rt.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(
            state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING))), timeout=30).containers
        self.assertEqual(len(running), N)
        keys = set(r[0] for r in results) | set(r[2] for r in results)
        procs = processes_of(self.base, keys, exclude={d.pid})
        log("%d pod processes while running" % len(procs))
        self.assertGreaterEqual(len(procs), N, "fewer processes than containers")
        type(self).recorded.update(procs)
        fds_running = fd_count(d.pid)
        log("daemon fds with %d pods: %d" % (N, fds_running))

        t0 = time.time()
        with ThreadPoolExecutor(WORKERS) as ex:
            rm_errors = []
            for f in [ex.submit(c.rt.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=r[0]),
                                timeout=120) for r in results]:
                try:
                    f.result()
                except grpc.RpcError as e:
                    rm_errors.append("%s %s" % (e.code(), e.details()))
        log("removed in %.1fs" % (time.time() - t0))
        problems = []
        if rm_errors:
            self.diagnose_busy(rm_errors)
            problems.append("%d of %d concurrent RemovePodSandbox calls failed, e.g. %s"
                            % (len(rm_errors), N, rm_errors[:2]))
            listed = [p.id for p in c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items]
            log("%d pods still listed after the failed removals" % len(listed))
            if len(listed) < len(rm_errors):
                problems.append("only %d of %d pods whose removal failed are still listed (cannot be retried)"
                                % (len(listed), len(rm_errors)))
            retry = []
            for pod_id in listed:
                try:
                    c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
                except grpc.RpcError as e:
                    retry.append("%s %s" % (e.code(), e.details()))
            log("sequential retry of %d removals: %d errors %s" % (len(listed), len(retry), retry[:1]))
            if retry:
                problems.append("retrying removals sequentially failed too: %s" % retry[:2])
        if list(c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items):
            problems.append("pods still listed after removal")
        if list(c.rt.ListContainers(pb.ListContainersRequest(), timeout=30).containers):
            problems.append("containers still listed after removal")

        # Leaks. Give asynchronous teardown a moment.
        deadline = time.time() + 10
        while True:
            left_procs = processes_of(self.base, keys, exclude={d.pid})
            left_mounts = mounts_under(self.base)
            left_cgroups = pod_cgroup_dirs(keys)
            left_state = state_leftovers(d.state)
            fds_after = fd_count(d.pid)
            clean = not (left_procs or left_mounts or left_cgroups or left_state) and fds_after <= fds_before + 4
            if clean or time.time() > deadline:
                break
            time.sleep(0.5)
        log("daemon fds after removal: %d (before %d, %d while running)" % (fds_after, fds_before, fds_running))
        if left_procs:
            problems.append("%d processes left: %s" % (len(left_procs), {
                p: " ".join(proc_cmdline(p))[:40] for p in list(left_procs)[:5]}))
        if left_mounts:
            problems.append("%d mounts left under the test dir, e.g. %s" % (len(left_mounts), left_mounts[:2]))
        if left_cgroups:
            problems.append("%d pod cgroups left, e.g. %s" % (len(left_cgroups), left_cgroups[:2]))
        if left_state:
            problems.append("state dir holds %d pod records, e.g. %s" % (len(left_state), left_state[:3]))
        if fds_after > fds_before + 4:
            problems.append("daemon fd leak: %d before, %d after" % (fds_before, fds_after))
        pods_root = os.path.join(d.root, "pods")
        root_left = os.listdir(pods_root) if os.path.isdir(pods_root) else []
        if root_left:
            problems.append("root dir holds %d pod data dirs" % len(root_left))
        if not d.alive():
            problems.append("daemon died")
        if problems:
            self.fail("\n  ".join(["problems:"] + problems))

if __name__ == "__main__":
    import unittest
    unittest.main()
