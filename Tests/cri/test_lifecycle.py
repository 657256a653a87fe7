"""Pod and container lifecycle over CRI, with GetContainerEvents observed in a thread."""

import os
import re
import time

import grpc

from crihelpers import CRITestCase, EventCollector, IMAGE, code_of, pb, read_until

CRI_LINE = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)) (stdout|stderr) (F|P) (.*)$")


class LifecycleTest(CRITestCase):

    def test_full_lifecycle(self):
        c = self.client
        events = EventCollector(c)
        self.addCleanup(events.stop)
        time.sleep(0.2)  # let the stream be established before the first event

        pod_id, pod_cfg = self.run_pod(c, "life", labels={"app": "life"})
        self.assertRegex(pod_id, r"^[0-9a-f]{64}$")
        st = c.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=10).status
        self.assertEqual(st.id, pod_id)
        self.assertEqual(st.state, pb.SANDBOX_READY)
        self.assertEqual(st.metadata.name, "life")
        self.assertEqual(st.labels["app"], "life")
        self.assertGreater(st.created_at, 0)

        a = self.create_container(c, pod_id, pod_cfg, "a", ["sleep", "3600"], labels={"role": "a"})
        b = self.create_container(c, pod_id, pod_cfg, "b", ["/bin/sh", "-c", "echo hello; sleep 3600"],
                                  log_path="b.log", labels={"role": "b"})
        self.assertRegex(a, r"^[0-9a-f]+$")
        self.assertNotEqual(a, b)
        for cid in (a, b):
            st = self.container_status(c, cid).status
            self.assertEqual(st.state, pb.CONTAINER_CREATED, cid)
            self.assertGreater(st.created_at, 0)
        self.start_container(c, a)
        self.start_container(c, b)

        r = c.rt.ExecSync(pb.ExecSyncRequest(container_id=a, cmd=["echo", "hi"], timeout=10), timeout=20)
        self.assertEqual((r.stdout, r.exit_code), (b"hi\n", 0))
        r = c.rt.ExecSync(pb.ExecSyncRequest(container_id=a, cmd=["sh", "-c", "echo err >&2; exit 3"],
                                             timeout=10), timeout=20)
        self.assertEqual(r.exit_code, 3)
        self.assertEqual(r.stderr, b"err\n")

        for cid in (a, b):
            st = self.container_status(c, cid).status
            self.assertEqual(st.state, pb.CONTAINER_RUNNING, cid)
            self.assertGreater(st.started_at, 0)
            self.assertGreaterEqual(st.started_at, st.created_at)
            # The image's reference, fully qualified, as containerd reports it (the config said "busybox").
            self.assertEqual(st.image.image, "docker.io/library/%s:latest" % IMAGE)
        stats = c.rt.ContainerStats(pb.ContainerStatsRequest(container_id=a), timeout=10).stats
        self.assertEqual(stats.attributes.id, a)
        ls = c.rt.ListContainerStats(pb.ListContainerStatsRequest(
            filter=pb.ContainerStatsFilter(pod_sandbox_id=pod_id)), timeout=10).stats
        self.assertEqual(sorted(s.attributes.id for s in ls), sorted([a, b]))

        t0 = time.time()
        c.rt.StopContainer(pb.StopContainerRequest(container_id=a, timeout=2), timeout=30)
        self.assertLess(time.time() - t0, 10)
        st = self.container_status(c, a).status
        self.assertEqual(st.state, pb.CONTAINER_EXITED)
        self.assertIn(st.exit_code, (137, 143))
        self.assertGreaterEqual(st.finished_at, st.started_at)
        self.assertTrue(st.reason, "an exited container has a reason")

        def ids(**filt):
            resp = c.rt.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(**filt)), timeout=10)
            return sorted(x.id for x in resp.containers)

        self.assertEqual(ids(pod_sandbox_id=pod_id), sorted([a, b]))
        self.assertEqual(ids(id=a), [a])
        self.assertEqual(ids(state=pb.ContainerStateValue(state=pb.CONTAINER_RUNNING), pod_sandbox_id=pod_id), [b])
        self.assertEqual(ids(state=pb.ContainerStateValue(state=pb.CONTAINER_EXITED), pod_sandbox_id=pod_id), [a])
        self.assertEqual(ids(label_selector={"role": "b"}, pod_sandbox_id=pod_id), [b])
        self.assertEqual(ids(pod_sandbox_id="0" * 64), [])
        pods = c.rt.ListPodSandbox(pb.ListPodSandboxRequest(
            filter=pb.PodSandboxFilter(label_selector={"app": "life"})), timeout=10).items
        self.assertEqual([p.id for p in pods], [pod_id])
        pods = c.rt.ListPodSandbox(pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(
            state=pb.PodSandboxStateValue(state=pb.SANDBOX_NOTREADY))), timeout=10).items
        self.assertNotIn(pod_id, [p.id for p in pods])

        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
        self.assertEqual(list(c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items), [])
        self.assertEqual(list(c.rt.ListContainers(pb.ListContainersRequest(), timeout=10).containers), [])
        code, _, _ = code_of(c.rt.ContainerStatus, pb.ContainerStatusRequest(container_id=a), timeout=10)
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)

        want = [(cid, t) for cid in (a, b) for t in (pb.CONTAINER_CREATED_EVENT, pb.CONTAINER_STARTED_EVENT,
                                                     pb.CONTAINER_STOPPED_EVENT, pb.CONTAINER_DELETED_EVENT)]
        missing = [(cid[:12], pb.ContainerEventType.Name(t)) for cid, t in want if not events.wait_for(cid, t, 10)]
        self.assertEqual(missing, [], "events seen: %s (stream error: %s)" % (events.summary(), events.error))
        # Order per container: created < started < stopped < deleted.
        for cid in (a, b):
            seq = [e.container_event_type for e in events.events if e.container_id == cid]
            firsts = [seq.index(t) for t in (pb.CONTAINER_CREATED_EVENT, pb.CONTAINER_STARTED_EVENT,
                                             pb.CONTAINER_STOPPED_EVENT, pb.CONTAINER_DELETED_EVENT)]
            self.assertEqual(firsts, sorted(firsts), "event order for %s: %s" % (cid[:12], seq))
            for e in events.events:
                if e.container_id == cid:
                    self.assertGreater(e.created_at, 0)

    def test_pod_shares_ipc_and_hostname(self):
        c = self.client
        pod_id, cfg = self.run_pod(c, "share", hostname="share-host")
        a = self.create_container(c, pod_id, cfg, "a", ["sleep", "3600"])
        b = self.create_container(c, pod_id, cfg, "b", ["sleep", "3600"])
        self.start_container(c, a)
        self.start_container(c, b)
        r = c.rt.ExecSync(pb.ExecSyncRequest(container_id=a, cmd=["sh", "-c", "echo shared > /dev/shm/x"],
                                             timeout=10), timeout=20)
        self.assertEqual(r.exit_code, 0, r.stderr)
        r = c.rt.ExecSync(pb.ExecSyncRequest(container_id=b, cmd=["cat", "/dev/shm/x"], timeout=10), timeout=20)
        self.assertEqual((r.exit_code, r.stdout), (0, b"shared\n"), r.stderr)
        r = c.rt.ExecSync(pb.ExecSyncRequest(container_id=b, cmd=["hostname"], timeout=10), timeout=20)
        self.assertEqual(r.stdout, b"share-host\n")
        # Each container has its own pid namespace: its init is pid 1.
        r = c.rt.ExecSync(pb.ExecSyncRequest(container_id=a, cmd=["cat", "/proc/1/cmdline"], timeout=10), timeout=20)
        self.assertEqual(r.stdout.split(b"\0")[0], b"sleep")

    def test_pod_shares_localhost(self):
        c = self.client
        pod_id, cfg = self.run_pod(c, "net")
        web = self.create_container(c, pod_id, cfg, "web", ["httpd", "-f", "-p", "8080", "-h", "/var/www"])
        client = self.create_container(c, pod_id, cfg, "client", ["sleep", "3600"])
        self.start_container(c, web)
        self.start_container(c, client)
        deadline = time.time() + 10
        r = None
        while time.time() < deadline:
            r = c.rt.ExecSync(pb.ExecSyncRequest(container_id=client, timeout=5,
                                                 cmd=["wget", "-q", "-O", "-", "http://127.0.0.1:8080/"]), timeout=20)
            if r.exit_code == 0:
                break
            time.sleep(0.2)
        self.assertEqual(r.exit_code, 0, r.stderr)
        self.assertIn(b"it works", r.stdout)

    def test_env_and_args(self):
        c = self.client
        pod_id, cfg = self.run_pod(c, "env")
        cid = self.create_container(c, pod_id, cfg, "e", ["/bin/sh", "-c"], args=["echo $FOO-$1; exit 7", "x"],
                                    envs={"FOO": "bar"}, log_path="e.log")
        self.start_container(c, cid)
        st = self.wait_container_state(c, cid, pb.CONTAINER_EXITED)
        self.assertEqual(st.exit_code, 7)
        self.assertEqual(st.reason, "Error")
        path = os.path.join(cfg.log_directory, "e.log")
        self.assertTrue(os.path.exists(path), path)
        with open(path) as f:
            lines = [CRI_LINE.match(x.rstrip("\n")) for x in f]
        self.assertTrue(lines and all(lines), "CRI log format")
        self.assertEqual([m.group(6) for m in lines], ["bar-"])

    def test_exit_zero_is_completed(self):
        c = self.client
        pod_id, cfg = self.run_pod(c, "done")
        cid = self.create_container(c, pod_id, cfg, "d", ["true"])
        self.start_container(c, cid)
        st = self.wait_container_state(c, cid, pb.CONTAINER_EXITED)
        self.assertEqual((st.exit_code, st.reason), (0, "Completed"))
        self.assertGreaterEqual(st.finished_at, st.started_at)

    def test_exec_sync_timeout(self):
        c = self.client
        pod_id, cfg, cid = self.run_pod_with_sleeper(c, "exectimeout")
        t0 = time.time()
        code, details, resp = code_of(c.rt.ExecSync, pb.ExecSyncRequest(
            container_id=cid, cmd=["sleep", "10"], timeout=1), timeout=20)
        elapsed = time.time() - t0
        self.assertLess(elapsed, 6, "ExecSync timeout=1 took %.1fs" % elapsed)
        if code == grpc.StatusCode.OK:
            self.assertNotEqual(resp.exit_code, 0, "a timed-out exec must not report success")
        else:
            self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED, details)
        # The container is unaffected.
        r = c.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["echo", "ok"], timeout=5), timeout=20)
        self.assertEqual(r.stdout, b"ok\n")
        self.assertEqual(self.container_status(c, cid).status.state, pb.CONTAINER_RUNNING)

    def test_log_file_is_cri_format(self):
        c = self.client
        pod_id, cfg = self.run_pod(c, "logs")
        cid = self.create_container(c, pod_id, cfg, "talker",
                                    ["/bin/sh", "-c", "echo hello; echo oops >&2; printf partial; sleep 3600"],
                                    log_path="talker/0.log")
        self.start_container(c, cid)
        path = os.path.join(cfg.log_directory, "talker/0.log")
        st = self.container_status(c, cid).status
        self.assertTrue(st.log_path.endswith("talker/0.log"), st.log_path)
        text = read_until(path, lambda t: "stdout F hello" in t and "oops" in t)
        lines = text.splitlines()
        matches = [CRI_LINE.match(x) for x in lines]
        self.assertTrue(lines, "no log at %s" % path)
        self.assertTrue(all(matches), "not CRI format: %r" % lines)
        got = [(m.group(4), m.group(5), m.group(6)) for m in matches]
        self.assertIn(("stdout", "F", "hello"), got)
        self.assertIn(("stderr", "F", "oops"), got)
        # ReopenContainerLog: after moving the file away the runtime writes a new one.
        os.rename(path, path + ".1")
        c.rt.ReopenContainerLog(pb.ReopenContainerLogRequest(container_id=cid), timeout=10)
        self.assertTrue(os.path.exists(path), "ReopenContainerLog did not create %s" % path)

    def test_resources_and_update(self):
        c = self.client
        pod_id, cfg = self.run_pod(c, "res")
        res = pb.LinuxContainerResources(cpu_period=100000, cpu_quota=50000, cpu_shares=512,
                                         memory_limit_in_bytes=64 << 20)
        cid = self.create_container(c, pod_id, cfg, "r", ["sleep", "3600"], resources=res)
        self.start_container(c, cid)
        c.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
            container_id=cid, linux=pb.LinuxContainerResources(cpu_period=100000, cpu_quota=20000,
                                                               memory_limit_in_bytes=128 << 20)), timeout=10)
        self.assertEqual(self.container_status(c, cid).status.state, pb.CONTAINER_RUNNING)

    def test_stop_pod_sandbox(self):
        c = self.client
        pod_id, cfg, cid = self.run_pod_with_sleeper(c, "stoppod")
        c.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
        st = c.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=10).status
        self.assertEqual(st.state, pb.SANDBOX_NOTREADY)
        self.assertEqual(self.container_status(c, cid).status.state, pb.CONTAINER_EXITED)
        c.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=30)
        code, _, _ = code_of(c.rt.PodSandboxStatus, pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=10)
        self.assertEqual(code, grpc.StatusCode.NOT_FOUND)

    def test_version_and_status(self):
        v = self.client.rt.Version(pb.VersionRequest(version="v1"), timeout=10)
        self.assertEqual(v.runtime_name, "podshim")
        self.assertEqual(v.runtime_api_version, "v1")
        self.assertTrue(v.runtime_version)
        s = self.client.rt.Status(pb.StatusRequest(), timeout=10)
        conds = {x.type: x.status for x in s.status.conditions}
        self.assertTrue(conds.get("RuntimeReady"), "conditions: %s" % s.status.conditions)

    def test_image_service(self):
        img = self.client.img
        names = [t for i in img.ListImages(pb.ListImagesRequest(), timeout=10).images for t in i.repo_tags]
        ids = [i.id for i in img.ListImages(pb.ListImagesRequest(), timeout=10).images]
        self.assertTrue(ids, "ListImages is empty")
        self.assertTrue(any("busybox" in n for n in names + ids), "busybox not listed: %s %s" % (names, ids))
        st = img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=IMAGE)), timeout=10)
        self.assertTrue(st.HasField("image"), "ImageStatus(busybox) has no image")
        missing = img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image="nope-%d" % os.getpid())),
                                  timeout=10)
        self.assertFalse(missing.HasField("image"), "a missing image is reported as an unset image")
        fs = img.ImageFsInfo(pb.ImageFsInfoRequest(), timeout=10)
        self.assertTrue(fs.image_filesystems, "ImageFsInfo has no image filesystem")


if __name__ == "__main__":
    import unittest
    unittest.main()
