"""Pod networking through CNI (Debian's containernetworking-plugins): pod IPs on one bridge, pods
talking by IP, hostPort through portmap, NetworkReady, leaks, crashes in ADD and DEL, bad configs.

Everything happens inside a throw-away "node" network namespace the test makes (the daemon runs
in it through nsenter, so the bridge, veths, iptables rules and sysctls the plugins touch live and
die there); traffic goes only between pods and bridges the test made, and 127.0.0.1 of that node."""

import json
import os
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import unittest

import grpc

from crihelpers import CRITestCase, code_of, log, mounts_under, pb, pod_config, read_until

PLUGINS = "/usr/lib/cni"


def have_plugins():
    return all(os.access(os.path.join(PLUGINS, p), os.X_OK) for p in ("bridge", "host-local", "portmap"))


class Node:
    """A network namespace pinned on a file outside the test's base directory, lo up."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="podshim-node-")
        self.path = os.path.join(self.dir, "netns")
        open(self.path, "w").close()
        subprocess.run(["unshare", "--net=" + self.path, "true"], check=True)
        self.run(["ip", "link", "set", "lo", "up"])

    def run(self, argv, **kw):
        kw.setdefault("check", True)
        kw.setdefault("capture_output", True)
        kw.setdefault("text", True)
        return subprocess.run(["nsenter", "--net=" + self.path] + argv, **kw)

    def links(self):
        return [l for l in self.run(["ip", "-o", "link"]).stdout.splitlines()]

    def cni_chains(self):
        """Per-pod iptables chains (the shared CNI-HOSTPORT-* ones stay once made)."""
        out = self.run(["iptables", "-t", "nat", "-S"], check=False).stdout
        return [l for l in out.splitlines() if l.startswith("-N CNI-") and "HOSTPORT" not in l]

    def http_get(self, host, port, timeout=5):
        code = ("import socket,sys\n"
                "s=socket.create_connection((%r,%d),timeout=%d)\n"
                "s.sendall(b'GET / HTTP/1.0\\r\\n\\r\\n')\n"
                "d=b''\n"
                "while True:\n"
                "  c=s.recv(65536)\n"
                "  if not c: break\n"
                "  d+=c\n"
                "sys.stdout.write(d.decode(errors='replace'))\n") % (host, port, timeout)
        return self.run(["python3", "-c", code], check=False, timeout=timeout + 5)

    def remove(self):
        subprocess.run(["umount", self.path], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)


def conflist(name, bridge, subnet, data_dir, extra_plugins=()):
    return {
        "cniVersion": "1.0.0", "name": name,
        "plugins": [
            {"type": "bridge", "bridge": bridge, "isGateway": True, "ipMasq": True, "hairpinMode": True,
             "ipam": {"type": "host-local", "ranges": [[{"subnet": subnet}]], "routes": [{"dst": "0.0.0.0/0"}],
                      "dataDir": data_dir}},
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ] + list(extra_plugins),
    }


class NetworkTestCase(CRITestCase):
    """A daemon in its own node namespace with a bridge network of its own."""

    start_daemon = False
    cni_timeout = "10"

    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0 or not have_plugins():
            raise unittest.SkipTest("needs root and containernetworking-plugins in %s" % PLUGINS)
        super().setUpClass()
        cls.node = Node()
        cls.addClassCleanup(cls.node.remove)  # runs after the daemons are gone (cleanups run in reverse)
        tag = secrets.token_hex(4)
        cls.net_name = "psh-test-" + tag
        cls.bridge = "psh" + tag
        cls.subnet_prefix = "10.%d.%d" % (100 + secrets.randbelow(100), secrets.randbelow(250))
        cls.net_dir = os.path.join(cls.base, "cni")
        cls.conf_dir = os.path.join(cls.net_dir, "net.d")
        cls.fake_bin = os.path.join(cls.net_dir, "bin")
        cls.ipam_dir = os.path.join(cls.net_dir, "ipam")
        os.makedirs(cls.conf_dir)
        os.makedirs(cls.fake_bin)
        cls.write_config(cls.network_config())
        cls.daemon = cls.new_daemon(node_netns=cls.node.path, extra_args=[
            "--network", "cni", "--cni-conf-dir", cls.conf_dir, "--cni-bin-dir", PLUGINS + ":" + cls.fake_bin,
            "--cni-timeout", cls.cni_timeout])
        cls.daemon.start()
        cls.client = cls.new_client(cls.daemon.socket)

    @classmethod
    def network_config(cls):
        return conflist(cls.net_name, cls.bridge, cls.subnet_prefix + ".0/24", cls.ipam_dir)

    @classmethod
    def write_config(cls, document, name="10-test.conflist"):
        for old in os.listdir(cls.conf_dir):
            os.unlink(os.path.join(cls.conf_dir, old))
        path = os.path.join(cls.conf_dir, name)
        with open(path + ".tmp", "w") as f:
            f.write(document if isinstance(document, str) else json.dumps(document))
        os.rename(path + ".tmp", path)  # a file with a new name and mtime: the daemon re-reads

    # -- what a pod left behind ----------------------------------------------------------------

    def leases(self):
        d = os.path.join(self.ipam_dir, self.net_name)
        try:
            return sorted(f for f in os.listdir(d) if f != "lock" and not f.startswith("last_reserved_ip"))
        except FileNotFoundError:
            return []

    def veths(self):
        return [l for l in self.node.links() if "veth" in l]

    def pins(self):
        d = os.path.join(self.daemon.state, "netns")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def cache(self):
        d = os.path.join(self.daemon.root, "cni", "results")
        return sorted(os.listdir(d)) if os.path.isdir(d) else []

    def assert_nothing_left(self):
        self.assertEqual(self.leases(), [], "leaked IP leases")
        self.assertEqual(self.veths(), [], "leaked veths")
        self.assertEqual(self.pins(), [], "leaked netns pins")
        self.assertEqual(self.cache(), [], "leaked CNI cache entries")
        self.assertEqual(self.node.cni_chains(), [], "leaked iptables chains")

    # -- pods ---------------------------------------------------------------------------------

    def pod_ip(self, client, pod_id):
        status = client.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=10).status
        return status.network.ip, [a.ip for a in status.network.additional_ips]

    def web_pod(self, client, name, text, port=80, host_port=0, verbose=False):
        if host_port:
            pod_id, cfg = self.run_pod_with_ports(client, name, [(host_port, port)])
        else:
            pod_id, cfg = self.run_pod(client, name)
        command = ("mkdir -p /tmp/w && echo %s > /tmp/w/index.html && exec httpd -f %s -p %d -h /tmp/w"
                   % (text, "-vv" if verbose else "", port))
        cid = self.create_container(client, pod_id, cfg, "web", ["sh", "-c", command])
        self.start_container(client, cid)
        return pod_id, cfg, cid

    def run_pod_with_ports(self, client, name, ports):
        cfg = pod_config(name, log_directory=os.path.join(self.pod_log_root, name + "-" + secrets.token_hex(3)))
        for host, container in ports:
            cfg.port_mappings.add(protocol=pb.TCP, container_port=container, host_port=host)
        self.track(uid=cfg.metadata.uid)
        resp = client.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60)
        self.track(pod_id=resp.pod_sandbox_id)
        return resp.pod_sandbox_id, cfg

    def exec_sync(self, client, cid, cmd, timeout=10):
        return client.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout), timeout=timeout + 10)

    def fetch(self, client, cid, host, port=80):
        """GET / from inside a container (busybox nc: Debian's static busybox wget crashes),
        retried while the server comes up; the body."""
        deadline = time.time() + 10
        while True:
            r = self.exec_sync(client, cid, ["sh", "-c", "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 %s %d" % (host, port)])
            body = r.stdout.decode().split("\r\n\r\n", 1)[-1]
            if (r.exit_code == 0 and body) or time.time() > deadline:
                return r, body


class PodNetworkTest(NetworkTestCase):

    def test_two_pods_talk_by_pod_ip(self):
        c = self.client
        a_id, _, a_cid = self.web_pod(c, "net-a", "hello-from-a", verbose=True)
        b_id, b_cfg = self.run_pod(c, "net-b")
        b_cid = self.create_container(c, b_id, b_cfg, "client", ["sleep", "3600"])
        self.start_container(c, b_cid)
        a_ip, a_more = self.pod_ip(c, a_id)
        b_ip, _ = self.pod_ip(c, b_id)
        log("pod A %s, pod B %s" % (a_ip, b_ip))
        for ip in (a_ip, b_ip):
            self.assertTrue(ip.startswith(self.subnet_prefix + "."), ip)
        self.assertNotEqual(a_ip, b_ip)
        self.assertEqual(a_more, [])
        # Each pod has its IP on eth0.
        addr = self.exec_sync(c, b_cid, ["ip", "-4", "-o", "addr", "show", "eth0"])
        self.assertIn(b_ip + "/24", addr.stdout.decode())
        # B fetches from A by A's pod IP; A's server saw B's pod IP as the peer.
        r, body = self.fetch(c, b_cid, a_ip)
        self.assertEqual(r.exit_code, 0, r.stderr)
        self.assertEqual(body.strip(), "hello-from-a")
        status = c.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=a_cid), timeout=10).status
        self.assertIn(b_ip, read_until(status.log_path, lambda text: b_ip in text, timeout=5))
        # /etc/hosts names the pod on its IP.
        hosts = self.exec_sync(c, b_cid, ["cat", "/etc/hosts"]).stdout.decode()
        self.assertIn("%s\tnet-b" % b_ip, hosts)
        for pod_id in (a_id, b_id):
            c.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
            c.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)  # idempotent
            c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
        self.assert_nothing_left()

    def test_host_port_answers_on_node_loopback_and_clashes_are_refused(self):
        c = self.client
        port = 18000 + secrets.randbelow(1000)
        pod_id, _, _ = self.web_pod(c, "hostport", "through-portmap", port=8080, host_port=port)
        deadline = time.time() + 15
        while True:
            r = self.node.http_get("127.0.0.1", port)
            if "through-portmap" in r.stdout or time.time() > deadline:
                break
            time.sleep(0.3)
        self.assertIn("through-portmap", r.stdout, r.stderr)
        code, details, _ = code_of(self.run_pod_with_ports, c, "hostport-again", [(port, 80)])
        self.assertEqual(code, grpc.StatusCode.ALREADY_EXISTS, details)
        self.assertIn("hostPort %d/tcp is already used by pod default/hostport" % port, details)
        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
        self.assert_nothing_left()
        self.assertNotIn("through-portmap", self.node.http_get("127.0.0.1", port, timeout=2).stdout)

    def test_status_says_network_ready(self):
        status = self.client.rt.Status(pb.StatusRequest(), timeout=10).status
        network = [c for c in status.conditions if c.type == "NetworkReady"][0]
        self.assertTrue(network.status, network)
        self.assertIn(self.net_name, network.message)

    def test_host_network_pod_skips_cni(self):
        cfg = pod_config("hostnet", log_directory=os.path.join(self.pod_log_root, "hostnet"))
        cfg.linux.security_context.namespace_options.network = pb.NODE
        self.track(uid=cfg.metadata.uid)
        pod_id = self.client.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
        self.track(pod_id=pod_id)
        self.assertEqual(self.pod_ip(self.client, pod_id), ("", []))
        self.assertEqual(self.leases(), [])
        self.client.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)

    def test_many_pods_leak_nothing(self):
        n = int(os.environ.get("PODSHIM_NETWORK_PODS", "200"))
        c = self.client
        t0 = time.time()
        ips = {}  # live pods' IPs: never two pods on one address
        ids = []
        for i in range(n):
            pod_id, _ = self.run_pod(c, "many-%d" % i)
            ip, _ = self.pod_ip(c, pod_id)
            self.assertNotIn(ip, ips.values())
            ips[pod_id] = ip
            ids.append(pod_id)
            if len(ids) >= 20:  # at most 20 at once: a /24 has room, and addresses are reused
                old = ids.pop(0)
                c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=old), timeout=60)
                del ips[old]
        for pod_id in ids:
            c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
        log("[network] %d pods created and removed in %.1f s" % (n, time.time() - t0))
        self.assert_nothing_left()


class NetworkCrashTest(NetworkTestCase):
    """The daemon SIGKILLed in the middle of ADD and of DEL: nothing leaks, no pod lacks its network."""

    def test_crash_during_add_is_rolled_back(self):
        for failpoint in ("cni/before-add", "cni/added", "run-pod-sandbox/networked"):
            with self.subTest(failpoint=failpoint):
                c = self.crash_in(failpoint, lambda client: self.run_pod(client, "crash-add"))
                self.assertEqual(list(c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items), [])
                self.assert_nothing_left()

    def test_crash_during_del_is_finished(self):
        pod_id, _ = self.run_pod(self.client, "crash-del")
        ip, _ = self.pod_ip(self.client, pod_id)
        self.assertTrue(ip)
        c = self.crash_in("cni/deleted", lambda client: client.rt.StopPodSandbox(
            pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=30))
        c.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
        self.assert_nothing_left()

    def test_pod_removed_while_daemon_down_is_released(self):
        # A running pod survives a restart with its IP; one whose record vanished is DEL'd at start-up.
        keep, _ = self.run_pod(self.client, "keeps-ip")
        keep_ip, _ = self.pod_ip(self.client, keep)
        c = self.restart_daemon()
        self.assertEqual(self.pod_ip(c, keep)[0], keep_ip)
        self.assertEqual(self.leases(), [keep_ip])
        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=keep), timeout=60)
        self.assert_nothing_left()


class DualStackPodCIDRTest(NetworkTestCase):
    """A dual-stack configuration whose IPv4 range is the node's pod CIDR from UpdateRuntimeConfig."""

    @classmethod
    def network_config(cls):
        document = conflist(cls.net_name, cls.bridge, "{{.PodCIDR}}", cls.ipam_dir)
        ipam = document["plugins"][0]["ipam"]
        cls.v6_prefix = "fd%02x:%x::" % (secrets.randbelow(256), secrets.randbelow(65536))
        ipam["ranges"].append([{"subnet": cls.v6_prefix + "/64"}])
        ipam["routes"].append({"dst": "::/0"})
        return document

    def test_pod_cidr_and_two_families(self):
        c = self.client
        network = [x for x in c.rt.Status(pb.StatusRequest(), timeout=10).status.conditions if x.type == "NetworkReady"][0]
        self.assertFalse(network.status)
        self.assertIn("no pod CIDR is set yet", network.message)
        c.rt.UpdateRuntimeConfig(pb.UpdateRuntimeConfigRequest(runtime_config=pb.RuntimeConfig(
            network_config=pb.NetworkConfig(pod_cidr=self.subnet_prefix + ".0/24,%s/64" % self.v6_prefix))), timeout=10)
        network = [x for x in c.rt.Status(pb.StatusRequest(), timeout=10).status.conditions if x.type == "NetworkReady"][0]
        self.assertTrue(network.status, network)
        pod_id, cfg = self.run_pod(c, "dual")
        ip, more = self.pod_ip(c, pod_id)
        self.assertTrue(ip.startswith(self.subnet_prefix + "."), ip)
        self.assertEqual(len(more), 1, more)
        self.assertTrue(more[0].startswith(self.v6_prefix), more)
        cid = self.create_container(c, pod_id, cfg, "probe", ["sleep", "3600"])
        self.start_container(c, cid)
        addr = self.exec_sync(c, cid, ["ip", "-o", "addr", "show", "eth0"]).stdout.decode()
        self.assertIn(ip + "/24", addr)
        self.assertIn(more[0] + "/64", addr)
        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
        self.assert_nothing_left()


HANG = "#!/bin/sh\nexec sleep 300\n"
FAIL = ("#!/bin/sh\ncat >/dev/null\n"
        "echo '{\"cniVersion\":\"1.0.0\",\"code\":999,\"msg\":\"refused by the test plugin\",\"details\":\"on purpose\"}'\n"
        "exit 1\n")


class BadNetworkConfigTest(NetworkTestCase):
    """Broken configurations, missing, failing and hanging plugins: RunPodSandbox fails with the
    plugin's message, NetworkReady turns false with a reason, nothing is left, running pods go on."""

    cni_timeout = "2"

    def network_condition(self):
        status = self.client.rt.Status(pb.StatusRequest(), timeout=10).status
        return [c for c in status.conditions if c.type == "NetworkReady"][0]

    def test_a_plugin_gone_before_del_does_not_block_removal(self):
        c = self.client
        noop = os.path.join(self.fake_bin, "noop")
        with open(noop, "w") as f:
            f.write("#!/bin/sh\nexec python3 -c 'import json,sys; d=json.load(sys.stdin); print(json.dumps(d.get(\"prevResult\", {})))'\n")
        os.chmod(noop, 0o755)
        good = conflist(self.net_name, self.bridge, self.subnet_prefix + ".0/24", self.ipam_dir)
        self.write_config(dict(good, plugins=good["plugins"] + [{"type": "noop"}]))
        try:
            pod_id, _ = self.run_pod(c, "plugin-gone")
            self.assertTrue(self.pod_ip(c, pod_id)[0])
            os.unlink(noop)
            c.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
            c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
            self.assert_nothing_left()
        finally:
            self.write_config(good)

    def test_bad_configurations(self):
        c = self.client
        for name, body in (("hang", HANG), ("fail", FAIL)):
            path = os.path.join(self.fake_bin, name)
            with open(path, "w") as f:
                f.write(body)
            os.chmod(path, 0o755)
        good = conflist(self.net_name, self.bridge, self.subnet_prefix + ".0/24", self.ipam_dir)
        running_id, _, running_cid = self.web_pod(c, "survivor", "still-here")
        running_ip, _ = self.pod_ip(c, running_id)
        self.assertTrue(running_ip)
        cases = [
            ("no configuration", None, False, "no network configuration"),
            ("not JSON", "{ not json", False, "not JSON"),
            ("missing plugin", dict(good, plugins=good["plugins"] + [{"type": "nosuchplugin"}]), False,
             "plugin \"nosuchplugin\" not found"),
            ("failing plugin", dict(good, plugins=good["plugins"] + [{"type": "fail"}]), True,
             "refused by the test plugin (on purpose) [CNI error code 999]"),
            ("hanging plugin", dict(good, plugins=good["plugins"] + [{"type": "hang"}]), True,
             "no answer within 2 s"),
        ]
        for label, document, ready, message in cases:
            with self.subTest(label):
                if document is None:
                    for old in os.listdir(self.conf_dir):
                        os.unlink(os.path.join(self.conf_dir, old))
                else:
                    self.write_config(document)
                condition = self.network_condition()
                self.assertEqual(condition.status, ready, condition)
                if not ready:
                    self.assertEqual(condition.reason, "NetworkPluginNotReady")
                    self.assertIn(message, condition.message)
                t0 = time.time()
                outcome = {}
                worker = threading.Thread(target=lambda: outcome.update(
                    result=code_of(self.run_pod, c, "bad-" + label.replace(" ", "-"))))
                worker.start()
                if label == "hanging plugin":
                    # A plugin call in flight blocks no other RPC.
                    time.sleep(0.5)
                    t1 = time.time()
                    c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10)
                    c.rt.Version(pb.VersionRequest(version="v1"), timeout=10)
                    self.assertLess(time.time() - t1, 1.0, "RPCs waited for a hanging CNI plugin")
                worker.join(60)
                code, details, _ = outcome["result"]
                self.assertNotEqual(code, grpc.StatusCode.OK)
                self.assertIn(message, details)
                self.assertLess(time.time() - t0, 30)
                # Nothing of the failed pod is left; the running pod is untouched.
                self.assertEqual([p.id for p in c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=10).items],
                                 [running_id])
                self.assertEqual(self.leases(), [running_ip])
                self.assertEqual(self.pins(), [running_id])
                self.assertEqual(len(self.veths()), 1)
        self.write_config(good)
        self.assertTrue(self.network_condition().status)
        status = c.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=running_cid), timeout=10).status
        self.assertEqual(status.state, pb.CONTAINER_RUNNING)
        c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=running_id), timeout=60)
        self.assert_nothing_left()


