"""Issue 9: image references, `podshim images import` of the three source kinds, the ImageService
over that store, and the behaviours critest checks (metadata kept, idempotent stop/remove, `top`
stopping in time, ExecSync timeouts killing the command, truthful Status conditions)."""

import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile
import time
import unittest

import grpc

from crihelpers import (CRITestCase, IMAGE_DIR, PODSHIM_BIN, code_of, container_config, pod_config,
                        processes_of, proc_cmdline)
from runtime.v1 import api_pb2 as pb

OK = grpc.StatusCode.OK


def podshim_images(*args):
    return subprocess.run([PODSHIM_BIN, "images"] + list(args), capture_output=True, text=True, timeout=120)


def write_blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(data)
    return {"digest": "sha256:" + digest, "size": len(data)}


def make_oci_layout(layout, rootfs, cmd):
    """An OCI image layout whose one gzip'd layer is `rootfs` and whose config runs `cmd`."""
    os.makedirs(layout)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        tar.add(rootfs, arcname=".")
    layer = gzip.compress(raw.getvalue(), mtime=0)
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    config = json.dumps({"architecture": arch, "os": "linux", "config": {"Cmd": cmd, "Env": ["FROM=oci"]},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    config_desc = dict(write_blob(layout, config), mediaType="application/vnd.oci.image.config.v1+json")
    layer_desc = dict(write_blob(layout, layer), mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": config_desc, "layers": [layer_desc]}).encode()
    manifest_desc = dict(write_blob(layout, manifest), mediaType="application/vnd.oci.image.manifest.v1+json")
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [manifest_desc]}, f)
    return config_desc["digest"]


class ImageStoreTest(CRITestCase):
    start_daemon = False

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.store = os.path.join(cls.base, "images")
        cls.daemon = cls.new_daemon(image_dir=cls.store)
        cls.daemon.start()
        cls.client = cls.new_client(cls.daemon.socket)

    def images(self):
        return {tag: image.id for image in self.client.img.ListImages(pb.ListImagesRequest(), timeout=10).images
                for tag in image.repo_tags}

    def status(self, ref):
        return self.client.img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=ref)), timeout=10)

    def import_(self, src, ref, *extra):
        result = podshim_images("import", "--image-dir", self.store, *extra, src, ref)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout.split()[0]

    def test_import_three_kinds_references_and_image_service(self):
        busybox = os.path.join(IMAGE_DIR, "busybox", "rootfs")
        work = os.path.join(self.base, "sources")
        os.makedirs(work)

        # 1. A root filesystem directory; the same content again under a second reference.
        plain = self.import_(busybox, "local/busybox:1", "--cmd", "sh")
        self.assertEqual(self.import_(busybox, "busybox", "--cmd", "sh"), plain, "the id comes from the content")
        # 2. An OCI image layout; 3. the same layout as a tar archive: one image, two references.
        layout = os.path.join(work, "layout")
        config_digest = make_oci_layout(layout, busybox, ["sh", "-c", "echo from-$FROM"])
        self.assertEqual(self.import_(layout, "example.com/oci/busybox:v1"), config_digest)
        archive = os.path.join(work, "busybox-oci.tar")
        subprocess.run(["tar", "-cf", archive, "-C", layout, "."], check=True)
        self.assertEqual(self.import_(archive, "example.com/archive/busybox:v1"), config_digest)

        listed = podshim_images("--image-dir", self.store)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        for ref in ("local/busybox:1", "busybox:latest", "example.com/oci/busybox:v1", "example.com/archive/busybox:v1"):
            self.assertIn(ref, listed.stdout)

        # The ImageService sees the references (fully qualified, as containerd reports them), the ids
        # and the sizes.
        images = self.images()
        self.assertEqual(images["docker.io/local/busybox:1"], plain)
        self.assertEqual(images["docker.io/library/busybox:latest"], plain)
        self.assertEqual(images["example.com/oci/busybox:v1"], config_digest)
        self.assertEqual(images["example.com/archive/busybox:v1"], config_digest)
        for ref in ("busybox", "docker.io/library/busybox:latest", plain, plain[len("sha256:"):], plain[:19]):
            st = self.status(ref)
            self.assertTrue(st.HasField("image"), ref)
            self.assertEqual(st.image.id, plain, ref)
            self.assertGreater(st.image.size, 1 << 20, ref)
        self.assertFalse(self.status("busybox:nope").HasField("image"))

        # PullImage: an imported image is served at once, without a registry; an unknown one is
        # pulled from its registry (here nothing listens on 127.0.0.1:1: no traffic leaves the host).
        begin = time.monotonic()
        pulled = self.client.img.PullImage(pb.PullImageRequest(image=pb.ImageSpec(image="example.com/oci/busybox:v1")),
                                           timeout=10)
        self.assertEqual(pulled.image_ref, config_digest)
        self.assertLess(time.monotonic() - begin, 5)
        code, details, _ = code_of(self.client.img.PullImage,
                                   pb.PullImageRequest(image=pb.ImageSpec(image="127.0.0.1:1/missing:1")), timeout=30)
        self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, details)
        self.assertIn("cannot reach 127.0.0.1:1", details)

        # A container from the OCI image runs the image's Cmd and Env (no command given).
        pod_id, pod_cfg = self.run_pod(self.client, "oci-img")
        cfg = container_config("fromoci", [])
        cfg.image.image = "example.com/archive/busybox:v1"
        cid = self.client.rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg), timeout=30).container_id
        self.start_container(self.client, cid)
        st = self.wait_container_state(self.client, cid, pb.CONTAINER_EXITED)
        self.assertEqual(st.exit_code, 0)
        self.assertEqual(st.image_ref, config_digest)
        with open(st.log_path) as f:
            self.assertIn("from-oci", f.read())

        # ImageFsInfo reports real usage, which shrinks when an image goes.
        def used():
            fs = self.client.img.ImageFsInfo(pb.ImageFsInfoRequest(), timeout=10).image_filesystems[0]
            return fs.used_bytes.value, fs.inodes_used.value
        before = used()
        self.assertGreater(before[0], 2 << 20)
        self.assertGreater(before[1], 10)

        # RemoveImage removes the image with every reference; again, and for a missing one, is fine.
        for _ in range(2):
            self.client.img.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image="local/busybox:1")), timeout=30)
        images = self.images()
        self.assertNotIn("local/busybox:1", images)
        self.assertNotIn("busybox:latest", images)
        self.assertIn("example.com/oci/busybox:v1", images)
        self.assertLess(used()[0], before[0])
        self.client.img.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image="0" * 64)), timeout=10)

        # podshim images rm: a reference first, then the image with its last one.
        result = podshim_images("rm", "--image-dir", self.store, "example.com/oci/busybox:v1")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("untagged", result.stdout)
        self.assertEqual(self.images(), {"example.com/archive/busybox:v1": config_digest})
        result = podshim_images("rm", "--image-dir", self.store, "example.com/archive/busybox:v1")
        self.assertIn("deleted " + config_digest, result.stdout)
        self.assertEqual(self.images(), {})
        self.assertNotEqual(podshim_images("rm", "--image-dir", self.store, "busybox").returncode, 0)

    def test_import_refuses_bad_input_by_name(self):
        result = podshim_images("import", "--image-dir", self.store, "/nonexistent/dir", "x:1")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("/nonexistent/dir", result.stderr)
        result = podshim_images("import", "--image-dir", self.store, IMAGE_DIR + "/busybox/rootfs", "Bad Ref")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("Bad Ref", result.stderr)
        notes = os.path.join(self.base, "notes.txt")
        with open(notes, "w") as f:
            f.write("not an archive\n")
        result = podshim_images("import", "--image-dir", self.store, notes, "x:1")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn(notes, result.stderr)


