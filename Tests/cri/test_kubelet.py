"""A kubelet's view of podshim: the CRI call sequence of a pod's whole life, checked against the
kubelet's own decision rules, and the fields a kubelet sends (host namespaces, sysctls, DNS,
security context, mount propagation, cgroup_parent, resources, stats) applied or refused.

The rules are those of kubernetes/kubernetes pkg/kubelet/kuberuntime (kuberuntime_manager.go
computePodActions, util.go PodSandboxChanged): a sandbox is replaced when none is ready, when more
than one is ready, when its network namespace mode differs from the pod's hostNetwork, or when it
reports a `network` with an empty IP; a container is restarted unless it is RUNNING.
"""

import ctypes
import os
import socket
import subprocess
import time
import uuid

import grpc

from crihelpers import (CRITestCase, IMAGE, RUN_TAG, cgroup2_mount, code_of, container_config, pb,
                        pod_config)

POD_UID_LABEL = "io.kubernetes.pod.uid"

# The kubelet's defaults for a non-privileged container (pkg/securitycontext/util.go).
KUBELET_MASKED = ["/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
                  "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
                  "/sys/firmware", "/sys/devices/virtual/powercap"]
KUBELET_READONLY = ["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"]


def sandbox_changed(client, uid, host_network):
    """The kubelet's PodSandboxChanged for the pod `uid`: (changed, reason)."""
    items = client.rt.ListPodSandbox(pb.ListPodSandboxRequest(
        filter=pb.PodSandboxFilter(label_selector={POD_UID_LABEL: uid})), timeout=10).items
    if not items:
        return True, "no sandbox"
    items = sorted(items, key=lambda s: s.created_at, reverse=True)
    statuses = [client.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=s.id), timeout=10).status
                for s in items]
    ready = [s for s in statuses if s.state == pb.SANDBOX_READY]
    if len(ready) > 1:
        return True, "more than one ready sandbox"
    newest = statuses[0]
    if newest.state != pb.SANDBOX_READY:
        return True, "newest sandbox not ready"
    want = pb.NODE if host_network else pb.POD
    if newest.linux.namespaces.options.network != want:
        return True, "network namespace mode %s, pod wants %s" % (newest.linux.namespaces.options.network, want)
    if not host_network and newest.HasField("network") and newest.network.ip == "":
        return True, "network present with an empty IP"
    return False, ""


def exec_ok(test, client, cid, cmd, timeout=10):
    r = client.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout), timeout=timeout + 10)
    test.assertEqual(r.exit_code, 0, "%s: exit %d, stderr %r" % (cmd, r.exit_code, r.stderr))
    return r.stdout.decode()


def exec_any(client, cid, cmd, timeout=10):
    return client.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout), timeout=timeout + 10)