class RunCommandNetworkTest(unittest.TestCase):
    """`podshim run` of examples/two-pods.yaml (two pods in one file): each gets an IP through the
    same CNI path, prints it, and the client reaches the server by its pod IP; nothing is left."""

    def test_two_pods_of_one_manifest_talk_by_ip(self):
        if os.geteuid() != 0 or not have_plugins():
            self.skipTest("needs root and containernetworking-plugins")
        repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        node = Node()
        base = tempfile.mkdtemp(prefix="podshim-run-net-")
        try:
            with open(os.path.join(repo, "examples", "cni", "10-example.conflist")) as f:
                config = json.load(f)
            config["plugins"][0]["bridge"] = "psh" + secrets.token_hex(4)
            config["plugins"][0]["ipam"]["dataDir"] = os.path.join(base, "ipam")
            os.makedirs(os.path.join(base, "net.d"))
            with open(os.path.join(base, "net.d", "10-example.conflist"), "w") as f:
                json.dump(config, f)
            argv = ["nsenter", "--net=" + node.path, os.environ["PODSHIM_BIN"], "run",
                    "--state-dir", os.path.join(base, "state"), "--root", os.path.join(base, "root"),
                    "--image-dir", os.environ["PODSHIM_IMAGE_DIR"], "--log-dir", os.path.join(base, "logs"),
                    "--cni-conf-dir", os.path.join(base, "net.d"), "--cni-bin-dir", PLUGINS,
                    os.path.join(repo, "examples", "two-pods.yaml")]
            proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                # The server's hostPort answers on the node's loopback while it runs.
                page = ""
                deadline = time.time() + 10
                while "hello from server" not in page and time.time() < deadline:
                    page = node.http_get("127.0.0.1", 18089, timeout=1).stdout
                    time.sleep(0.2)
                stdout, stderr = proc.communicate(timeout=120)
            finally:
                if proc.poll() is None:
                    proc.terminate()
                    proc.wait(30)
            r = subprocess.CompletedProcess(argv, proc.returncode, stdout, stderr)
            log("podshim run stdout:\n" + r.stdout + "\nstderr:\n" + r.stderr)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("hello from server", page)
            self.assertIn("network: cni (", r.stderr)
            self.assertRegex(r.stderr, r"server: pod server: IP 10\.89\.0\.\d+ \(CNI network podshim-example\)")
            self.assertRegex(r.stderr, r"client: pod client: IP 10\.89\.0\.\d+")
            self.assertRegex(r.stdout, r"client/fetch +\| from 10\.89\.0\.\d+: hello from server at 10\.89\.0\.\d+/29")
            leases = os.listdir(os.path.join(base, "ipam", "podshim-example"))
            self.assertEqual([f for f in leases if f != "lock" and not f.startswith("last_reserved")], [])
            self.assertEqual([l for l in node.links() if "veth" in l], [])
        finally:
            for m in reversed(mounts_under(base)):
                subprocess.run(["umount", "-l", m], check=False)
            shutil.rmtree(base, ignore_errors=True)
            node.remove()