class ConformanceBehaviourTest(CRITestCase):
    """What critest's lifecycle subset checks, in our own client."""

    def test_status_conditions(self):
        conditions = {c.type: c for c in self.client.rt.Status(pb.StatusRequest(), timeout=10).status.conditions}
        self.assertTrue(conditions["RuntimeReady"].status)
        self.assertTrue(conditions["NetworkReady"].status)
        self.assertEqual(conditions["NetworkReady"].reason, "NetworkingOff")
        self.assertIn("loopback", conditions["NetworkReady"].message)

    def test_metadata_labels_and_annotations_are_kept(self):
        c = self.client
        cfg = pod_config("meta", labels={"app": "web", "tier": "front"})
        cfg.annotations["note"] = "kept as given"
        pod_id = c.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg), timeout=60).pod_sandbox_id
        self.track(pod_id=pod_id, uid=cfg.metadata.uid)
        st = c.rt.PodSandboxStatus(pb.PodSandboxStatusRequest(pod_sandbox_id=pod_id), timeout=10).status
        self.assertEqual(dict(st.labels), {"app": "web", "tier": "front"})
        self.assertEqual(dict(st.annotations), {"note": "kept as given"})
        self.assertEqual(st.metadata, cfg.metadata)
        listed = [p for p in c.rt.ListPodSandbox(pb.ListPodSandboxRequest(
            filter=pb.PodSandboxFilter(label_selector={"tier": "front"})), timeout=10).items if p.id == pod_id]
        self.assertEqual(len(listed), 1)
        self.assertEqual(dict(listed[0].annotations), {"note": "kept as given"})

        ccfg = container_config("box", ["sleep", "3600"], labels={"role": "main"})
        ccfg.annotations["why"] = "a test"
        cid = c.rt.CreateContainer(pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=ccfg, sandbox_config=cfg),
                                   timeout=30).container_id
        cst = self.container_status(c, cid).status
        self.assertEqual(dict(cst.labels), {"role": "main"})
        self.assertEqual(dict(cst.annotations), {"why": "a test"})
        self.assertEqual(cst.metadata, ccfg.metadata)
        items = c.rt.ListContainers(pb.ListContainersRequest(
            filter=pb.ContainerFilter(label_selector={"role": "main"})), timeout=10).containers
        self.assertEqual([(i.id, dict(i.annotations)) for i in items], [(cid, {"why": "a test"})])

    def test_top_stops_within_its_timeout_and_stop_remove_are_idempotent(self):
        c = self.client
        pod_id, pod_cfg = self.run_pod(c, "top")
        cid = self.create_container(c, pod_id, pod_cfg, "top", ["top"])
        self.start_container(c, cid)
        self.wait_container_state(c, cid, pb.CONTAINER_RUNNING)
        begin = time.monotonic()
        c.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=10), timeout=30)
        self.assertLess(time.monotonic() - begin, 10, "top ends on SIGTERM, well inside the timeout")
        self.assertEqual(self.container_status(c, cid).status.state, pb.CONTAINER_EXITED)
        for _ in range(2):
            self.assertCode(OK, c.rt.StopContainer, pb.StopContainerRequest(container_id=cid, timeout=10))
        for _ in range(2):
            self.assertCode(OK, c.rt.RemoveContainer, pb.RemoveContainerRequest(container_id=cid))
        self.assertCode(OK, c.rt.StopContainer, pb.StopContainerRequest(container_id="f" * 64))

    def test_exec_sync_timeout_errors_and_kills_the_command(self):
        c = self.client
        pod_id, pod_cfg, cid = self.run_pod_with_sleeper(c, "exectimeout")
        begin = time.monotonic()
        code, details, _ = code_of(c.rt.ExecSync, pb.ExecSyncRequest(container_id=cid, cmd=["sleep", "4321"], timeout=1),
                                   timeout=30)
        elapsed = time.monotonic() - begin
        self.assertEqual(code, grpc.StatusCode.DEADLINE_EXCEEDED, details)
        self.assertLess(elapsed, 10)
        out = c.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", "pgrep sleep || true"], timeout=10),
                            timeout=30)
        pids = out.stdout.decode().split()
        self.assertEqual(out.stderr, b"")
        # Only the container's own `sleep 3600` (its pid 1) may remain; the exec'd `sleep 4321` is gone.
        self.assertEqual(pids, ["1"], out.stdout)
        on_host = [p for p in processes_of(self.base, self.keys) if proc_cmdline(p)[:2] == ["sleep", "4321"]]
        self.assertEqual(on_host, [])


if __name__ == "__main__":
    unittest.main()
