"""RPCs stop their work when the client leaves; SIGTERM stops the daemon within seconds whatever is
in flight; an ExecSync returns when its command exits, not when a background child lets go."""

import threading
import time

import grpc

from crihelpers import CRITestCase, code_of, find_container_pid, pb, proc_starttime


class DeadlineTest(CRITestCase):

    def pod_with_sleeper(self, name):
        pod_id, cfg, cid = self.run_pod_with_sleeper(self.client, name, sleep_arg="3600")
        return pod_id, cfg, cid

    def exec_pid(self, pod_id, cfg, argv, timeout=5):
        deadline = time.time() + timeout
        while time.time() < deadline:
            pid = find_container_pid(argv, keys={pod_id, cfg.metadata.uid}, daemon_pid=self.daemon.pid, base=self.base)
            if pid:
                return pid
            time.sleep(0.05)
        return None

    def test_exec_sync_returns_when_the_command_exits_despite_a_background_child(self):
        pod_id, cfg, cid = self.pod_with_sleeper("exec-bg")
        begin = time.monotonic()
        r = self.client.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "sleep 30 & echo done"],
                                                       timeout=20), timeout=30)
        self.assertLess(time.monotonic() - begin, 5, "it waited for the background child")
        self.assertEqual(r.stdout, b"done\n")
        self.assertEqual(r.exit_code, 0)

    def test_exec_sync_output_cut_at_the_limit_says_so(self):
        pod_id, cfg, cid = self.pod_with_sleeper("exec-big")
        big = self.new_client(self.daemon.socket, options=[("grpc.max_receive_message_length", -1)])
        r = big.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["head", "-c", "17000000", "/dev/zero"],
                                               timeout=30), timeout=60)
        self.assertEqual(len(r.stdout), 16 << 20)
        self.assertIn(b"output cut at 16 MiB", r.stderr)

    def test_a_client_that_leaves_stops_its_exec(self):
        pod_id, cfg, cid = self.pod_with_sleeper("exec-cancel")
        code, _, _ = code_of(self.client.rt.ExecSync, pb.ExecSyncRequest(container_id=cid, cmd=["sleep", "61"]),
                             timeout=2)
        self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED)
        pid = self.exec_pid(pod_id, cfg, ["sleep", "61"], timeout=1)
        if pid is not None:
            st = proc_starttime(pid)
            if st is None:
                return  # already gone between finding it and reading its start time
            deadline = time.time() + 5
            while time.time() < deadline and proc_starttime(pid) == st:
                time.sleep(0.05)
            self.assertNotEqual(proc_starttime(pid), st, "the exec went on after its client left")

    def test_sigterm_stops_the_daemon_within_seconds_with_an_exec_in_flight(self):
        pod_id, cfg, cid = self.pod_with_sleeper("exec-term")
        outcome = {}

        def call():
            outcome["code"] = code_of(self.client.rt.ExecSync,
                                      pb.ExecSyncRequest(container_id=cid, cmd=["sleep", "40"], timeout=60), timeout=70)[0]

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        self.assertIsNotNone(self.exec_pid(pod_id, cfg, ["sleep", "40"]), "the exec started")
        sleeper = self.exec_pid(pod_id, cfg, ["sleep", "3600"])
        sleeper_start = proc_starttime(sleeper)
        begin = time.monotonic()
        rc = self.daemon.stop(timeout=30)
        took = time.monotonic() - begin
        self.assertLess(took, 8, "SIGTERM took %.1f s with an ExecSync in flight" % took)
        self.assertEqual(rc, 0)
        caller.join(10)
        self.assertEqual(proc_starttime(sleeper), sleeper_start, "the pod kept running")
        self.daemon.start()
        c = type(self).client = self.new_client(self.daemon.socket)
        self.assertEqual(self.container_status(c, cid).status.state, pb.CONTAINER_RUNNING)
