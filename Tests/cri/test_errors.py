"""gRPC status codes for bad ids, missing fields, wrong states and unimplemented RPCs."""

import grpc

from crihelpers import CRITestCase, code_of, container_config, pb, pod_config

NOT_FOUND = grpc.StatusCode.NOT_FOUND
INVALID = grpc.StatusCode.INVALID_ARGUMENT
OK = grpc.StatusCode.OK
UNKNOWN_ID = "f" * 64


class ErrorsTest(CRITestCase):

    def test_unknown_ids_are_not_found(self):
        rt = self.client.rt
        cases = [
            ("ContainerStatus", rt.ContainerStatus, pb.ContainerStatusRequest(container_id=UNKNOWN_ID)),
            ("PodSandboxStatus", rt.PodSandboxStatus, pb.PodSandboxStatusRequest(pod_sandbox_id=UNKNOWN_ID)),
            ("StartContainer", rt.StartContainer, pb.StartContainerRequest(container_id=UNKNOWN_ID)),
            ("ExecSync", rt.ExecSync, pb.ExecSyncRequest(container_id=UNKNOWN_ID, cmd=["true"])),
            ("ContainerStats", rt.ContainerStats, pb.ContainerStatsRequest(container_id=UNKNOWN_ID)),
            ("UpdateContainerResources", rt.UpdateContainerResources,
             pb.UpdateContainerResourcesRequest(container_id=UNKNOWN_ID, linux=pb.LinuxContainerResources())),
            ("ReopenContainerLog", rt.ReopenContainerLog, pb.ReopenContainerLogRequest(container_id=UNKNOWN_ID)),
            ("CreateContainer", rt.CreateContainer, pb.CreateContainerRequest(
                pod_sandbox_id=UNKNOWN_ID, config=container_config("x", ["true"]),
                sandbox_config=pod_config("x"))),
        ]
        for name, fn, req in cases:
            with self.subTest(rpc=name):
                code, details, _ = code_of(fn, req, timeout=10)
                self.assertEqual(code, NOT_FOUND, "%s: %s %r" % (name, code, details))

    def test_empty_ids_are_invalid_and_named(self):
        rt = self.client.rt
        cases = [
            ("ContainerStatus", rt.ContainerStatus, pb.ContainerStatusRequest(), "container_id"),
            ("PodSandboxStatus", rt.PodSandboxStatus, pb.PodSandboxStatusRequest(), "pod_sandbox_id"),
            ("StartContainer", rt.StartContainer, pb.StartContainerRequest(), "container_id"),
            ("ExecSync", rt.ExecSync, pb.ExecSyncRequest(cmd=["true"]), "container_id"),
            ("ContainerStats", rt.ContainerStats, pb.ContainerStatsRequest(), "container_id"),
            ("CreateContainer", rt.CreateContainer, pb.CreateContainerRequest(
                config=container_config("x", ["true"]), sandbox_config=pod_config("x")), "pod_sandbox_id"),
            ("RunPodSandbox(no metadata)", rt.RunPodSandbox,
             pb.RunPodSandboxRequest(config=pb.PodSandboxConfig(hostname="x")), "metadata"),
        ]
        for name, fn, req, field in cases:
            with self.subTest(rpc=name):
                code, details, _ = code_of(fn, req, timeout=10)
                self.assertEqual(code, INVALID, "%s: %s %r" % (name, code, details))
                self.assertIn(field, details, "%s: details should name %s" % (name, field))

    def test_bad_container_configs(self):
        c = self.client
        pod_id, cfg = self.run_pod(c, "badcfg")
        rt = c.rt
        no_meta = container_config("x", ["true"])
        no_meta.ClearField("metadata")
        no_image = container_config("y", ["true"])
        no_image.ClearField("image")
        missing_image = container_config("z", ["true"])
        missing_image.image.image = "no-such-image-xyz"
        for name, ccfg, want_in in [("no metadata", no_meta, "metadata"), ("no image", no_image, "image"),
                                    ("missing image", missing_image, "no-such-image-xyz")]:
            with self.subTest(case=name):
                code, details, _ = code_of(rt.CreateContainer, pb.CreateContainerRequest(
                    pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg), timeout=10)
                self.assertNotEqual(code, OK, name)
                self.assertIn(code, (INVALID, NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION), details)
                self.assertIn(want_in, details)
        cid = self.create_container(c, pod_id, cfg, "s", ["sleep", "3600"])
        self.start_container(c, cid)
        code, details, _ = code_of(rt.ExecSync, pb.ExecSyncRequest(container_id=cid, cmd=[]), timeout=10)
        self.assertEqual(code, INVALID, details)
        self.assertIn("cmd", details)
        # A command that does not exist fails the exec, not the daemon.
        code, details, resp = code_of(rt.ExecSync, pb.ExecSyncRequest(container_id=cid, cmd=["/no/such/binary"],
                                                                     timeout=5), timeout=15)
        if code == OK:
            self.assertNotEqual(resp.exit_code, 0)
        # A container whose command does not exist: StartContainer fails or it exits non-zero.
        bad = self.create_container(c, pod_id, cfg, "nocmd", ["/no/such/binary"])
        code, details, _ = code_of(rt.StartContainer, pb.StartContainerRequest(container_id=bad), timeout=15)
        if code == OK:
            st = self.wait_container_state(c, bad, pb.CONTAINER_EXITED)
            self.assertNotEqual(st.exit_code, 0)
        else:
            self.assertIn("/no/such/binary", details)

    def test_start_twice_is_failed_precondition(self):
        c = self.client
        pod_id, cfg, cid = self.run_pod_with_sleeper(c, "twice")
        code, details, _ = code_of(c.rt.StartContainer, pb.StartContainerRequest(container_id=cid), timeout=10)
        self.assertNotEqual(code, OK)
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, details)
        self.assertEqual(self.container_status(c, cid).status.state, pb.CONTAINER_RUNNING)
        # Starting an exited container is also refused.
        c.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0), timeout=15)
        code, details, _ = code_of(c.rt.StartContainer, pb.StartContainerRequest(container_id=cid), timeout=10)
        self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, details)
        # Creating a container in a stopped sandbox is refused.
        c.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=15)
        code, details, _ = code_of(c.rt.CreateContainer, pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=container_config("late", ["true"]), sandbox_config=cfg), timeout=10)
        self.assertNotEqual(code, OK, "CreateContainer in a stopped sandbox succeeded")

    def test_stop_and_remove_are_idempotent(self):
        c = self.client
        rt = c.rt
        pod_id, cfg, cid = self.run_pod_with_sleeper(c, "idem")
        for _ in range(2):
            self.assertCode(OK, rt.StopContainer, pb.StopContainerRequest(container_id=cid, timeout=0))
        for _ in range(2):
            self.assertCode(OK, rt.RemoveContainer, pb.RemoveContainerRequest(container_id=cid))
        for _ in range(2):
            self.assertCode(OK, rt.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=pod_id))
        for _ in range(2):
            self.assertCode(OK, rt.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id))
        self.assertCode(OK, rt.RemoveContainer, pb.RemoveContainerRequest(container_id=UNKNOWN_ID))
        self.assertCode(OK, rt.RemovePodSandbox, pb.RemovePodSandboxRequest(pod_sandbox_id=UNKNOWN_ID))
        self.assertCode(OK, rt.StopPodSandbox, pb.StopPodSandboxRequest(pod_sandbox_id=UNKNOWN_ID))
        self.assertCode(OK, rt.StopContainer, pb.StopContainerRequest(container_id=UNKNOWN_ID))

    def test_remove_running_container(self):
        # RemoveContainer of a running container: either refused (FAILED_PRECONDITION) or it is
        # stopped and removed; in both cases the daemon's view stays consistent.
        c = self.client
        pod_id, cfg, cid = self.run_pod_with_sleeper(c, "rmrunning")
        code, details, _ = code_of(c.rt.RemoveContainer, pb.RemoveContainerRequest(container_id=cid), timeout=30)
        if code == OK:
            code2, _, _ = code_of(c.rt.ContainerStatus, pb.ContainerStatusRequest(container_id=cid), timeout=10)
            self.assertEqual(code2, NOT_FOUND)
        else:
            self.assertEqual(code, grpc.StatusCode.FAILED_PRECONDITION, details)
            self.assertEqual(self.container_status(c, cid).status.state, pb.CONTAINER_RUNNING)

    def test_duplicates_are_already_exists(self):
        c = self.client
        rt = c.rt
        pod_id, cfg = self.run_pod(c, "dup")
        code, details, _ = code_of(rt.RunPodSandbox, pb.RunPodSandboxRequest(config=cfg), timeout=15)
        self.assertEqual(code, grpc.StatusCode.ALREADY_EXISTS, details)
        # Another attempt of the same pod is a different sandbox.
        cfg2 = pb.PodSandboxConfig()
        cfg2.CopyFrom(cfg)
        cfg2.metadata.attempt = 1
        pod2 = rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg2), timeout=15).pod_sandbox_id
        self.track(pod_id=pod2)
        self.assertNotEqual(pod2, pod_id)

        self.create_container(c, pod_id, cfg, "same", ["sleep", "3600"])
        code, details, _ = code_of(rt.CreateContainer, pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=container_config("same", ["sleep", "3600"]), sandbox_config=cfg),
            timeout=15)
        self.assertEqual(code, grpc.StatusCode.ALREADY_EXISTS, details)
        self.create_container(c, pod_id, cfg, "same", ["sleep", "3600"], attempt=1)
        # The same container name in another pod is fine.
        self.create_container(c, pod2, cfg2, "same", ["sleep", "3600"])

    def test_pull_from_an_unreachable_registry_fails_clearly(self):
        # Nothing listens on 127.0.0.1:1 (no traffic leaves the host): UNAVAILABLE naming the registry.
        code, details, _ = code_of(self.client.img.PullImage, pb.PullImageRequest(
            image=pb.ImageSpec(image="127.0.0.1:1/library/nginx:1.25")), timeout=30)
        self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, details)
        self.assertIn("127.0.0.1:1", details)

    def test_unimplemented_rpcs(self):
        rt = self.client.rt
        cases = [
            ("CheckpointContainer", rt.CheckpointContainer,
             pb.CheckpointContainerRequest(container_id=UNKNOWN_ID, location="/tmp/x")),
            ("RestorePod", rt.RestorePod, pb.RestorePodRequest(checkpoint_path="/tmp/x")),
        ]
        for name, fn, req in cases:
            with self.subTest(rpc=name):
                code, details, _ = code_of(fn, req, timeout=10)
                self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED, "%s: %s %r" % (name, code, details))
        # An RPC that the proto does not have at all.
        call = self.client.channel.unary_unary("/runtime.v1.RuntimeService/NoSuchMethod")
        code, _, _ = code_of(call, b"", timeout=10)
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED)
        call = self.client.channel.unary_unary("/runtime.v9.Nope/Version")
        code, _, _ = code_of(call, b"", timeout=10)
        self.assertEqual(code, grpc.StatusCode.UNIMPLEMENTED)


if __name__ == "__main__":
    import unittest
    unittest.main()