class KubeletSequenceTest(CRITestCase):
    """One pod's whole life as a kubelet drives it, with the kubelet's rules at every step."""

    def setUp(self):
        self.cgroup_dirs = []

    def tearDown(self):
        super().tearDown()
        # The kubelet owns the parent cgroups: the test plays the kubelet and removes them.
        for path in reversed(self.cgroup_dirs):
            try:
                os.rmdir(path)
            except OSError:
                pass

    def kubelet_pod_config(self, name, uid, parent="", host_network=False, attempt=0):
        cfg = pod_config(name, uid=uid, attempt=attempt,
                         log_directory=os.path.join(self.pod_log_root, "default_%s_%s" % (name, uid)))
        cfg.labels[POD_UID_LABEL] = uid
        cfg.labels["io.kubernetes.pod.name"] = name
        cfg.labels["io.kubernetes.pod.namespace"] = "default"
        cfg.annotations["kubernetes.io/config.source"] = "file"
        cfg.annotations["kubernetes.io/config.seen"] = "2026-12-03T18:00:00.123456789Z"
        cfg.dns_config.servers.append("10.96.0.10")
        cfg.dns_config.searches.extend(["default.svc.cluster.local", "svc.cluster.local"])
        cfg.dns_config.options.append("ndots:5")
        cfg.port_mappings.add(protocol=pb.TCP, container_port=8080, host_port=0)
        cfg.linux.cgroup_parent = parent
        sc = cfg.linux.security_context
        sc.namespace_options.network = pb.NODE if host_network else pb.POD
        sc.namespace_options.pid = pb.CONTAINER
        sc.namespace_options.ipc = pb.POD
        sc.seccomp.profile_type = pb.SecurityProfile.RuntimeDefault
        if host_network:
            cfg.hostname = ""
        return cfg

    def kubelet_container_config(self, name, command, pod_dir, attempt=0):
        cfg = container_config(name, command, log_path="%s/%d.log" % (name, attempt), attempt=attempt,
                               envs={"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"})
        cfg.labels["io.kubernetes.container.name"] = name
        cfg.labels[POD_UID_LABEL] = "x"
        # Byte for byte: the kubelet restarts a container whose hash annotation changed.
        cfg.annotations["io.kubernetes.container.hash"] = "9f3c1a2b"
        cfg.annotations["io.kubernetes.container.restartCount"] = str(attempt)
        cfg.annotations["io.kubernetes.container.terminationMessagePath"] = "/dev/termination-log"
        cfg.annotations["io.kubernetes.container.terminationMessagePolicy"] = "File"
        cfg.annotations["io.kubernetes.pod.terminationGracePeriod"] = "30"
        os.makedirs(pod_dir, exist_ok=True)
        termination = os.path.join(pod_dir, "termination-log-" + name)
        open(termination, "w").close()
        cfg.mounts.add(host_path=termination, container_path="/dev/termination-log")
        sc = cfg.linux.security_context
        sc.masked_paths.extend(KUBELET_MASKED)
        sc.readonly_paths.extend(KUBELET_READONLY)
        sc.seccomp.profile_type = pb.SecurityProfile.RuntimeDefault
        sc.run_as_user.value = 0
        sc.namespace_options.pid = pb.CONTAINER
        cfg.linux.resources.cpu_period = 100000
        cfg.linux.resources.cpu_quota = 50000
        cfg.linux.resources.cpu_shares = 512
        cfg.linux.resources.memory_limit_in_bytes = 128 << 20
        cfg.linux.resources.oom_score_adj = 900
        return cfg

    def test_pod_life_as_a_kubelet_drives_it(self):
        c = self.client
        v = c.rt.Version(pb.VersionRequest(), timeout=10)
        self.assertEqual((v.version, v.runtime_api_version), ("0.1.0", "v1"))
        self.assertTrue(v.runtime_name and v.runtime_version)
        self.assertEqual(c.rt.RuntimeConfig(pb.RuntimeConfigRequest(), timeout=10).linux.cgroup_driver,
                         pb.CGROUPFS, "the enum's zero is SYSTEMD: the answer must be explicit")
        st = c.rt.Status(pb.StatusRequest(verbose=True), timeout=10)
        self.assertGreaterEqual(len(st.status.conditions), 2)
        self.assertTrue(all(cond.status for cond in st.status.conditions))
        self.assertTrue(st.features.supplemental_groups_policy)
        self.assertEqual([h.name for h in st.runtime_handlers], [""])
        self.assertTrue(st.runtime_handlers[0].features.recursive_read_only_mounts)
        self.assertIn("cgroupDriver", st.info["config"])
        c.rt.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(
            runtime_config=pb.RuntimeConfig(network_config=pb.NetworkConfig(pod_cidr="10.88.0.0/16"))), timeout=10)
        self.assertIn("10.88.0.0/16", c.rt.Status(pb.StatusRequest(verbose=True), timeout=10).info["config"])
        image = c.img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=IMAGE)), timeout=10).image
        self.assertTrue(image.id)
        fs = c.img.ImageFsInfo(pb.ImageFsInfoRequest(), timeout=10)
        self.assertGreater(fs.image_filesystems[0].used_bytes.value, 0)

        # RunPodSandbox under the kubelet's pod cgroup.
        uid = "%s-%s" % (RUN_TAG, uuid.uuid4().hex[:12])
        parent = "/podshim-kubelet-%s/pod%s" % (RUN_TAG, uid)
        mount = cgroup2_mount()
        if mount:
            self.cgroup_dirs += [mount + "/podshim-kubelet-" + RUN_TAG, mount + parent]
        cfg = self.kubelet_pod_config("kube", uid, parent=parent)
        pod_id = c.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=240).pod_sandbox_id
        self.track(pod_id=pod_id, uid=uid)
        changed, why = sandbox_changed(c, uid, False)
        self.assertFalse(changed, why)
        status = c.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=10).status
        self.assertFalse(status.HasField("network"), "no pod IP: network must stay unset")
        self.assertEqual(status.metadata, cfg.metadata)
        self.assertEqual(dict(status.labels), dict(cfg.labels))
        self.assertEqual(dict(status.annotations), dict(cfg.annotations))
        self.assertEqual(status.linux.namespaces.options.pid, pb.CONTAINER)
        if mount:
            pause_leaf = mount + parent + "/" + pod_id
            self.assertTrue(os.path.isdir(pause_leaf), "the pause process lives in <cgroup_parent>/<sandbox id>")
            with open(pause_leaf + "/cgroup.procs") as f:
                self.assertTrue(f.read().strip(), "pause is in its leaf")

        # CreateContainer + StartContainer as the kubelet sends them (image by id, log <name>/0.log).
        ccfg = self.kubelet_container_config("app", ["sh", "-c", "echo started; sleep 3600"],
                                             os.path.join(self.base, "kubelet-pods", uid))
        ccfg.image.image = image.id
        cid = c.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg),
                                   timeout=30).container_id
        created = self.container_status(c, cid).status
        self.assertEqual(created.state, pb.CONTAINER_CREATED)
        c.rt.StartContainer(pb.StartContainerRequest(container_id=cid), timeout=30)
        st = self.container_status(c, cid).status
        self.assertEqual(st.state, pb.CONTAINER_RUNNING, "only RUNNING keeps the kubelet from restarting it")
        self.assertEqual(dict(st.annotations), dict(ccfg.annotations))
        self.assertEqual(dict(st.labels), dict(ccfg.labels))
        self.assertEqual(st.metadata, ccfg.metadata)
        self.assertEqual(st.image_ref, image.id)
        self.assertEqual(st.image_id, image.id)
        self.assertEqual(st.log_path, os.path.join(cfg.log_directory, "app/0.log"))
        self.assertEqual([m.container_path for m in st.mounts], ["/dev/termination-log"])
        self.assertEqual(st.resources.linux.cpu_quota, 50000)
        self.assertEqual(st.resources.linux.memory_limit_in_bytes, 128 << 20)
        self.assertGreater(st.started_at, 0)
        if mount:
            self.assertTrue(os.path.isdir(mount + parent + "/" + cid), "the container lives in <cgroup_parent>/<id>")

        # Probes and what the container sees: DNS, masked and read-only paths, oom_score_adj.
        resolv = exec_ok(self, c, cid, ["cat", "/etc/resolv.conf"])
        self.assertIn("nameserver 10.96.0.10", resolv)
        self.assertIn("search default.svc.cluster.local svc.cluster.local", resolv)
        self.assertIn("options ndots:5", resolv)
        self.assertEqual(exec_ok(self, c, cid, ["hostname"]).strip(), "kube")
        self.assertEqual(exec_ok(self, c, cid, ["cat", "/proc/1/oom_score_adj", "/proc/self/oom_score_adj"]).split(),
                         ["900", "900"], "the container and what is exec'd in it")
        self.assertEqual(exec_ok(self, c, cid, ["cat", "/proc/keys", "/proc/timer_list"]), "", "masked")
        r = exec_any(c, cid, ["sh", "-c", "echo 1 > /proc/sys/kernel/ns_last_pid"])
        self.assertNotEqual(r.exit_code, 0, "/proc/sys is read-only")
        self.assertIn("Seccomp:\t2", exec_ok(self, c, cid, ["cat", "/proc/self/status"]), "RuntimeDefault asked for")

        # Relist: the kubelet's filters, then stats.
        listed = c.rt.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(
            label_selector={"io.kubernetes.container.name": "app"}, pod_sandbox_id=pod_id)), timeout=10).containers
        self.assertEqual([x.id for x in listed], [cid])
        self.assertEqual(len(c.rt.ListPodSandbox(pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(
            state=pb.PodSandboxStateValue(state=pb.SANDBOX_READY))), timeout=10).items), 1)
        stats = c.rt.ListContainerStats(pb.ListContainerStatsRequest(), timeout=10).stats
        mine = [s for s in stats if s.attributes.id == cid]
        self.assertEqual(len(mine), 1)
        self.assertGreater(mine[0].cpu.usage_core_nano_seconds.value, 0)
        self.assertTrue(mine[0].writable_layer.fs_id.mountpoint)
        self.assertGreaterEqual(mine[0].writable_layer.inodes_used.value, 1)
        memory_controller = mount and os.path.exists(mount + parent + "/" + cid + "/memory.current")
        self.assertEqual(mine[0].memory.HasField("working_set_bytes"), bool(memory_controller),
                         "working set reported exactly when the memory controller is there")
        pod_stats = c.rt.ListPodSandboxStats(pb.ListPodSandboxStatsRequest(), timeout=10).stats
        self.assertEqual([p.attributes.id for p in pod_stats], [pod_id])
        self.assertEqual([x.attributes.id for x in pod_stats[0].linux.containers], [cid])
        pids_controller = mount and os.path.exists(mount + parent + "/pids.current")
        self.assertEqual(pod_stats[0].linux.process.HasField("process_count"), bool(pids_controller))
        if pids_controller:
            self.assertGreaterEqual(pod_stats[0].linux.process.process_count.value, 2)
        self.assertEqual(len(c.rt.ListMetricDescriptors(pb.ListMetricDescriptorsRequest(), timeout=10).descriptors), 0)

        # Live resize, then what ContainerStatus reports.
        res = pb.LinuxContainerResources(cpu_period=100000, cpu_quota=80000, cpu_shares=1024,
                                         memory_limit_in_bytes=256 << 20)
        c.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(container_id=cid, linux=res), timeout=10)
        self.assertEqual(self.container_status(c, cid).status.resources.linux.cpu_quota, 80000)
        code, details, _ = code_of(c.rt.UpdateContainerResources, pb.UpdateContainerResourcesRequest(
            container_id=cid, linux=pb.LinuxContainerResources(unified={"../cpu.max": "1"})), timeout=10)
        self.assertEqual(code, grpc.StatusCode.INVALID_ARGUMENT, details)
        self.assertIn("unified", details)
        self.assertEqual(self.container_status(c, cid).status.state, pb.CONTAINER_RUNNING, "nothing running was touched")

        changed, why = sandbox_changed(c, uid, False)
        self.assertFalse(changed, why)

        # Delete: StopContainer with the remaining grace, StopPodSandbox, GC's removes.
        c.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=2), timeout=130)
        st = self.container_status(c, cid).status
        self.assertEqual(st.state, pb.CONTAINER_EXITED)
        self.assertGreater(st.finished_at, 0)
        self.assertIn(st.reason, ("Error", "Completed"))
        self.assertIn(st.exit_code, (137, 143), "SIGTERM, or SIGKILL at the deadline (sh is PID 1 and ignores SIGTERM)")
        c.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
        c.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
        status = c.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=10).status
        self.assertEqual(status.state, pb.SANDBOX_NOTREADY)
        c.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=30)
        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=120)
        self.assertCode(grpc.StatusCode.NOT_FOUND, c.rt.PodSandboxStatus,
                        pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id))
        if mount:
            self.assertTrue(os.path.isdir(mount + parent), "the kubelet's parent is the kubelet's to remove")
            self.assertEqual([e for e in os.listdir(mount + parent) if not e.startswith("cgroup.")
                              and os.path.isdir(mount + parent + "/" + e)], [], "podshim's leaves are gone")

    def test_bad_cgroup_parent_is_refused_by_name(self):
        cfg = self.kubelet_pod_config("badparent", "%s-%s" % (RUN_TAG, uuid.uuid4().hex[:12]),
                                      parent="kubepods-burstable.slice")
        details, _ = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.client.rt.RunPodSandbox,
                                     pb.RunPodSandboxRequest(config=cfg))
        self.assertIn("config.linux.cgroup_parent", details)
        self.assertIn("cgroupfs", details)

    def test_host_network_pod(self):
        c = self.client
        uid = "%s-%s" % (RUN_TAG, uuid.uuid4().hex[:12])
        cfg = self.kubelet_pod_config("hostnet", uid, host_network=True)
        pod_id = c.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
        self.track(pod_id=pod_id, uid=uid)
        status = c.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=10).status
        self.assertEqual(status.linux.namespaces.options.network, pb.NODE, "or the kubelet recreates it forever")
        changed, why = sandbox_changed(c, uid, True)
        self.assertFalse(changed, why)
        # A listener on the host's loopback is seen from the container.
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        self.addCleanup(listener.close)
        port = listener.getsockname()[1]
        cid = self.create_container(c, pod_id, cfg, "net", ["sleep", "3600"])
        self.start_container(c, cid)
        netstat = exec_ok(self, c, cid, ["netstat", "-ltn"])
        self.assertIn("127.0.0.1:%d" % port, netstat)
        self.assertEqual(exec_ok(self, c, cid, ["hostname"]).strip(), socket.gethostname(),
                         "a host-network pod keeps the host's name")
        self.assertEqual(exec_ok(self, c, cid, ["sh", "-c", 'echo "$HOSTNAME"; cat /etc/hostname']).split(),
                         [socket.gethostname()] * 2)
        with open("/proc/self/ns/net") as _:
            pass
        self.assertEqual(os.readlink("/proc/self/ns/net"),
                         exec_ok(self, c, cid, ["readlink", "/proc/self/ns/net"]).strip())

    def test_host_pid_and_ipc(self):
        c = self.client
        libc = ctypes.CDLL(None, use_errno=True)
        key = 0x50000000 + (os.getpid() & 0xffff)
        shmid = libc.shmget(key, 4096, 0o1600)  # IPC_CREAT | 0600
        self.assertGreaterEqual(shmid, 0, "shmget: errno %d" % ctypes.get_errno())
        self.addCleanup(lambda: libc.shmctl(shmid, 0, None))  # IPC_RMID
        for host in (True, False):
            cfg = pod_config("hostipc-%s" % str(host).lower(),
                             log_directory=os.path.join(self.pod_log_root, uuid.uuid4().hex[:8]))
            opts = cfg.linux.security_context.namespace_options
            opts.ipc = pb.NODE if host else pb.POD
            opts.pid = pb.NODE if host else pb.CONTAINER
            self.track(uid=cfg.metadata.uid)
            pod_id = c.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
            self.track(pod_id=pod_id)
            ccfg = container_config("c", ["sleep", "3600"])
            ccfg.linux.security_context.namespace_options.pid = opts.pid
            cid = c.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg),
                                       timeout=30).container_id
            self.start_container(c, cid)
            ipcs = exec_ok(self, c, cid, ["cat", "/proc/sysvipc/shm"])
            ids = [line.split()[1] for line in ipcs.splitlines()[1:] if line.split()]
            self.assertEqual(("%d" % shmid) in ids, host, ipcs)
            pid1 = exec_ok(self, c, cid, ["cat", "/proc/1/comm"]).strip()
            with open("/proc/1/comm") as f:
                host_pid1 = f.read().strip()
            if host:
                self.assertEqual(pid1, host_pid1, "host PID namespace: the host's init is pid 1")
            else:
                self.assertEqual(pid1, "sleep", "its own PID namespace")
            status = c.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=10).status
            self.assertEqual(status.linux.namespaces.options.ipc, pb.NODE if host else pb.POD)
            self.assertEqual(status.linux.namespaces.options.pid, pb.NODE if host else pb.CONTAINER)

    def test_pid_namespace_of_a_target_container(self):
        c = self.client
        pod_id, cfg, target = self.run_pod_with_sleeper(c, "target", sleep_arg="4242")
        ccfg = container_config("debug", ["sleep", "3600"])
        ccfg.linux.security_context.namespace_options.pid = pb.TARGET
        ccfg.linux.security_context.namespace_options.target_id = target
        cid = c.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg),
                                   timeout=30).container_id
        self.start_container(c, cid)
        self.assertIn("sleep 4242", exec_ok(self, c, cid, ["ps", "-o", "args"]))
        self.assertEqual(exec_ok(self, c, cid, ["cat", "/proc/1/cmdline"]).replace("\0", " ").strip(), "sleep 4242")
        ccfg = container_config("debug2", ["sleep", "1"])
        ccfg.linux.security_context.namespace_options.pid = pb.TARGET
        ccfg.linux.security_context.namespace_options.target_id = "0" * 64
        details, _ = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, c.rt.CreateContainer, pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg))
        self.assertIn("target_id", details)

    def test_sysctls(self):
        c = self.client
        cfg = pod_config("sysctls", log_directory=os.path.join(self.pod_log_root, uuid.uuid4().hex[:8]))
        cfg.linux.sysctls["kernel.shm_rmid_forced"] = "1"
        cfg.linux.sysctls["fs.mqueue.msg_max"] = "100"
        cfg.linux.sysctls["net.ipv4.ip_unprivileged_port_start"] = "53"
        self.track(uid=cfg.metadata.uid)
        pod_id = c.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
        self.track(pod_id=pod_id)
        cid = self.create_container(c, pod_id, cfg, "s", ["sleep", "3600"])
        self.start_container(c, cid)
        for path, value in (("kernel/shm_rmid_forced", "1"), ("fs/mqueue/msg_max", "100"),
                            ("net/ipv4/ip_unprivileged_port_start", "53")):
            self.assertEqual(exec_ok(self, c, cid, ["cat", "/proc/sys/" + path]).strip(), value, path)
        with open("/proc/sys/net/ipv4/ip_unprivileged_port_start") as f:
            self.assertNotEqual(f.read().strip(), "53", "the host's value is untouched")
        # A node-wide sysctl is refused by name; the running pod is not touched.
        bad = pod_config("sysctl-bad")
        bad.linux.sysctls["kernel.pid_max"] = "4194304"
        details, _ = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, c.rt.RunPodSandbox,
                                     pb.RunPodSandboxRequest(config=bad))
        self.assertIn('config.linux.sysctls["kernel.pid_max"]', details)
        self.assertEqual(self.container_status(c, cid).status.state, pb.CONTAINER_RUNNING)

    def test_security_context_fields(self):
        c = self.client
        pod_id, cfg = self.run_pod(c, "secctx")

        def run(name, mutate, command=("sleep", "3600")):
            ccfg = container_config(name, list(command))
            mutate(ccfg.linux.security_context)
            cid = c.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ccfg,
                                                                 sandbox_config=cfg), timeout=30).container_id
            self.start_container(c, cid)
            return cid

        cid = run("byname", lambda sc: setattr(sc, "run_as_username", "nobody"))
        self.assertEqual(exec_ok(self, c, cid, ["id", "-nu"]), "nobody\n")
        self.assertEqual(self.container_status(c, cid).status.user.linux.uid, 65534)

        def groups(sc):
            sc.run_as_user.value = 1001
            sc.run_as_group.value = 1002
            sc.supplemental_groups.extend([1234, 5678])
        cid = run("groups", groups)
        self.assertEqual(exec_ok(self, c, cid, ["sh", "-c", "echo $(id -u):$(id -g)"]), "1001:1002\n")
        self.assertTrue({"1234", "5678"} <= set(exec_ok(self, c, cid, ["id", "-G"]).split()))

        cid = run("masked", lambda sc: (sc.masked_paths.append("/bin/ls"), sc.readonly_paths.append("/tmp")))
        # /dev/null over the applet's hard link (busybox's sh would run `ls` as a builtin applet).
        self.assertEqual(exec_ok(self, c, cid, ["sh", "-c", "wc -c < /bin/ls"]).strip(), "0")
        self.assertEqual(exec_ok(self, c, cid, ["stat", "-c", "%t,%T", "/bin/ls"]).strip(), "1,3")
        r = exec_any(c, cid, ["touch", "/tmp/test"])
        self.assertEqual(r.stderr, b"touch: /tmp/test: Read-only file system\n")

        cid = run("unconfined", lambda sc: None)
        self.assertIn("Seccomp:\t0", exec_ok(self, c, cid, ["cat", "/proc/self/status"]),
                      "no profile said: Unconfined, as containerd and CRI-O")

        ccfg = container_config("grouponly", ["sleep", "1"])
        ccfg.linux.security_context.run_as_group.value = 1002
        details, _ = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, c.rt.CreateContainer, pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg))
        self.assertIn("config.linux.security_context.run_as_group", details)

        ccfg = container_config("apparmor", ["sleep", "1"])
        ccfg.linux.security_context.apparmor.profile_type = pb.SecurityProfile.RuntimeDefault
        details, _ = self.assertCode(grpc.StatusCode.FAILED_PRECONDITION, c.rt.CreateContainer,
                                     pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg))
        self.assertIn("apparmor", details)

    def test_unimplemented_rpcs_say_so(self):
        c = self.client
        for call, request in ((c.rt.CheckpointContainer, pb.CheckpointContainerRequest(container_id="x")),):
            details, _ = self.assertCode(grpc.StatusCode.UNIMPLEMENTED, call, request)
            self.assertTrue(details)


