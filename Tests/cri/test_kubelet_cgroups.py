"""The kubelet's cgroup tree on a full cgroup v2 host: cgroup_parent, every LinuxContainerResources
field written to the leaf's files, `unified` checked, live resize of containers and of the pod,
memory stats. Needs cpu, memory and pids controllers in cgroup v2: hack/test.sh runs it inside the
VM (hack/vm/run-in-vm.sh); on a hybrid host it skips, unless PODSHIM_REQUIRE_CGROUP_V2=1.
"""

import os
import unittest
import uuid

import grpc

from crihelpers import CRITestCase, RUN_TAG, cgroup2_mount, code_of, container_config, pb, pod_config


def read(path):
    with open(path) as f:
        return f.read().strip()


def v2_with_limits():
    mount = cgroup2_mount()
    if not mount:
        return None
    try:
        controllers = read(mount + "/cgroup.controllers").split()
    except OSError:
        return None
    return mount if {"cpu", "memory", "pids"} <= set(controllers) else None


class KubeletCgroupTreeTest(CRITestCase):

    @classmethod
    def setUpClass(cls):
        if not v2_with_limits():
            if os.environ.get("PODSHIM_REQUIRE_CGROUP_V2") == "1":
                raise AssertionError("PODSHIM_REQUIRE_CGROUP_V2=1 but cgroup v2 has no cpu/memory/pids here")
            raise unittest.SkipTest("cgroup v2 cannot enforce limits on this host (run it in the VM)")
        super().setUpClass()

    def setUp(self):
        self.mount = v2_with_limits()
        self.parents = []

    def tearDown(self):
        super().tearDown()
        for path in reversed(self.parents):
            try:
                os.rmdir(path)
            except OSError:
                pass

    def test_cgroup_parent_resources_and_live_resize(self):
        c = self.client
        uid = "%s-%s" % (RUN_TAG, uuid.uuid4().hex[:12])
        parent = "/kubepods-%s/burstable/pod%s" % (RUN_TAG, uid)
        self.parents += [self.mount + "/kubepods-" + RUN_TAG, self.mount + "/kubepods-%s/burstable" % RUN_TAG,
                         self.mount + parent]
        cfg = pod_config("tree", uid=uid, log_directory=os.path.join(self.pod_log_root, uid))
        cfg.linux.cgroup_parent = parent
        cfg.linux.resources.cpu_period = 100000
        cfg.linux.resources.cpu_quota = 150000
        cfg.linux.resources.memory_limit_in_bytes = 256 << 20
        cfg.linux.overhead.cpu_quota = 10000
        cfg.linux.overhead.memory_limit_in_bytes = 16 << 20
        self.track(uid=uid)
        pod_id = c.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=240).pod_sandbox_id
        self.track(pod_id=pod_id)
        pod_dir = self.mount + parent
        self.assertEqual(read(pod_dir + "/cpu.max"), "160000 100000", "pod resources plus overhead")
        self.assertEqual(read(pod_dir + "/memory.max"), str(272 << 20))
        self.assertTrue(read(pod_dir + "/" + pod_id + "/cgroup.procs"), "pause in <parent>/<sandbox id>")

        res = pb.LinuxContainerResources(cpu_period=50000, cpu_quota=25000, cpu_shares=512,
                                         memory_limit_in_bytes=64 << 20, memory_swap_limit_in_bytes=64 << 20,
                                         cpuset_cpus="0", unified={"memory.high": str(48 << 20)})
        ccfg = container_config("app", ["sleep", "3600"], resources=res)
        cid = c.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg),
                                   timeout=60).container_id
        self.start_container(c, cid)
        leaf = pod_dir + "/" + cid
        self.assertEqual(read(leaf + "/cpu.max"), "25000 50000")
        self.assertEqual(read(leaf + "/cpu.weight"), "59", "512 shares, runc/crun's formula")
        self.assertEqual(read(leaf + "/memory.max"), str(64 << 20))
        self.assertEqual(read(leaf + "/memory.high"), str(48 << 20), "unified, written last")
        if os.path.exists(leaf + "/memory.swap.max"):
            self.assertEqual(read(leaf + "/memory.swap.max"), "0", "memory+swap = memory: no swap")
        if os.path.exists(leaf + "/cpuset.cpus"):
            self.assertEqual(read(leaf + "/cpuset.cpus"), "0")
        pid = int(read(leaf + "/cgroup.procs").split()[0])
        self.assertEqual(read("/proc/%d/cgroup" % pid), "0::%s/%s" % (parent, cid))

        stats = c.rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid), timeout=30).stats
        self.assertGreater(stats.memory.working_set_bytes.value, 0)
        self.assertGreater(stats.memory.available_bytes.value, 0)
        self.assertLessEqual(stats.memory.available_bytes.value, 64 << 20)
        self.assertTrue(stats.memory.HasField("page_faults"))
        pod_stats = c.rt.PodSandboxStats(pb.PodSandboxStatsRequest(pod_sandbox_id=pod_id), timeout=30).stats
        self.assertGreaterEqual(pod_stats.linux.process.process_count.value, 2)
        self.assertGreater(pod_stats.linux.memory.usage_bytes.value, 0)

        # Live resize of the container, then of the pod (the kubelet's in-place resize order).
        new = pb.LinuxContainerResources(cpu_period=100000, cpu_quota=50000, cpu_shares=1024,
                                         memory_limit_in_bytes=128 << 20)
        c.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(container_id=cid, linux=new), timeout=30)
        self.assertEqual(read(leaf + "/cpu.max"), "50000 100000")
        self.assertEqual(read(leaf + "/cpu.weight"), "100")
        self.assertEqual(read(leaf + "/memory.max"), str(128 << 20))
        self.assertEqual(self.container_status(c, cid).status.resources.linux.memory_limit_in_bytes, 128 << 20)
        c.rt.UpdatePodSandboxResources(pb.UpdatePodSandboxResourcesRequest(
            pod_sandbox_id=pod_id, resources=pb.LinuxContainerResources(cpu_period=100000, cpu_quota=300000,
                                                                        memory_limit_in_bytes=512 << 20)), timeout=30)
        self.assertEqual(read(pod_dir + "/cpu.max"), "300000 100000")
        self.assertEqual(read(pod_dir + "/memory.max"), str(512 << 20))

        # `unified`: only files of enabled controllers that exist, named in the error.
        for key in ("memory.nonexistent", "rdma.max"):
            code, details, _ = code_of(c.rt.UpdateContainerResources, pb.UpdateContainerResourcesRequest(
                container_id=cid, linux=pb.LinuxContainerResources(unified={key: "1"})), timeout=30)
            self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
            self.assertIn(key, details)
        self.assertEqual(read(leaf + "/memory.max"), str(128 << 20), "a refused update changes nothing")

        c.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
        self.assertTrue(os.path.isdir(pod_dir), "the kubelet's pod cgroup stays: the kubelet removes it")
        self.assertFalse(os.path.exists(leaf))
        self.assertFalse(os.path.exists(pod_dir + "/" + pod_id))

    def test_memory_limit_ends_in_oomkilled(self):
        c = self.client
        pod_id, cfg = self.run_pod(c, "oom")
        # dd touches its whole 128 MiB buffer at once: far past the 32 MiB limit, killed at once
        # (a slowly growing hog would thrash for a minute under the VM's emulation).
        ccfg = container_config("hog", ["dd", "if=/dev/zero", "of=/dev/null", "bs=128M", "count=1"],
                                resources=pb.LinuxContainerResources(memory_limit_in_bytes=32 << 20))
        cid = c.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg),
                                   timeout=60).container_id
        self.start_container(c, cid)
        st = self.wait_container_state(c, cid, pb.CONTAINER_EXITED, timeout=120)
        self.assertEqual((st.reason, st.exit_code), ("OOMKilled", 137), st.message)
