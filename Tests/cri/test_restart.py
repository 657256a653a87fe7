"""Daemon restarts: pods outlive the daemon and are re-adopted by the next one."""

import os
import signal
import time

from crihelpers import (CRITestCase, find_container_pid, log, pb, proc_cmdline, proc_starttime, processes_of,
                        read_until)


class RestartTest(CRITestCase):

    def restart(self, how="kill"):
        cls = type(self)
        cls.remember_descendants()
        if how == "kill":
            self.daemon.kill()
        else:
            rc = self.daemon.stop(timeout=20)
            self.assertEqual(rc, 0, "daemon exit status after SIGTERM:\n%s" % self.daemon.stderr_tail())
        old = cls.client
        old.close()
        self.daemon.start()
        cls.client = self.new_client(self.daemon.socket)
        return cls.client

    def record_pid(self, pod_id, uid, argv):
        pid = None
        deadline = time.time() + 5
        while pid is None and time.time() < deadline:
            pid = find_container_pid(argv, keys={pod_id, uid}, daemon_pid=self.daemon.pid, base=self.base)
            if pid is None:
                time.sleep(0.1)
        self.assertIsNotNone(pid, "cannot find the process of %s" % argv)
        st = proc_starttime(pid)
        type(self).recorded[pid] = st
        return pid, st

    def make_pods(self, n, first_sleep):
        pods = []
        for i in range(n):
            arg = str(first_sleep + i)
            pod_id, cfg, cid = self.run_pod_with_sleeper(self.client, "r%d-%s" % (i, arg), sleep_arg=arg)
            pid, st = self.record_pid(pod_id, cfg.metadata.uid, ["sleep", arg])
            pods.append(dict(pod=pod_id, cfg=cfg, cid=cid, pid=pid, st=st))
        return pods

    def test_sigkill_and_readopt(self):
        pods = self.make_pods(5, 4001)
        c = self.restart("kill")
        for p in pods:
            self.assertEqual(proc_starttime(p["pid"]), p["st"], "container died with the daemon")
        listed = {x.id: x for x in c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items}
        self.assertEqual(sorted(listed), sorted(p["pod"] for p in pods))
        for p in pods:
            self.assertEqual(listed[p["pod"]].state, pb.SANDBOX_READY)
            self.assertEqual(listed[p["pod"]].metadata.uid, p["cfg"].metadata.uid)
            st = self.container_status(c, p["cid"]).status
            self.assertEqual(st.state, pb.CONTAINER_RUNNING, p["cid"])
            self.assertGreater(st.started_at, 0)
        ctrs = {x.id: x for x in c.rt.ListContainers(pb.ListContainersRequest(), timeout=10).containers}
        self.assertEqual(sorted(ctrs), sorted(p["cid"] for p in pods))
        r = c.rt.ExecSync(pb.ExecSyncRequest(container_id=pods[2]["cid"], cmd=["cat", "/proc/1/cmdline"],
                                             timeout=5), timeout=15)
        self.assertEqual(r.stdout, b"sleep\x004003\x00")
        # Creating more in an adopted pod works.
        extra = self.create_container(c, pods[0]["pod"], pods[0]["cfg"], "extra", ["sleep", "4100"])
        self.start_container(c, extra)
        for p in pods:
            c.rt.StopContainer(pb.StopContainerRequest(container_id=p["cid"], timeout=1), timeout=30)
            self.assert_stopped_by_signal(c, p["cid"])
        for p in pods:
            c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p["pod"]), timeout=30)
        self.assertEqual(list(c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items), [])
        self.assert_no_processes(pods)

    def assert_stopped_by_signal(self, c, cid):
        st = self.container_status(c, cid).status
        self.assertEqual(st.state, pb.CONTAINER_EXITED)
        self.assertGreater(st.finished_at, 0)
        if st.exit_code not in (137, 143):
            # The daemon is not the parent of a re-adopted process and cannot wait for it; it did
            # send the signal, though. Reported, not failed, as long as it is not a success.
            log("re-adopted container stopped by StopContainer: exit_code %d reason %r message %r"
                % (st.exit_code, st.reason, st.message))
            self.assertNotEqual(st.exit_code, 0)
            self.assertNotEqual(st.reason, "Completed")

    def assert_no_processes(self, pods):
        keys = set()
        for p in pods:
            keys |= {p["pod"], p["cfg"].metadata.uid}
        deadline = time.time() + 5
        while True:
            left = processes_of(self.base, keys, exclude={self.daemon.pid})
            left.update({p["pid"]: p["st"] for p in pods if proc_starttime(p["pid"]) == p["st"]})
            if not left or time.time() > deadline:
                break
            time.sleep(0.1)
        self.assertEqual({p: " ".join(proc_cmdline(p)) for p in left}, {},
                         "processes of removed pods still alive")

    def test_container_killed_while_daemon_down(self):
        pods = self.make_pods(2, 5001)
        self.daemon.kill()
        victim = pods[0]
        self.assertEqual(proc_starttime(victim["pid"]), victim["st"])
        os.kill(victim["pid"], signal.SIGKILL)
        deadline = time.time() + 5
        while proc_starttime(victim["pid"]) == victim["st"] and time.time() < deadline:
            time.sleep(0.05)
        # The restart below makes a new client; restart() also handles a dead daemon.
        c = self.restart("kill")
        st = self.container_status(c, victim["cid"]).status
        self.assertEqual(st.state, pb.CONTAINER_EXITED, "dead container reported %s" % pb.ContainerState.Name(st.state))
        self.assertTrue(st.reason == "Unknown" or st.exit_code == 137,
                        "reason %r exit_code %d" % (st.reason, st.exit_code))
        self.assertFalse(st.exit_code == 0 and st.reason == "Completed")
        other = self.container_status(c, pods[1]["cid"]).status
        self.assertEqual(other.state, pb.CONTAINER_RUNNING)
        for p in pods:
            c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p["pod"]), timeout=30)
        self.assertEqual(list(c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items), [])
        self.assert_no_processes(pods)

    def test_exit_codes_and_last_lines_survive_a_daemon_crash(self):
        """Containers that exit while the daemon is down keep their true exit code, reason, exit
        time and last output line: the pod's pause process held their pidfds and pipes."""
        pod_id, cfg = self.run_pod(self.client, "crash-exits")
        scripts = {
            "zero": ("sleep 2; echo last-zero; exit 0", 0, "Completed"),
            "three": ("sleep 2; echo last-three; exit 3", 3, "Error"),
            # PID 1 of its namespace cannot SIGKILL itself: the test kills it from the host below.
            "killed": ("echo last-killed; exec sleep 3600", 137, "Error"),
        }
        cids = {}
        for name, (script, _, _) in scripts.items():
            cids[name] = self.create_container(self.client, pod_id, cfg, name, ["sh", "-c", script],
                                               log_path=name + ".log")
            self.start_container(self.client, cids[name])
        killed_pid, _ = self.record_pid(pod_id, cfg.metadata.uid, ["sleep", "3600"])
        self.daemon.kill()
        died = time.time()
        os.kill(killed_pid, signal.SIGKILL)
        type(self).recorded.pop(killed_pid, None)  # killed here: whoever inherited it reaps it
        time.sleep(4)  # every container exits (2 s) while no podshim runs
        back = time.time()
        c = self.restart("kill")
        for name, (_, code, reason) in scripts.items():
            st = self.wait_container_state(c, cids[name], pb.CONTAINER_EXITED)
            self.assertEqual(st.exit_code, code, "%s: %r %r" % (name, st.reason, st.message))
            self.assertEqual(st.reason, reason, name)
            finished = st.finished_at / 1e9
            self.assertGreater(finished, died, "%s finished before the daemon died?" % name)
            self.assertLess(finished, back, "%s: the exit time is when it exited, not when podshim came back" % name)
            text = read_until(os.path.join(cfg.log_directory, name + ".log"), lambda t: "last-" + name in t, timeout=5)
            self.assertIn("last-" + name, text, "%s: the line written before it exited is in its log" % name)
        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)

    def test_sigterm_keeps_pods(self):
        pods = self.make_pods(1, 6001)
        p = pods[0]
        c = self.restart("term")
        self.assertEqual(proc_starttime(p["pid"]), p["st"], "SIGTERM stopped the pod")
        st = self.container_status(c, p["cid"]).status
        self.assertEqual(st.state, pb.CONTAINER_RUNNING)
        r = c.rt.ExecSync(pb.ExecSyncRequest(container_id=p["cid"], cmd=["echo", "back"], timeout=5), timeout=15)
        self.assertEqual(r.stdout, b"back\n")
        # A container that exits after the restart is reaped and reported by the new daemon.
        c.rt.StopContainer(pb.StopContainerRequest(container_id=p["cid"], timeout=2), timeout=30)
        self.assert_stopped_by_signal(c, p["cid"])
        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p["pod"]), timeout=30)
        self.assert_no_processes(pods)

    def test_remove_readopted_running_pods_after_sigkill(self):
        self.remove_readopted_running_pods("kill", 7001)

    def test_remove_readopted_running_pods_after_sigterm(self):
        self.remove_readopted_running_pods("term", 7201)

    def remove_readopted_running_pods(self, how, first):
        # RemovePodSandbox straight away on re-adopted pods whose containers still run, one of
        # them with an extra container started by the new daemon.
        pods = self.make_pods(3, first)
        c = self.restart(how)
        extra = self.create_container(c, pods[0]["pod"], pods[0]["cfg"], "extra", ["sleep", str(first + 99)])
        self.start_container(c, extra)
        pid, st = self.record_pid(pods[0]["pod"], pods[0]["cfg"].metadata.uid, ["sleep", str(first + 99)])
        for p in pods:
            c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p["pod"]), timeout=30)
        self.assertEqual(list(c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items), [])
        self.assertEqual(list(c.rt.ListContainers(pb.ListContainersRequest(), timeout=10).containers), [])
        pods.append(dict(pod=pods[0]["pod"], cfg=pods[0]["cfg"], pid=pid, st=st))
        self.assert_no_processes(pods)

    def test_restart_with_no_pods(self):
        c = self.restart("term")
        self.assertEqual(list(c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items), [])
        c = self.restart("kill")
        self.assertEqual(c.rt.Version(pb.VersionRequest(), timeout=5).runtime_name, "podshim")


if __name__ == "__main__":
    import unittest
    unittest.main()
