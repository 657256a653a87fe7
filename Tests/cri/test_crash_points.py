"""Half-done operations: the daemon dies (SIGKILL, through a failpoint) in the middle of an RPC, and
the next daemon completes or rolls the operation back, leaving nothing behind and never running a
container twice."""

import os
import time

import grpc

from crihelpers import (CRITestCase, cgroup2_mount, find_container_pid, mounts_under, pb, proc_starttime)


def podshim_cgroups():
    root = cgroup2_mount()
    try:
        return set(os.listdir(os.path.join(root, "podshim"))) if root else set()
    except OSError:
        return set()


def cgroup_pids(name):
    pids = set()
    base = os.path.join(cgroup2_mount(), "podshim", name)
    for dirpath, _, files in os.walk(base):
        if "cgroup.procs" in files:
            try:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    pids |= {int(x) for x in f.read().split()}
            except OSError:
                pass
    return pids


class CrashPointTest(CRITestCase):

    def test_an_interrupted_run_pod_sandbox_is_rolled_back(self):
        before = podshim_cgroups()
        cfg_holder = {}

        def run(c):
            from crihelpers import pod_config
            cfg = pod_config("crash-run", log_directory=os.path.join(self.pod_log_root, "crash-run"))
            cfg_holder["cfg"] = cfg
            self.track(uid=cfg.metadata.uid)
            c.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=30)

        # The daemon dies after the pause process started, before the sandbox was recorded ready.
        self.daemon.kill()
        self.daemon.env = {"PODSHIM_FAILPOINT": "run-pod-sandbox/started"}
        self.daemon.start()
        armed = self.new_client(self.daemon.socket)
        with self.assertRaises(grpc.RpcError):
            run(armed)
        armed.close()
        self.daemon.proc.wait(timeout=10)
        new = podshim_cgroups() - before
        self.assertEqual(len(new), 1, "the pod cgroup existed when the daemon died")
        name = new.pop()
        self.track(pod_id=name[len("pod-"):])
        pause = cgroup_pids(name)
        self.assertTrue(pause, "the pause process ran when the daemon died")
        starts = {pid: proc_starttime(pid) for pid in pause}

        self.daemon.env = {}
        self.daemon.start()
        c = type(self).client = self.new_client(self.daemon.socket)
        self.assertEqual(list(c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items), [])
        deadline = time.time() + 5
        while time.time() < deadline and any(proc_starttime(p) == st for p, st in starts.items()):
            time.sleep(0.05)
        self.assertEqual([p for p, st in starts.items() if proc_starttime(p) == st], [], "pause still alive")
        self.assertNotIn(name, podshim_cgroups(), "pod cgroup left behind")
        self.assertEqual(os.listdir(os.path.join(self.daemon.state, "cri", "sandboxes")), [])
        self.assertEqual(mounts_under(self.daemon.root), [])
        pods = os.path.join(self.daemon.root, "pods")
        self.assertEqual(os.listdir(pods) if os.path.isdir(pods) else [], [])
        # And the kubelet's retry succeeds.
        c.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg_holder["cfg"]), timeout=30)

    def test_an_interrupted_start_container_is_completed_never_repeated(self):
        pod_id, cfg = self.run_pod(self.client, "crash-start")
        cid = self.create_container(self.client, pod_id, cfg, "app", ["sleep", "7301"])
        c = self.crash_in("start-container/started",
                          lambda client: client.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=30))
        st = self.container_status(c, cid).status
        self.assertEqual(st.state, pb.CONTAINER_RUNNING, "the start completed: the process runs")
        self.assertCode(grpc.StatusCode.FAILED_PRECONDITION, c.rt.StartContainer,
                        pb.StartContainerRequest(container_id=cid))
        pid = find_container_pid(["sleep", "7301"], keys={pod_id, cfg.metadata.uid}, daemon_pid=self.daemon.pid,
                                 base=self.base)
        self.assertIsNotNone(pid)
        c.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0), timeout=30)
        st = self.wait_container_state(c, cid, pb.CONTAINER_EXITED)
        self.assertEqual(st.exit_code, 137)
        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)

    def test_an_interrupted_remove_container_completes_on_retry(self):
        pod_id, cfg = self.run_pod(self.client, "crash-remove")
        cid = self.create_container(self.client, pod_id, cfg, "app", ["sleep", "7302"])
        self.start_container(self.client, cid)
        c = self.crash_in("remove-container/removed",
                          lambda client: client.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=30))
        c.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=30)
        self.assertCode(grpc.StatusCode.NOT_FOUND, c.rt.ContainerStatus, pb.ContainerStatusRequest(container_id=cid))
        self.assertEqual(list(c.rt.ListContainers(pb.ListContainersRequest(), timeout=10).containers), [])
        self.assertEqual(os.listdir(os.path.join(self.daemon.state, "cri", "containers")), [])
        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
        self.assertEqual(mounts_under(self.daemon.root), [])
