"""The daemon's stops use the same termination code as `podshim run`: stop signal, SIGKILL at the
deadline, and a stop under way when the daemon dies is run again with the full grace period."""

import threading
import time

from crihelpers import CRITestCase, pb

STUBBORN = ["sh", "-c", "trap '' TERM; echo ready; while true; do sleep 0.05; done"]


class TerminationTest(CRITestCase):

    def stubborn(self, name, **kw):
        pod_id, cfg = self.run_pod(self.client, name)
        ccfg_kw = {}
        cid = self.create_container(self.client, pod_id, cfg, "app", STUBBORN, **kw)
        self.start_container(self.client, cid)
        time.sleep(0.3)
        return pod_id, cid

    def test_sigkill_no_earlier_than_the_timeout(self):
        _, cid = self.stubborn("t-stubborn")
        begin = time.monotonic()
        self.client.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=2), timeout=30)
        elapsed = time.monotonic() - begin
        st = self.container_status(self.client, cid).status
        self.assertEqual(st.state, pb.CONTAINER_EXITED)
        self.assertEqual(st.exit_code, 137)
        self.assertGreaterEqual(elapsed, 2.0, "SIGKILL before the deadline")

    def test_stop_signal_from_the_config(self):
        pod_id, cfg = self.run_pod(self.client, "t-usr1")
        ccfg_cmd = ["sh", "-c", "trap 'exit 7' USR1; trap '' TERM; echo ready; while true; do sleep 0.05; done"]
        from crihelpers import container_config
        ccfg = container_config("app", ccfg_cmd)
        ccfg.stop_signal = pb.SIGNAL_SIGUSR1
        cid = self.client.rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg), timeout=30).container_id
        self.start_container(self.client, cid)
        time.sleep(0.3)
        self.client.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=20), timeout=30)
        st = self.container_status(self.client, cid).status
        self.assertEqual(st.exit_code, 7, "SIGUSR1 should have ended it: %s" % st)

    def test_stop_resumes_with_the_full_grace_after_a_restart(self):
        _, cid = self.stubborn("t-resume")
        grace = 3

        def stop():
            try:
                self.client.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=grace), timeout=30)
            except Exception:
                pass  # the daemon dies under this call

        caller = threading.Thread(target=stop)
        caller.start()
        time.sleep(1.0)
        type(self).remember_descendants()
        self.daemon.kill()
        caller.join()
        time.sleep(1.5)  # past nothing yet: the original deadline is 3 s after the stop began
        restarted = time.monotonic()
        self.daemon.start()
        type(self).client = self.new_client(self.daemon.socket)
        st = self.container_status(self.client, cid).status
        self.assertEqual(st.state, pb.CONTAINER_RUNNING, "killed before the resumed grace period ended")
        st = self.wait_container_state(self.client, cid, pb.CONTAINER_EXITED, timeout=grace + 15)
        waited = time.monotonic() - restarted
        self.assertEqual(st.exit_code, 137)
        self.assertGreaterEqual(waited, grace - 0.5,
                                "the resumed stop must give the full grace period again (%.2fs)" % waited)
        self.assertIn("resumed with the full grace period", self.daemon.stderr_text())
