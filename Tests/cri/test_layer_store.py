"""Issue 21: a container's root filesystem is an overlay of its image's shared layers (no copy per
container), also for stacks deeper than one page of mount options; containers lease their layers,
so removing the image under a running container frees nothing it mounts."""

import os
import shutil
import subprocess
import unittest

from crihelpers import CRITestCase, PODSHIM_BIN, container_config, pb
from registryfixture import Image, Layer, build_layout, busybox_layer_entries, file_entry, whiteout_entry


def podshim_images(*args):
    return subprocess.run([PODSHIM_BIN, "images"] + list(args), capture_output=True, text=True, timeout=120)


@unittest.skipUnless(os.path.exists("/bin/busybox"), "needs busybox-static")
class LayerStoreTest(CRITestCase):
    start_daemon = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.store = os.path.join(cls.base, "images")
        cls.daemon = cls.new_daemon(image_dir=cls.store)
        cls.daemon.start()
        cls.client = cls.new_client(cls.daemon.socket)

    def import_layout(self, name, image):
        layout = os.path.join(self.base, "layout-" + name.replace(":", "-").replace("/", "-"))
        shutil.rmtree(layout, ignore_errors=True)
        info = build_layout(layout, {"t": image})["t"]
        result = podshim_images("import", "--image-dir", self.store, layout + ":t", name)
        self.assertEqual(result.returncode, 0, result.stderr)
        return info

    def layer_dirs(self):
        path = os.path.join(self.store, ".layers")
        return sorted(n for n in os.listdir(path) if not n.startswith(".")) if os.path.isdir(path) else []

    def exec_sync(self, cid, cmd):
        r = self.client.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=10), timeout=20)
        return r.exit_code, r.stdout.decode(), r.stderr.decode()

    def root_mount(self, cid):
        """The container's root mount line (mountinfo of its init process)."""
        st = self.client.rt.ContainerStatus(pb.ContainerStatusRequest(container_id=cid, verbose=True), timeout=10)
        code, out, _ = self.exec_sync(cid, ["cat", "/proc/self/mountinfo"])
        self.assertEqual(code, 0)
        for line in out.splitlines():
            fields = line.split()
            if fields[4] == "/":
                return line
        self.fail("no root mount in %s (%s)" % (out, st.status.state))

    def test_deep_stack_mounts_and_layers_are_shared_not_copied(self):
        # 70 layers: their lowerdir option (~100 bytes a layer here) is longer than the page mount(2) takes.
        layers = [Layer(busybox_layer_entries())] + [Layer([file_entry("layers/l%02d" % i, b"%d\n" % i)]) for i in range(1, 70)]
        layers.append(Layer([whiteout_entry("layers/l05")], compression="zstd"))
        info = self.import_layout("deep:v1", Image(layers, config={"Cmd": ["sleep", "3600"]}))
        self.assertEqual(len(self.layer_dirs()), 71)
        self.assertGreater(sum(len(self.store) + 80 for _ in info.chain_ids), 4096)

        pod_id, pod_cfg = self.run_pod(self.client, "deep")
        cids = []
        for name in ("a", "b"):
            cfg = container_config(name, [])
            cfg.image.image = "deep:v1"
            cid = self.client.rt.CreateContainer(pb.CreateContainerRequest(
                pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg), timeout=30).container_id
            self.start_container(self.client, cid)
            cids.append(cid)
        for cid in cids:
            code, out, err = self.exec_sync(cid, ["sh", "-c", "ls /layers | wc -l; cat /layers/l01 /layers/l69"])
            self.assertEqual((code, out.split()), (0, ["68", "1", "69"]), err)
            self.assertEqual(self.exec_sync(cid, ["test", "-e", "/layers/l05"])[0], 1, "the whiteout hides l05")
            self.assertIn(" overlay ", self.root_mount(cid))
        # Each container writes to its own upper directory; the shared layers do not change.
        self.assertEqual(self.exec_sync(cids[0], ["sh", "-c", "echo a > /layers/l01"])[0], 0)
        self.assertEqual(self.exec_sync(cids[1], ["cat", "/layers/l01"])[1], "1\n")
        self.assertEqual(len(self.layer_dirs()), 71, "no copy of the image per container")
        top = os.path.join(self.store, ".layers", info.chain_ids[1][len("sha256:"):], "layers", "l01")
        with open(top) as f:
            self.assertEqual(f.read(), "1\n")

        # Removing the image under running containers: their layers are leased and stay.
        self.client.img.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image="deep:v1")), timeout=30)
        self.assertEqual(len(self.layer_dirs()), 71)
        self.assertEqual(self.exec_sync(cids[1], ["cat", "/layers/l69"])[1], "69\n")
        for cid in cids:
            self.client.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=0), timeout=30)
            self.client.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=cid), timeout=30)
        # The next garbage collection (any RemoveImage) frees them.
        self.client.img.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image="deep:v1")), timeout=30)
        self.assertEqual(self.layer_dirs(), [])
        self.assertEqual(os.listdir(os.path.join(self.store, ".leases")), [])


if __name__ == "__main__":
    unittest.main()