class NetworkChaosTest(NetworkTestCase):
    """The daemon SIGKILLed at seeded random instants while pods are run, stopped and removed:
    after every restart each lease belongs to a listed pod, every ready pod has its IP, and in the
    end nothing is left. PODSHIM_NETWORK_CHAOS_KILLS (default 60), PODSHIM_CHAOS_SEED."""

    def lease_owners(self):
        d = os.path.join(self.ipam_dir, self.net_name)
        owners = {}
        for ip in self.leases():
            with open(os.path.join(d, ip)) as f:
                owners[ip] = f.read().split()[0]
        return owners

    def test_kills_during_add_and_del(self):
        import random
        kills = int(os.environ.get("PODSHIM_NETWORK_CHAOS_KILLS", "60"))
        seed = int(os.environ.get("PODSHIM_CHAOS_SEED", str(random.randrange(1 << 30))))
        rng = random.Random(seed)
        log("network chaos: seed %d, %d kills" % (seed, kills))
        serial = [0]

        def sandboxes(client):
            return client.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=30).items

        def run(client):
            serial[0] += 1
            self.run_pod(client, "nc-%d" % serial[0])

        def stop(client):
            ready = [p for p in sandboxes(client) if p.state == pb.SANDBOX_READY]
            if ready:
                client.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=rng.choice(ready).id), timeout=30)

        def remove(client):
            items = sandboxes(client)
            if items:
                client.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=rng.choice(items).id), timeout=30)

        operations = [run, run, run, stop, remove, remove]
        c = self.client
        ready_checked = 0
        for _ in range(kills):
            operation = rng.choice(operations)
            done = threading.Event()

            def work(client=c, operation=operation):
                try:
                    operation(client)
                except grpc.RpcError:
                    pass  # the daemon died under it
                finally:
                    done.set()

            threading.Thread(target=work, daemon=True).start()
            time.sleep(rng.uniform(0, 0.15))
            c = self.restart_daemon()
            done.wait(30)
            items = {p.id: p for p in sandboxes(c)}
            owners = self.lease_owners()
            for ip, owner in owners.items():
                self.assertIn(owner, items, "lease %s of a pod that is gone (seed %d)" % (ip, seed))
            for pod_id, p in items.items():
                if p.state == pb.SANDBOX_READY:
                    ip, _ = self.pod_ip(c, pod_id)
                    self.assertEqual(owners.get(ip), pod_id, "ready pod %s without its IP %r (seed %d)" % (pod_id[:12], ip, seed))
                    ready_checked += 1
            if len(items) > 12:
                for pod_id in list(items)[:6]:
                    c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=60)
        for p in sandboxes(c):
            c.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=p.id), timeout=60)
        log("network chaos: seed %d: %d kills, %d pods run, %d ready pods checked for their IP" % (seed, kills, serial[0], ready_checked))
        self.assert_nothing_left()