class MountPropagationTest(CRITestCase):
    """rprivate, rslave and rshared bind mounts against a source this test makes shared."""

    def setUp(self):
        self.mounts = []

    def tearDown(self):
        super().tearDown()
        for path in reversed(self.mounts):
            subprocess.run(["umount", "-l", path], stderr=subprocess.DEVNULL)

    def shared_dir(self, name, shared=True):
        path = os.path.join(self.base, "prop-" + name + "-" + uuid.uuid4().hex[:6])
        os.makedirs(path)
        subprocess.run(["mount", "--bind", path, path], check=True)
        self.mounts.append(path)
        subprocess.run(["mount", "--make-rshared" if shared else "--make-rprivate", path], check=True)
        os.makedirs(os.path.join(path, "fromhost"))
        os.makedirs(os.path.join(path, "fromcontainer"))
        return path

    def privileged_pod(self, name):
        """A privileged sandbox (BIDIRECTIONAL needs one), tracked for cleanup: (config, id)."""
        cfg = pod_config(name, log_directory=os.path.join(self.pod_log_root, uuid.uuid4().hex[:8]))
        cfg.linux.security_context.privileged = True
        self.track(uid=cfg.metadata.uid)
        pod_id = self.client.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
        self.track(pod_id=pod_id)
        return cfg, pod_id

    def run_with_mount(self, pod_id, cfg, name, source, propagation):
        ccfg = container_config(name, ["sleep", "3600"], mounts=[
            pb.Mount(host_path=source, container_path="/shared", propagation=propagation)])
        ccfg.linux.security_context.privileged = True
        cid = self.client.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ccfg,
                                                                       sandbox_config=cfg), timeout=30).container_id
        self.start_container(self.client, cid)
        return cid

    def test_propagation_is_checked_on_a_node_with_many_mounts(self):
        # A node's /proc/self/mountinfo is longer than a page; the source mounted last must still
        # be found (a reader that trusted stat's size of 0 saw only the first 4 KB).
        for i in range(40):
            path = os.path.join(self.base, "filler-" + ("x" * 60) + "-%02d" % i)
            os.makedirs(path)
            subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", path], check=True)
            self.mounts.append(path)
        with open("/proc/self/mountinfo") as f:
            self.assertGreater(len(f.read()), 4096)
        c = self.client
        cfg, pod_id = self.privileged_pod("propmany")
        source = self.shared_dir("many", shared=True)
        cid = self.run_with_mount(pod_id, cfg, "many", source, pb.PROPAGATION_HOST_TO_CONTAINER)
        self.assertEqual([m.propagation for m in self.container_status(c, cid).status.mounts],
                         [pb.PROPAGATION_HOST_TO_CONTAINER])
        c.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=30)

    def test_propagation_modes(self):
        c = self.client
        cfg, pod_id = self.privileged_pod("prop")
        cases = ((pb.PROPAGATION_PRIVATE, False, False), (pb.PROPAGATION_HOST_TO_CONTAINER, True, False),
                 (pb.PROPAGATION_BIDIRECTIONAL, True, True))
        for propagation, into_container, onto_host in cases:
            source = self.shared_dir(pb.MountPropagation.Name(propagation).lower(), shared=True)
            cid = self.run_with_mount(pod_id, cfg, pb.MountPropagation.Name(propagation).lower().replace("_", "-"),
                                      source, propagation)
            self.assertEqual([m.propagation for m in self.container_status(c, cid).status.mounts], [propagation])
            # Host → container.
            marker = os.path.join(self.base, "marker-" + uuid.uuid4().hex[:6])
            os.makedirs(marker)
            open(os.path.join(marker, "flag"), "w").close()
            subprocess.run(["mount", "--bind", marker, os.path.join(source, "fromhost")], check=True)
            self.mounts.append(os.path.join(source, "fromhost"))
            seen = exec_ok(self, c, cid, ["ls", "-A", "/shared/fromhost"]).split()
            self.assertEqual(seen == ["flag"], into_container, (propagation, seen))
            # Container → host.
            exec_ok(self, c, cid, ["mount", "-t", "tmpfs", "tmpfs", "/shared/fromcontainer"])
            exec_ok(self, c, cid, ["touch", "/shared/fromcontainer/made-inside"])
            self.mounts.append(os.path.join(source, "fromcontainer"))
            on_host = os.listdir(os.path.join(source, "fromcontainer"))
            self.assertEqual(on_host == ["made-inside"], onto_host, (propagation, on_host))
            c.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=30)

        private = self.shared_dir("private", shared=False)
        ccfg = container_config("slave-of-private", ["sleep", "1"], mounts=[
            pb.Mount(host_path=private, container_path="/shared", propagation=pb.PROPAGATION_HOST_TO_CONTAINER)])
        details, _ = self.assertCode(grpc.StatusCode.FAILED_PRECONDITION, c.rt.CreateContainer,
                                     pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg))
        self.assertIn("config.mounts[0].propagation", details)
        ccfg = container_config("shared-unprivileged", ["sleep", "1"], mounts=[
            pb.Mount(host_path=private, container_path="/shared", propagation=pb.PROPAGATION_BIDIRECTIONAL)])
        details, _ = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, c.rt.CreateContainer,
                                     pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg))
        self.assertIn("privileged", details)

    def test_recursive_read_only(self):
        c = self.client
        pod_id, cfg = self.run_pod(c, "rro")
        source = self.shared_dir("rro", shared=False)
        subprocess.run(["mount", "-t", "tmpfs", "tmpfs", os.path.join(source, "fromhost")], check=True)
        self.mounts.append(os.path.join(source, "fromhost"))
        for recursive in (False, True):
            ccfg = container_config("rro-%s" % str(recursive).lower(), ["sleep", "3600"], mounts=[
                pb.Mount(host_path=source, container_path="/mnt", readonly=True, recursive_read_only=recursive)])
            cid = c.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg),
                                       timeout=30).container_id
            self.start_container(c, cid)
            r = exec_any(c, cid, ["touch", "/mnt/fromhost/file"])
            self.assertEqual(r.exit_code != 0, recursive, r.stderr)
            if recursive:
                self.assertIn(b"Read-only file system", r.stderr)
