"""Issue 21: PullImage from OCI/Docker registries, through the CRI and `podshim images pull`.

Every class starts its own offline registry (registryfixture.TestRegistry on 127.0.0.1, private
CA, optional Basic or Bearer-token auth, optional storage redirect) and its own `podshim serve
--registry-config FILE` on a fresh image store, and cleans both up even on failure. Covered:
Basic and token auth (good, wrong and missing credentials; messages never carry a password),
the pulled image's ImageStatus and a container standing on its layers (whiteout, opaque dir,
hard link), digest references, multi-arch indexes, Docker schema 2, gzip/zstd/plain layers,
integrity (tampered blobs, swapped manifests, schema 1, hostile layers), layer sharing and
garbage collection with container leases (also across a daemon restart and during a pull), a
pull killed half-way, stalled and cancelled pulls (a throttling TCP proxy in front of the
registry), storage redirects (no credentials to the storage host), mirrors (their own
credentials, never the CRI's), TLS settings (CA, skipVerify, insecure plain HTTP) and the CLI
(`podshim images pull` with --creds, --authfile, DOCKER_CONFIG, the registry config's
credentials, plain and terminal progress).
"""

import base64
import json
import os
import random
import socket
import subprocess
import threading
import time
import unittest
import uuid

import grpc

from crihelpers import CRITestCase, IMAGE_DIR, PODSHIM_BIN, code_of, container_config
from runtime.v1 import api_pb2 as pb

import registryfixture as rf

OK = grpc.StatusCode.OK
UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED
PERMISSION_DENIED = grpc.StatusCode.PERMISSION_DENIED
NOT_FOUND = grpc.StatusCode.NOT_FOUND
FAILED_PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
INVALID_ARGUMENT = grpc.StatusCode.INVALID_ARGUMENT

_TOOLS = {"docker-registry": rf.REGISTRY_BIN, "skopeo": rf.SKOPEO_BIN, "htpasswd": rf.HTPASSWD_BIN,
          "openssl": rf.OPENSSL_BIN, "zstd": rf.ZSTD_BIN, "busybox": rf.BUSYBOX_BIN}
MISSING = ["%s (%s)" % (name, path) for name, path in _TOOLS.items() if not os.access(path, os.X_OK)]
needs_registry = unittest.skipIf(MISSING, "registry pull tests need docker-registry, skopeo, apache2-utils, "
                                 "openssl, zstd and busybox-static; missing: %s" % ", ".join(MISSING))

PULL_TIMEOUT = 120


class CachedLayer(rf.Layer):
    """A Layer compressed once, however many images use it (the busybox base is ~1 MB of gzip)."""

    def build(self):
        if not hasattr(self, "_built"):
            self._built = super().build()
        return self._built


_BASE = []


def base_layer():
    """The shared runnable busybox base layer (gzip)."""
    if not _BASE:
        _BASE.append(CachedLayer(rf.busybox_layer_entries()))
    return _BASE[0]


def runnable_config(**extra):
    config = {"Env": [rf.DEFAULT_PATH_ENV], "Cmd": ["/bin/sh"]}
    config.update(extra)
    return config


def top_layer(entries, compression="gzip"):
    return rf.Layer(rf.add_parent_dirs(entries), compression)


def upload(reg, layout, info, repo, tag, uploaded=None):
    """Push an image's blobs (those not in `uploaded`, a set updated here) and its exact manifest
    under repo:tag with plain HTTP requests (faster than skopeo for many small images)."""
    uploaded = set() if uploaded is None else uploaded
    for digest in [info.config_digest] + list(info.layer_digests):
        if (repo, digest) not in uploaded:
            rf.put_blob(reg, repo, rf.read_blob(layout, digest))
            uploaded.add((repo, digest))
    rf.put_raw_manifest(reg, repo, tag, info.manifest_bytes, info.media_type)


def write_json(path, document):
    with open(path, "w") as f:
        json.dump(document, f, indent=2)
    return path


def podshim(*args, env=None, timeout=120):
    return subprocess.run([PODSHIM_BIN] + list(args), capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def basic_auth(user, password, server_address=""):
    return pb.AuthConfig(auth=base64.b64encode(("%s:%s" % (user, password)).encode()).decode(),
                         server_address=server_address)


class ThrottlingProxy:
    """A TCP proxy 127.0.0.1:port -> 127.0.0.1:target_port (TLS passes through untouched; the
    fixture's certificate is for IP 127.0.0.1, any port). While `delay` > 0 the answers to the
    client trickle: `chunk` bytes, then a pause of `delay` seconds. After `stall(n)` the answers
    (of all connections together) stop once n more bytes went through, until `unstall()`."""

    def __init__(self, target_port, delay=0.0, chunk=16384):
        self.target_port = target_port
        self.delay = delay
        self.chunk = chunk
        self.stall_budget = None
        self.unstalled = threading.Event()
        self.unstalled.set()
        self.closed = False
        self.sockets = []
        self.lock = threading.Lock()
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.thread = threading.Thread(target=self._accept, name="throttling-proxy", daemon=True)
        self.thread.start()

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=10)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src, dst, throttled):
        try:
            while True:
                data = src.recv(self.chunk)
                if not data:
                    break
                if throttled:
                    with self.lock:
                        if self.stall_budget is not None:
                            self.stall_budget -= len(data)
                            stalled = self.stall_budget < 0
                        else:
                            stalled = False
                    if stalled:
                        self.unstalled.wait(60)
                dst.sendall(data)
                if throttled and self.delay > 0:
                    time.sleep(self.delay)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def stall(self, budget):
        with self.lock:
            self.stall_budget = budget
            self.unstalled.clear()

    def unstall(self):
        with self.lock:
            self.stall_budget = None
            self.unstalled.set()

    def stop(self):
        self.closed = True
        self.unstalled.set()
        self.listener.close()
        self.thread.join(5)
        with self.lock:
            for s in self.sockets:
                try:
                    s.close()
                except OSError:
                    pass


# ---------------------------------------------------------------------------
# The base class: one registry, one daemon with --registry-config, helpers
# ---------------------------------------------------------------------------

@needs_registry
class RegistryPullCase(CRITestCase):
    start_daemon = False
    registry_options = {}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.store = os.path.join(cls.base, "images")
        cls.layout = os.path.join(cls.base, "layout")
        cls.reg = cls.start_registry(**cls.registry_options)
        cls.prepare()
        cls.config_path = write_json(os.path.join(cls.base, "registry.json"), cls.registry_config())
        cls.daemon = cls.new_daemon(image_dir=cls.store, extra_args=["--registry-config", cls.config_path])
        cls.daemon.start()
        cls.client = cls.new_client(cls.daemon.socket)

    @classmethod
    def start_registry(cls, **options):
        reg = rf.TestRegistry(**options)
        cls.addClassCleanup(reg.stop)  # runs before the daemon cleanup (cleanups are LIFO)
        reg.start()
        return reg

    @classmethod
    def registry_config(cls):
        hosts = {cls.reg.host: {"ca": [cls.reg.ca_file]}}
        if cls.reg.token_server:
            hosts["127.0.0.1:%d" % cls.reg.token_server.port] = {"insecure": True}
        return {"hosts": hosts}

    @classmethod
    def prepare(cls):
        """Build and push the class's images (before the daemon starts)."""

    # -- references and RPCs ---------------------------------------------------------------

    @classmethod
    def ref(cls, name, reg=None):
        return "%s/%s" % ((reg or cls.reg).host, name)

    def pull_request(self, image, auth=None):
        request = pb.PullImageRequest(image=pb.ImageSpec(image=image))
        if auth is not None:
            request.auth.CopyFrom(auth)
        return request

    def pull(self, image, auth=None, client=None):
        return (client or self.client).img.PullImage(self.pull_request(image, auth), timeout=PULL_TIMEOUT).image_ref

    def pull_code(self, image, auth=None, client=None, timeout=PULL_TIMEOUT):
        return code_of((client or self.client).img.PullImage, self.pull_request(image, auth), timeout=timeout)

    def alice(self):
        return pb.AuthConfig(username=self.reg.username, password=self.reg.password)

    def status(self, image):
        """The Image of ImageStatus, or None when the store does not have it."""
        resp = self.client.img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=image)), timeout=10)
        return resp.image if resp.HasField("image") else None

    def listed(self):
        return {image.id: image for image in self.client.img.ListImages(pb.ListImagesRequest(), timeout=10).images}

    def remove_image(self, image):
        self.client.img.RemoveImage(pb.RemoveImageRequest(image=pb.ImageSpec(image=image)), timeout=60)

    def remove_all_images(self):
        for image_id in self.listed():
            self.remove_image(image_id)

    # -- the store on disk -----------------------------------------------------------------

    def entries(self, *path):
        try:
            return sorted(os.listdir(os.path.join(self.store, *path)))
        except FileNotFoundError:
            return []

    def layer_dirs(self):
        """ChainID hex names of the unpacked layers (`<store>/.layers/<hex>`)."""
        return set(e for e in self.entries(".layers") if not e.startswith("."))

    def image_records(self):
        return set(e for e in self.entries() if not e.startswith(".")
                   and os.path.exists(os.path.join(self.store, e, "image.json")))

    def leftovers(self):
        """What an interrupted or failed pull may leave: temporary layer dirs, downloads in
        flight, staging dirs and pull leases."""
        out = ["%s/.layers/%s" % (self.store, e) for e in self.entries(".layers") if e.startswith(".")]
        out += ["%s/.ingest/%s" % (self.store, e) for e in self.entries(".ingest")]
        out += ["%s/%s" % (self.store, e) for e in self.entries()
                if e.startswith(".staging") or e.startswith(".removing")]
        out += ["%s/.leases/%s" % (self.store, e) for e in self.entries(".leases") if e.startswith("pull-")]
        return out

    def assertNoLeftovers(self):
        self.assertEqual(self.leftovers(), [], "leftovers of a pull in the image store")

    @staticmethod
    def hexof(digest):
        return digest.split(":", 1)[1]

    def assertSecretNotLeaked(self, secret, *texts):
        for text in texts:
            self.assertNotIn(secret, text)
        self.assertNotIn(secret, self.daemon.stderr_text(), "the daemon log holds a password")

    # -- containers ------------------------------------------------------------------------

    def run_container(self, image, name="c"):
        """A pod with one container from `image` running `sleep 3600`; returns the container id."""
        pod_id, pod_cfg = self.run_pod(self.client, "%s-%s" % (name, uuid.uuid4().hex[:6]))
        cfg = container_config(name, ["sleep", "3600"])
        cfg.image.image = image
        cid = self.client.rt.CreateContainer(pb.CreateContainerRequest(
            pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg), timeout=30).container_id
        self.start_container(self.client, cid)
        self.wait_container_state(self.client, cid, pb.CONTAINER_RUNNING)
        return cid

    def exec_(self, cid, script):
        resp = self.client.rt.ExecSync(pb.ExecSyncRequest(container_id=cid, cmd=["sh", "-c", script], timeout=20),
                                       timeout=40)
        return resp.exit_code, resp.stdout.decode(errors="replace"), resp.stderr.decode(errors="replace")

    def exec_ok(self, cid, script):
        code, out, err = self.exec_(cid, script)
        self.assertEqual(code, 0, "%r: exit %d, stdout %r, stderr %r" % (script, code, out, err))
        return out


# ---------------------------------------------------------------------------
# 1. Basic auth, ImageStatus, a container on the pulled layers
# ---------------------------------------------------------------------------

class BasicAuthPullTest(RegistryPullCase):
    registry_options = {"auth": "basic"}

    @classmethod
    def prepare(cls):
        middle = [rf.dir_entry("etc"), rf.file_entry("etc/hello", "hello from a pulled layer\n"),
                  rf.hardlink_entry("etc/hello.link", "etc/hello"),
                  rf.file_entry("etc/doomed", "deleted above\n"),
                  rf.dir_entry("opt"), rf.file_entry("opt/old", "hidden by the opaque dir\n"),
                  rf.dir_entry("opt/olddir"), rf.file_entry("opt/olddir/deep", "hidden too\n"),
                  rf.dir_entry("var"), rf.dir_entry("var/gone"), rf.file_entry("var/gone/a", "a"),
                  rf.dir_entry("srv", mode=0o750, uid=1000, gid=1000),
                  rf.file_entry("srv/suid", "#!/bin/sh\n", mode=0o4755, uid=1000, gid=1000),
                  rf.symlink_entry("srv/link", "/etc/hello")]
        top = [rf.whiteout_entry("etc/doomed"), rf.file_entry("etc/top", "from the top layer\n"),
               rf.whiteout_entry("var/gone"),
               rf.dir_entry("opt"), rf.opaque_entry("opt"), rf.file_entry("opt/new", "new\n")]
        layers = [base_layer(), rf.Layer(middle, "gzip"), top_layer(top, "gzip")]
        cls.images = rf.build_layout(cls.layout, {
            "v1": rf.Image(layers, config=runnable_config(User="1000:1000")),
            "app": rf.Image(layers, config=runnable_config(User="app")),
        })
        rf.push(cls.reg, cls.layout, "v1", "test/busybox:v1")
        rf.push(cls.reg, cls.layout, "app", "test/busybox:app")
        rf.push(cls.reg, cls.layout, "v1", "test/private:v1")

    def test_pull_with_username_and_password(self):
        info = self.images["v1"]
        ref = self.ref("test/busybox:v1")
        self.assertEqual(self.pull(ref, auth=self.alice()), info.config_digest)

        image = self.status(ref)
        self.assertIsNotNone(image, "ImageStatus does not find the pulled image")
        self.assertEqual(image.id, info.config_digest)
        self.assertIn(ref, list(image.repo_tags))
        self.assertIn("%s/test/busybox@%s" % (self.reg.host, info.manifest_digest), list(image.repo_digests))
        self.assertGreater(image.size, 0)
        self.assertTrue(image.HasField("uid"), "numeric User 1000:1000 gives uid")
        self.assertEqual(image.uid.value, 1000)
        self.assertEqual(image.username, "")
        self.assertIn(info.config_digest, self.listed())
        self.assertEqual(self.status(info.config_digest).id, info.config_digest, "ImageStatus by id")
        # One directory per layer, named by ChainID; nothing left of the pull.
        self.assertTrue(set(map(self.hexof, info.chain_ids)) <= self.layer_dirs(), self.layer_dirs())
        self.assertNoLeftovers()

        # A container (created by image id, as the kubelet does) sees the stacked layers.
        cid = self.run_container(info.config_digest, "basic")
        self.assertEqual(self.exec_ok(cid, "cat /etc/hello"), "hello from a pulled layer\n")
        self.assertEqual(self.exec_ok(cid, "cat /etc/top"), "from the top layer\n")
        self.assertEqual(self.exec_(cid, "test -e /etc/doomed")[0], 1, "the whiteout deletes /etc/doomed")
        self.assertEqual(self.exec_ok(cid, "ls -A /opt").split(), ["new"], "the opaque /opt hides lower content")
        self.assertEqual(self.exec_ok(cid, "cat /etc/hello.link"), "hello from a pulled layer\n")
        inodes = self.exec_ok(cid, "stat -c '%i %h' /etc/hello /etc/hello.link").splitlines()
        self.assertEqual(len(set(inodes)), 1, "the hard link is the same file: %r" % inodes)
        self.assertEqual(inodes[0].split()[1], "2", "two names for one inode: %r" % inodes)
        self.assertEqual(self.exec_(cid, "test -e /var/gone")[0], 1, "a whited-out directory is gone")
        self.assertEqual(self.exec_ok(cid, "stat -c '%u:%g %a %Y' /srv /srv/suid").split("\n")[:2],
                         ["1000:1000 750 %d" % rf.MTIME, "1000:1000 4755 %d" % rf.MTIME],
                         "owners, modes (setuid kept) and mtimes come from the layer")
        self.assertEqual(self.exec_ok(cid, "readlink /srv/link; cat /srv/link"), "/etc/hello\nhello from a pulled layer\n")
        self.assertSecretNotLeaked(self.reg.password)

    def test_pull_with_the_auth_field(self):
        info = self.images["app"]
        ref = self.ref("test/busybox:app")
        auth = basic_auth(self.reg.username, self.reg.password, server_address=self.reg.host)
        self.assertEqual(self.pull(ref, auth=auth), info.config_digest)
        image = self.status(ref)
        self.assertIsNotNone(image)
        self.assertEqual(image.id, info.config_digest)
        self.assertEqual(image.username, "app", "a user name (not numeric) goes to username")
        self.assertFalse(image.HasField("uid"))
        self.assertIn("%s/test/busybox@%s" % (self.reg.host, info.manifest_digest), list(image.repo_digests))

    def test_wrong_password_is_unauthenticated(self):
        ref = self.ref("test/private:v1")
        wrong = "Wr0ng-pa55word-%s" % uuid.uuid4().hex[:8]
        for auth in (pb.AuthConfig(username=self.reg.username, password=wrong),
                     basic_auth(self.reg.username, wrong)):
            code, details, _ = self.pull_code(ref, auth=auth)
            self.assertEqual(code, UNAUTHENTICATED, details)
            self.assertIn(self.reg.host, details, "the message names the registry")
            self.assertSecretNotLeaked(wrong, details)
        self.assertIsNone(self.status(ref))
        self.assertNoLeftovers()

    def test_no_credentials_is_unauthenticated(self):
        ref = self.ref("test/private:v1")
        code, details, _ = self.pull_code(ref)
        self.assertEqual(code, UNAUTHENTICATED, details)
        self.assertIn(self.reg.host, details)
        self.assertIsNone(self.status(ref))


# ---------------------------------------------------------------------------
# 2. Token auth
# ---------------------------------------------------------------------------

class TokenAuthPullTest(RegistryPullCase):
    registry_options = {"auth": "token"}

    @classmethod
    def prepare(cls):
        image = rf.Image([base_layer(), top_layer([rf.file_entry("etc/hello", "token\n")])],
                         config=runnable_config())
        cls.info = rf.build_layout(cls.layout, {"v1": image})["v1"]
        for repo in ("test/busybox:v1", "public/busybox:v1", "test/secret:v1", "test/wrongpw:v1",
                     "test/regtoken:v1", "public/other:v1", "test/address:v1"):
            rf.push(cls.reg, cls.layout, "v1", repo)

    def test_alice_pulls_a_private_repository(self):
        self.reg.reset_records()
        ref = self.ref("test/busybox:v1")
        self.assertEqual(self.pull(ref, auth=self.alice()), self.info.config_digest)
        requests = list(self.reg.token_requests)
        self.assertTrue(requests, "no token was fetched")
        for req in requests:
            self.assertEqual((req["basic"], req["user"], req["status"]), (True, "alice", 200), req)
        scopes = [s for req in requests for s in req["query"].get("scope", [])]
        self.assertIn("repository:test/busybox:pull", scopes)
        self.assertEqual(self.status(ref).id, self.info.config_digest)
        self.assertSecretNotLeaked(self.reg.password)

    def test_anonymous_pull_of_a_public_repository(self):
        self.reg.reset_records()
        ref = self.ref("public/busybox:v1")
        self.assertEqual(self.pull(ref), self.info.config_digest)
        self.assertTrue(self.reg.token_requests)
        self.assertEqual([r["basic"] for r in self.reg.token_requests], [False] * len(self.reg.token_requests))
        self.assertIn("%s/public/busybox@%s" % (self.reg.host, self.info.manifest_digest),
                      list(self.status(ref).repo_digests))

    def test_anonymous_pull_of_a_private_repository_fails(self):
        ref = self.ref("test/secret:v1")
        code, details, _ = self.pull_code(ref)
        self.assertIn(code, (UNAUTHENTICATED, PERMISSION_DENIED), details)
        self.assertIn(self.reg.host, details)
        self.assertIsNone(self.status(ref))

    def test_wrong_password_at_the_token_realm(self):
        ref = self.ref("test/wrongpw:v1")
        wrong = "n0t-%s" % uuid.uuid4().hex[:10]
        code, details, _ = self.pull_code(ref, auth=pb.AuthConfig(username="alice", password=wrong))
        self.assertEqual(code, UNAUTHENTICATED, details)
        self.assertIn(self.reg.host, details)
        self.assertSecretNotLeaked(wrong, details)
        self.assertIsNone(self.status(ref))

    def test_registry_token_is_sent_as_it_is(self):
        token = self.reg.token_server.issue_token(
            "alice", [{"type": "repository", "name": "test/regtoken", "actions": ["pull"]}])
        self.reg.reset_records()
        ref = self.ref("test/regtoken:v1")
        self.assertEqual(self.pull(ref, auth=pb.AuthConfig(registry_token=token)), self.info.config_digest)
        self.assertEqual(self.reg.token_requests, [], "a registry_token needs no token request")
        self.assertSecretNotLeaked(token)

    def test_server_address_with_scheme_and_path_matches(self):
        ref = self.ref("test/address:v1")
        auth = pb.AuthConfig(username="alice", password=self.reg.password,
                             server_address="https://%s/v2/" % self.reg.host)
        self.assertEqual(self.pull(ref, auth=auth), self.info.config_digest)

    def test_credentials_for_another_server_are_not_used(self):
        # As containerd's ParseAuth (registry.md section 2): an AuthConfig whose server_address is
        # another registry is skipped, and the pull goes on anonymously.
        self.reg.reset_records()
        ref = self.ref("public/other:v1")
        code, details, resp = self.pull_code(ref, auth=pb.AuthConfig(
            username="alice", password=self.reg.password, server_address="registry.other.example:5000"))
        self.assertEqual(code, OK, details)
        self.assertEqual(resp.image_ref, self.info.config_digest)
        self.assertEqual([r for r in self.reg.token_requests if r["basic"]], [],
                         "credentials for another server were sent")

    def test_no_credentials_to_a_plain_http_realm_not_configured_insecure(self):
        # `podshim images pull` reads its own config: here the realm's host is not insecure.
        config = write_json(os.path.join(self.base, "no-insecure.json"),
                            {"hosts": {self.reg.host: {"ca": [self.reg.ca_file]}}})
        store = os.path.join(self.base, "cli-store-token")
        self.reg.reset_records()
        result = podshim("images", "pull", "--image-dir", store, "--registry-config", config,
                         "--creds", "alice:" + self.reg.password, self.ref("test/busybox:v1"))
        self.assertNotEqual(result.returncode, 0, result.stdout)
        self.assertIn("insecure", result.stderr)
        self.assertNotIn(self.reg.password, result.stderr + result.stdout)
        self.assertEqual([r for r in self.reg.token_requests if r["basic"]], [],
                         "credentials went to a plain-http realm")


# ---------------------------------------------------------------------------
# 3. References by digest, multi-arch indexes, Docker schema 2, layer compressions
# ---------------------------------------------------------------------------

class FormatsPullTest(RegistryPullCase):
    registry_options = {"auth": None}

    @classmethod
    def prepare(cls):
        layers = [base_layer(),
                  top_layer([rf.file_entry("etc/zstd-file", "zstd layer\n")], "zstd"),
                  top_layer([rf.file_entry("etc/plain-file", "uncompressed layer\n")], "none")]
        cls.images = rf.build_layout(cls.layout, {
            "layers": rf.Image(layers, config=runnable_config()),
            "digest": rf.Image([base_layer(), top_layer([rf.file_entry("etc/pinned", "by digest\n")])],
                               config=runnable_config()),
            "docker": rf.Image([base_layer(), top_layer([rf.file_entry("etc/docker-file", "docker v2s2\n")])],
                               config=runnable_config()),
        })
        cls.moving = rf.build_layout(cls.layout, {
            "moving-a": rf.Image([base_layer(), top_layer([rf.file_entry("etc/version", "a\n")])], config=runnable_config()),
            "moving-b": rf.Image([base_layer(), top_layer([rf.file_entry("etc/version", "b\n")])], config=runnable_config()),
        })
        cls.multi = rf.build_multiarch_layout(cls.layout, "multi", config=runnable_config())
        rf.push(cls.reg, cls.layout, "layers", "test/layers:v1")
        rf.push(cls.reg, cls.layout, "digest", "test/digest:v1")
        cls.docker_digest = rf.push(cls.reg, cls.layout, "docker", "test/docker:v1", fmt="v2s2")
        rf.push(cls.reg, cls.layout, "multi", "test/multi:v1", all=True)
        rf.push(cls.reg, cls.layout, "moving-a", "test/moving:v1")
        rf.push(cls.reg, cls.layout, "digest", "test/alias:one")
        rf.push(cls.reg, cls.layout, "digest", "test/alias:two")
        # An index without this machine's platform.
        other = [d for p, d in ((p, i.descriptor(platform=i.platform)) for p, i in cls.multi.images.items())
                 if p != "linux/" + rf.host_arch()]
        cls.foreign_index = rf.canonical_json({"schemaVersion": 2, "mediaType": rf.MT_OCI_INDEX, "manifests": other})
        rf.put_raw_manifest(cls.reg, "test/multi", "foreign", cls.foreign_index, rf.MT_OCI_INDEX)
        # A plain-HTTP registry (configured insecure), one with an unknown CA and one skipVerify.
        cls.plain = cls.start_registry(tls=False)
        cls.unknown_ca = cls.start_registry()
        cls.skip_verify = cls.start_registry()
        for reg in (cls.plain, cls.unknown_ca, cls.skip_verify):
            rf.push(reg, cls.layout, "layers", "test/layers:v1")

    @classmethod
    def registry_config(cls):
        config = super().registry_config()
        config["hosts"][cls.plain.host] = {"insecure": True}
        config["hosts"][cls.skip_verify.host] = {"skipVerify": True}
        return config

    def test_pull_by_digest(self):
        info = self.images["digest"]
        ref = self.ref("test/digest@" + info.manifest_digest)
        self.assertEqual(self.pull(ref), info.config_digest)
        image = self.status(ref)
        self.assertIsNotNone(image, "ImageStatus by the pulled digest reference")
        self.assertEqual(image.id, info.config_digest)
        self.assertIn(ref, list(image.repo_digests))
        # A tag with a digest: the digest decides.
        self.assertEqual(self.pull(self.ref("test/digest:nonexistent-tag@" + info.manifest_digest)),
                         info.config_digest)
        self.assertEqual(list(self.status(ref).repo_tags), [], "a pull by digest tags nothing")
        cid = self.run_container(ref, "bydigest")
        self.assertEqual(self.exec_ok(cid, "cat /etc/pinned"), "by digest\n")

    def test_two_tags_of_one_image_make_one_image(self):
        info = self.images["digest"]
        one, two = self.ref("test/alias:one"), self.ref("test/alias:two")
        self.assertEqual(self.pull(one), info.config_digest)
        self.assertEqual(self.pull(two), info.config_digest)
        image = self.listed()[info.config_digest]
        self.assertTrue({one, two} <= set(image.repo_tags), list(image.repo_tags))
        self.assertEqual(self.status(one).id, self.status(two).id)

    def test_a_moved_tag_is_pulled_again(self):
        a, b = self.moving["moving-a"], self.moving["moving-b"]
        ref = self.ref("test/moving:v1")
        self.assertEqual(self.pull(ref), a.config_digest)
        rf.push(self.reg, self.layout, "moving-b", "test/moving:v1")
        self.assertEqual(self.pull(ref), b.config_digest, "the tag now names another image")
        self.assertEqual(self.status(ref).id, b.config_digest)
        old = self.listed().get(a.config_digest)
        if old is not None:
            self.assertNotIn(ref, list(old.repo_tags), "the tag left the old image")
        cid = self.run_container(ref, "moved")
        self.assertEqual(self.exec_ok(cid, "cat /etc/version"), "b\n")

    def test_index_without_this_platform_is_not_found(self):
        code, details, _ = self.pull_code(self.ref("test/multi:foreign"))
        self.assertEqual(code, NOT_FOUND, details)
        self.assertIn("linux/" + rf.host_arch(), details)

    def test_plain_http_registry_configured_insecure(self):
        info = self.images["layers"]
        self.assertEqual(self.pull(self.ref("test/layers:v1", self.plain)), info.config_digest)

    def test_unreachable_registry_fails_soon(self):
        begin = time.monotonic()
        code, details, _ = self.pull_code("127.0.0.1:1/test/layers:v1", timeout=20)
        self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, "after %.1f s: %s" % (time.monotonic() - begin, details))
        self.assertIn("127.0.0.1:1", details)

    def test_registry_with_an_unknown_ca_fails_and_skip_verify_works(self):
        info = self.images["layers"]
        begin = time.monotonic()
        code, details, _ = self.pull_code(self.ref("test/layers:v1", self.unknown_ca), timeout=20)
        self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, "after %.1f s: %s" % (time.monotonic() - begin, details))
        self.assertIn(self.unknown_ca.host, details)
        self.assertIn("CERTIFICATE_VERIFY_FAILED", details)
        self.assertIsNone(self.status(self.ref("test/layers:v1", self.unknown_ca)))
        self.assertEqual(self.pull(self.ref("test/layers:v1", self.skip_verify)), info.config_digest)

    def test_multiarch_index_picks_this_platform(self):
        platform = "linux/" + rf.host_arch()
        chosen = self.multi.images[platform]
        ref = self.ref("test/multi:v1")
        self.assertEqual(self.pull(ref), chosen.config_digest)
        image = self.status(ref)
        self.assertEqual(image.id, chosen.config_digest)
        self.assertIn("%s/test/multi@%s" % (self.reg.host, self.multi.index_digest), list(image.repo_digests),
                      "the repo digest is the index's")
        cid = self.run_container(ref, "multi")
        self.assertEqual(self.exec_ok(cid, "cat /etc/platform"), platform + "\n")
        self.assertEqual(self.exec_ok(cid, "cat /" + self.multi.marker_path), "picked the right platform\n")
        # The index by its digest too.
        self.assertEqual(self.pull(self.ref("test/multi@" + self.multi.index_digest)), chosen.config_digest)

    def test_docker_schema2_manifest(self):
        info = self.images["docker"]
        self.assertNotEqual(self.docker_digest, info.manifest_digest, "skopeo rewrote the manifest")
        ref = self.ref("test/docker:v1")
        self.assertEqual(self.pull(ref), info.config_digest, "the config (the image id) is unchanged by v2s2")
        self.assertIn("%s/test/docker@%s" % (self.reg.host, self.docker_digest), list(self.status(ref).repo_digests))
        cid = self.run_container(ref, "docker")
        self.assertEqual(self.exec_ok(cid, "cat /etc/docker-file"), "docker v2s2\n")

    def test_gzip_zstd_and_uncompressed_layers(self):
        info = self.images["layers"]
        ref = self.ref("test/layers:v1")
        self.assertEqual(self.pull(ref), info.config_digest)
        self.assertTrue(set(map(self.hexof, info.chain_ids)) <= self.layer_dirs())
        cid = self.run_container(ref, "layers")
        self.assertEqual(self.exec_ok(cid, "cat /etc/zstd-file /etc/plain-file"),
                         "zstd layer\nuncompressed layer\n")
        self.assertIn("busybox", self.exec_ok(cid, "readlink /bin/sh"))

    def test_unknown_tag_and_repository_are_not_found(self):
        for ref in (self.ref("test/layers:no-such-tag"), self.ref("test/no-such-repo:v1"),
                    self.ref("test/layers@sha256:" + "0" * 64)):
            code, details, _ = self.pull_code(ref)
            self.assertEqual(code, NOT_FOUND, "%s: %s" % (ref, details))

    def test_invalid_references(self):
        for ref in (self.ref("test/layers:v1@sha256:xyz"), self.ref("test/UPPER:v1"),
                    self.ref("test/layers:bad tag"), self.ref("test//double:v1")):
            code, details, _ = self.pull_code(ref)
            self.assertEqual(code, INVALID_ARGUMENT, "%s: %s" % (ref, details))

    def test_imported_images_are_served_without_a_registry(self):
        rootfs = os.path.join(IMAGE_DIR, "busybox", "rootfs")
        for ref in ("local/imported:v1", "127.0.0.1:1/imported/busybox:v1"):
            result = podshim("images", "import", "--image-dir", self.store, "--cmd", "sh", rootfs, ref)
            self.assertEqual(result.returncode, 0, result.stderr)
            image_id = result.stdout.split()[0]
            begin = time.monotonic()
            self.assertEqual(self.pull(ref), image_id, ref)
            self.assertLess(time.monotonic() - begin, 5, "no registry was contacted")


# ---------------------------------------------------------------------------
# 4. Integrity
# ---------------------------------------------------------------------------

class IntegrityPullTest(RegistryPullCase):
    registry_options = {"auth": None, "schema1": True}

    @classmethod
    def prepare(cls):
        cls.outside = os.path.join(cls.base, "outside")
        os.makedirs(cls.outside)
        cls.marker = "escape-%s" % uuid.uuid4().hex[:10]
        cls.victim = os.path.join(cls.outside, "victim")
        for path in (cls.victim, os.path.join(cls.base, "victim"), os.path.join(cls.base, "images", "victim")):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write("host file\n")
        rnd = random.Random(21)

        def unique(name):
            return rf.Layer([rf.dir_entry("data"),
                             rf.file_entry("data/" + name, bytes(rnd.getrandbits(8) for _ in range(65536)))], "gzip")

        cls.images = rf.build_layout(cls.layout, {
            "tamper": rf.Image([unique("tamper")], config=runnable_config()),
            "config": rf.Image([unique("config")], config=runnable_config()),
            "swapped": rf.Image([unique("swapped")], config=runnable_config()),
            "other": rf.Image([unique("other")], config=runnable_config()),
            "hostile": rf.Image([rf.Layer([rf.file_entry("../" + cls.marker, "x"),
                                           rf.file_entry("../../" + cls.marker, "x"),
                                           rf.file_entry("ok", "fine")], "none")]),
            "symlink": rf.Image([rf.Layer([rf.symlink_entry("evil", cls.outside),
                                           rf.file_entry("evil/" + cls.marker, "pwned")], "none")]),
            "hardlink": rf.Image([rf.Layer([rf.Entry("hardlink", "abs", linkname=cls.victim),
                                            rf.Entry("hardlink", "rel", linkname="../" * 16 + cls.victim.lstrip("/"))],
                                           "none")]),
            "whiteout": rf.Image([rf.Layer([rf.Entry("file", "../../.wh.victim", mode=0),
                                            rf.Entry("file", "../../../.wh.victim", mode=0),
                                            rf.Entry("file", "../" * 16 + cls.outside.lstrip("/") + "/.wh.victim",
                                                     mode=0)],
                                           "none")]),
        })
        for tag, repo in (("tamper", "test/tamper:v1"), ("config", "test/badconfig:v1"), ("swapped", "test/swapped:v1"),
                          ("other", "test/swapped:other"), ("hostile", "test/hostile:v1"), ("symlink", "test/symlink:v1"),
                          ("hardlink", "test/hardlink:v1"), ("whiteout", "test/whiteout:v1")):
            rf.push(cls.reg, cls.layout, tag, repo)
        # Schema 1: a signed manifest over a real blob.
        layer = rf.put_blob(cls.reg, "test/schema1", rf.read_blob(cls.layout, cls.images["tamper"].layer_digests[0]))
        rf.put_raw_manifest(cls.reg, "test/schema1", "old", rf.schema1_manifest("test/schema1", "old", [layer]),
                            rf.MT_DOCKER_SCHEMA1_SIGNED)

    def snapshot(self):
        return self.layer_dirs(), self.image_records()

    def assertNothingStored(self, before, ref):
        self.assertEqual(self.snapshot(), before, "a failed pull stored something")
        self.assertIsNone(self.status(ref))
        self.assertNoLeftovers()

    def test_tampered_layer_blob_is_refused_then_the_repaired_one_pulls(self):
        info = self.images["tamper"]
        ref = self.ref("test/tamper:v1")
        digest = info.layer_digests[0]
        original = rf.read_blob(self.layout, digest)
        before = self.snapshot()
        self.reg.tamper_blob(digest)
        try:
            code, details, _ = self.pull_code(ref)
            self.assertEqual(code, FAILED_PRECONDITION, details)
            self.assertIn(digest, details, "the message names the corrupt blob")
            self.assertNothingStored(before, ref)
        finally:
            self.reg.tamper_blob(digest, original)
        self.assertEqual(self.pull(ref), info.config_digest)
        self.assertIn(self.hexof(info.chain_ids[0]), self.layer_dirs())
        self.assertNoLeftovers()

    def test_tampered_config_is_refused(self):
        info = self.images["config"]
        ref = self.ref("test/badconfig:v1")
        before = self.snapshot()
        self.reg.tamper_blob(info.config_digest)
        code, details, _ = self.pull_code(ref)
        self.assertEqual(code, FAILED_PRECONDITION, details)
        self.assertNothingStored(before, ref)

    def test_manifest_not_matching_its_digest_is_refused(self):
        info, other = self.images["swapped"], self.images["other"]
        before = self.snapshot()
        # The registry now serves another (valid) manifest under this digest.
        self.reg.tamper_blob(info.manifest_digest, other.manifest_bytes)
        for ref in (self.ref("test/swapped@" + info.manifest_digest), self.ref("test/swapped:v1")):
            code, details, _ = self.pull_code(ref)
            self.assertEqual(code, FAILED_PRECONDITION, "%s: %s" % (ref, details))
            self.assertIn(info.manifest_digest, details)
            self.assertNothingStored(before, ref)

    def test_schema1_manifest_is_refused(self):
        ref = self.ref("test/schema1:old")
        code, details, _ = self.pull_code(ref)
        self.assertEqual(code, FAILED_PRECONDITION, details)
        self.assertIn("schema 1", details)
        self.assertIsNone(self.status(ref))

    def escaped(self):
        found = []
        for dirpath, dirnames, filenames in os.walk(self.base):
            if self.marker in filenames or self.marker in dirnames:
                found.append(os.path.join(dirpath, self.marker))
        parent = os.path.dirname(self.base)
        if os.path.lexists(os.path.join(parent, self.marker)):
            found.append(os.path.join(parent, self.marker))
        return found

    def test_layer_with_a_dotdot_member_is_refused(self):
        ref = self.ref("test/hostile:v1")
        before = self.snapshot()
        code, details, _ = self.pull_code(ref)
        self.assertEqual(code, FAILED_PRECONDITION, details)
        self.assertEqual(self.escaped(), [], "a ../ member was written outside the layer")
        self.assertNothingStored(before, ref)

    def test_layer_writing_through_a_symlink_stays_inside(self):
        ref = self.ref("test/symlink:v1")
        code, details, _ = self.pull_code(ref)
        self.assertIn(code, (OK, FAILED_PRECONDITION), details)
        self.assertEqual(os.listdir(self.outside), ["victim"], "a layer wrote through a symlink to the host")
        self.assertNoLeftovers()

    def test_hard_links_to_host_files_are_refused(self):
        ref = self.ref("test/hardlink:v1")
        code, details, _ = self.pull_code(ref)
        self.assertIn(code, (OK, FAILED_PRECONDITION), details)
        self.assertEqual(os.stat(self.victim).st_nlink, 1, "a layer hard-linked a host file")
        self.assertNoLeftovers()

    def test_whiteouts_outside_the_layer_delete_nothing(self):
        ref = self.ref("test/whiteout:v1")
        code, details, _ = self.pull_code(ref)
        self.assertIn(code, (OK, FAILED_PRECONDITION), details)
        for path in (self.victim, os.path.join(self.base, "victim"), os.path.join(self.store, "victim")):
            with open(path) as f:
                self.assertEqual(f.read(), "host file\n", path)
        self.assertNoLeftovers()


# ---------------------------------------------------------------------------
# 5. Layer sharing, garbage collection, leases
# ---------------------------------------------------------------------------

class SharingPullTest(RegistryPullCase):
    registry_options = {"auth": None}
    COUNT = 10

    @classmethod
    def prepare(cls):
        images = {"s%d" % i: rf.Image([base_layer(), top_layer([rf.file_entry("etc/id", "image-%d\n" % i)])],
                                      config=runnable_config()) for i in range(cls.COUNT)}
        images["lease"] = rf.Image([base_layer(), top_layer([rf.file_entry("etc/lease", "leased\n")])],
                                   config=runnable_config())
        cls.images = rf.build_layout(cls.layout, images)
        uploaded = set()
        for i in range(cls.COUNT):
            upload(cls.reg, cls.layout, cls.images["s%d" % i], "test/shared", "s%d" % i, uploaded)
        upload(cls.reg, cls.layout, cls.images["lease"], "test/lease", "v1", uploaded)
        cls.base_hex = cls.images["s0"].chain_ids[0].split(":", 1)[1]

    def setUp(self):
        super().setUp()
        self.remove_all_images()  # also collects every layer
        self.assertEqual(self.layer_dirs(), set())

    def test_concurrent_pulls_share_the_base_layer_and_removal_frees_layers(self):
        refs = [self.ref("test/shared:s%d" % i) for i in range(self.COUNT)]
        results = [None] * self.COUNT
        barrier = threading.Barrier(self.COUNT)
        clients = [self.new_client(self.daemon.socket) for _ in range(self.COUNT)]

        def worker(i):
            barrier.wait(10)
            results[i] = self.pull_code(refs[i], client=clients[i])

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(self.COUNT)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(PULL_TIMEOUT + 30)
        for i, result in enumerate(results):
            self.assertIsNotNone(result, "pull %d did not finish" % i)
            code, details, resp = result
            self.assertEqual(code, OK, "pull %d: %s" % (i, details))
            self.assertEqual(resp.image_ref, self.images["s%d" % i].config_digest)

        tops = {i: self.hexof(self.images["s%d" % i].chain_ids[1]) for i in range(self.COUNT)}
        self.assertEqual(self.layer_dirs(), {self.base_hex} | set(tops.values()),
                         "one shared base layer and one top layer per image")
        self.assertEqual(len(self.layer_dirs()), self.COUNT + 1)
        self.assertNoLeftovers()
        self.assertEqual(len(self.listed()), self.COUNT)
        self.assertEqual(len(self.image_records()), self.COUNT)
        used_before = self.image_fs_used()

        # Removing one image frees exactly its own layer.
        self.remove_image(refs[0])
        self.assertIsNone(self.status(refs[0]))
        self.assertEqual(self.layer_dirs(), {self.base_hex} | set(tops.values()) - {tops[0]})
        cid = self.run_container(refs[1], "shared")
        self.assertEqual(self.exec_ok(cid, "cat /etc/id"), "image-1\n")
        # Removing all frees everything (the container's lease aside, dropped with its pod).
        for ref in refs[1:]:
            self.remove_image(ref)
        self.assertEqual(self.listed(), {})
        self.remove_all_pods(self.client)
        self.remove_image("0" * 64)  # every RemoveImage collects garbage
        self.assertEqual(self.layer_dirs(), set())
        self.assertEqual(self.entries(".leases"), [])
        self.assertLess(self.image_fs_used(), used_before - (1 << 20), "ImageFsInfo shows the space freed")

    def image_fs_used(self):
        return self.client.img.ImageFsInfo(pb.ImageFsInfoRequest(), timeout=10).image_filesystems[0].used_bytes.value

    def test_one_image_pulled_by_many_clients_at_once(self):
        info = self.images["s3"]
        ref = self.ref("test/shared:s3")
        n = 6
        results = [None] * n
        barrier = threading.Barrier(n)
        clients = [self.new_client(self.daemon.socket) for _ in range(n)]

        def worker(i):
            barrier.wait(10)
            results[i] = self.pull_code(ref, client=clients[i])

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(PULL_TIMEOUT + 30)
        self.assertEqual([(r[0], r[2].image_ref if r[2] else r[1]) for r in results],
                         [(OK, info.config_digest)] * n)
        self.assertEqual(len(self.image_records()), 1, self.image_records())
        self.assertEqual(list(self.listed()), [info.config_digest])
        self.assertEqual(list(self.listed()[info.config_digest].repo_tags), [ref])
        self.assertEqual(self.layer_dirs(), set(map(self.hexof, info.chain_ids)))
        self.assertNoLeftovers()

    def test_a_leased_layer_survives_remove_image(self):
        info = self.images["lease"]
        ref = self.ref("test/lease:v1")
        self.assertEqual(self.pull(ref), info.config_digest)
        layers = set(map(self.hexof, info.chain_ids))
        cid = self.run_container(ref, "leaser")
        self.assertIn(cid, self.entries(".leases"))
        self.remove_image(ref)
        self.assertIsNone(self.status(ref))
        self.assertNotIn(info.config_digest, self.listed())
        self.assertEqual(self.layer_dirs(), layers, "the running container's layers are kept")
        # The container keeps running on them.
        self.assertEqual(self.container_status(self.client, cid).status.state, pb.CONTAINER_RUNNING)
        self.assertEqual(self.exec_ok(cid, "cat /etc/lease && ls /bin/busybox"), "leased\n/bin/busybox\n")
        # Another RemoveImage keeps them while the container exists...
        self.remove_image("0" * 64)
        self.assertEqual(self.layer_dirs(), layers)
        # ... and frees them once it is gone.
        self.remove_all_pods(self.client)
        self.remove_image("0" * 64)
        self.assertEqual(self.layer_dirs(), set())
        self.assertEqual(self.entries(".leases"), [])


# ---------------------------------------------------------------------------
# 6. A pull killed half-way
# ---------------------------------------------------------------------------

class KilledPullTest(RegistryPullCase):
    registry_options = {"auth": None}
    BIG = 6 << 20

    @classmethod
    def prepare(cls):
        # The daemon reaches the registry through a proxy that can slow the answers down.
        cls.proxy = ThrottlingProxy(cls.reg.port)
        cls.addClassCleanup(cls.proxy.stop)
        big = rf.Layer([rf.dir_entry("big"), rf.file_entry("big/random", os.urandom(cls.BIG))], "none")
        cls.info = rf.build_layout(cls.layout, {"big": rf.Image([base_layer(), big], config=runnable_config())})["big"]
        rf.push(cls.reg, cls.layout, "big", "test/big:v1")

    @classmethod
    def registry_config(cls):
        return {"hosts": {cls.proxy.host: {"ca": [cls.reg.ca_file]}}, "pullProgressTimeoutSeconds": 2}

    def setUp(self):
        super().setUp()
        self.proxy.delay = 0
        self.proxy.unstall()
        self.remove_all_images()

    def test_a_stalled_pull_is_cancelled(self):
        ref = "%s/test/big:v1" % self.proxy.host
        self.proxy.stall(256 << 10)  # manifests and config pass, the layers stop
        begin = time.monotonic()
        try:
            code, details, _ = self.pull_code(ref, timeout=30)
        finally:
            elapsed = time.monotonic() - begin
            self.proxy.unstall()
        self.assertEqual(code, grpc.StatusCode.UNAVAILABLE, details)
        self.assertIn("no progress", details)
        self.assertLess(elapsed, 20, "pullProgressTimeoutSeconds is 2")
        self.assertNoLeftovers()
        self.assertEqual(self.image_records(), set())
        self.assertEqual(self.pull(ref), self.info.config_digest)

    def wait_for_ingest(self, digest, minimum=1, timeout=30):
        """The name of the partial download of `digest` in .ingest once it has `minimum` bytes."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            for name in self.entries(".ingest"):
                try:
                    if name.startswith(self.hexof(digest)) and \
                            os.path.getsize(os.path.join(self.store, ".ingest", name)) >= minimum:
                        return name
                except OSError:
                    pass
            time.sleep(0.005)
        return None

    def test_a_cancelled_pull_does_not_break_a_concurrent_one(self):
        ref = "%s/test/big:v1" % self.proxy.host
        self.proxy.delay = 0.005  # about 3 MB/s: the big layer takes about 2 s
        results = {}
        impatient = self.new_client(self.daemon.socket)

        def run(name, client, timeout):
            results[name] = code_of(client.img.PullImage, self.pull_request(ref), timeout=timeout)

        first = threading.Thread(target=run, args=("impatient", impatient, 1.0))
        first.start()
        self.wait_for_ingest(self.info.layer_digests[1], timeout=5)
        # The second pull joins the download in flight; the first gives up (its deadline) soon after.
        second = threading.Thread(target=run, args=("patient", self.client, PULL_TIMEOUT))
        second.start()
        first.join(30)
        second.join(PULL_TIMEOUT + 30)
        self.assertEqual(results["impatient"][0], grpc.StatusCode.DEADLINE_EXCEEDED, results["impatient"][1])
        code, details, resp = results["patient"]
        self.assertEqual(code, OK, details)
        self.assertEqual(resp.image_ref, self.info.config_digest)
        self.assertNoLeftovers()

    def test_two_pulls_sharing_a_download_longer_than_the_progress_timeout(self):
        # pullProgressTimeoutSeconds is 2; the big layer takes about 4 s and makes progress all
        # along. Both pulls start together: one downloads, the other waits for that download.
        ref = "%s/test/big:v1" % self.proxy.host
        self.proxy.delay = 0.01
        results = {}
        clients = [self.client, self.new_client(self.daemon.socket)]
        barrier = threading.Barrier(2)

        def run(i):
            barrier.wait(10)
            results[i] = code_of(clients[i].img.PullImage, self.pull_request(ref), timeout=PULL_TIMEOUT)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(PULL_TIMEOUT + 30)
        for i in range(2):
            code, details, resp = results[i]
            self.assertEqual(code, OK, "pull %d: %s" % (i, details))
            self.assertEqual(resp.image_ref, self.info.config_digest)
        self.assertNoLeftovers()

    def test_garbage_collection_during_a_pull_keeps_its_layers(self):
        ref = "%s/test/big:v1" % self.proxy.host
        base_dir = os.path.join(self.store, ".layers", self.hexof(self.info.chain_ids[0]))
        self.proxy.delay = 0.01
        result = []
        thread = threading.Thread(target=lambda: result.append(self.pull_code(ref)))
        thread.start()
        try:
            deadline = time.time() + 30
            while time.time() < deadline and not os.path.isdir(base_dir) and thread.is_alive():
                time.sleep(0.01)
            self.assertTrue(os.path.isdir(base_dir), "the base layer was not unpacked first: %r" % result)
            self.assertIsNotNone(self.wait_for_ingest(self.info.layer_digests[1]))
            self.remove_image("0" * 64)  # collects garbage while the pull still downloads
            self.assertTrue(os.path.isdir(base_dir), "garbage collection removed a layer of a pull in flight")
        finally:
            thread.join(PULL_TIMEOUT + 30)
        code, details, resp = result[0]
        self.assertEqual(code, OK, details)
        self.assertEqual(set(map(self.hexof, self.info.chain_ids)), self.layer_dirs())
        self.assertNoLeftovers()

    def test_container_leases_survive_a_daemon_restart(self):
        ref = "%s/test/big:v1" % self.proxy.host
        self.assertEqual(self.pull(ref), self.info.config_digest)
        cid = self.run_container(ref, "restart")
        self.restart_daemon()
        self.remove_image(ref)
        self.assertIsNone(self.status(ref))
        self.assertEqual(self.layer_dirs(), set(map(self.hexof, self.info.chain_ids)),
                         "a running container's layers were freed after a restart")
        self.assertEqual(self.exec_ok(cid, "wc -c < /big/random").strip(), str(self.BIG))
        self.remove_all_pods(self.client)
        self.remove_image("0" * 64)
        self.assertEqual(self.layer_dirs(), set())

    def test_killed_pull_leaves_nothing_and_a_new_pull_completes(self):
        ref = "%s/test/big:v1" % self.proxy.host
        self.proxy.delay = 0.01  # 16 KiB per 10 ms: the 6 MiB layer takes about 4 s
        result = []
        thread = threading.Thread(target=lambda: result.append(self.pull_code(ref)))
        thread.start()
        try:
            seen = self.wait_for_ingest(self.info.layer_digests[1], minimum=256 << 10)
        finally:
            self.remember_descendants()
            self.daemon.kill()
            thread.join(30)
        self.assertIsNotNone(seen, "no partial download of the big layer showed up in .ingest (result %r)" % result)
        self.assertTrue(result and result[0][0] != OK, "the pull should have died with the daemon: %r" % result)

        self.proxy.delay = 0
        self.daemon.start()
        type(self).client = self.new_client(self.daemon.socket)
        self.assertNoLeftovers()
        self.assertEqual(self.image_records(), set())
        self.assertIsNone(self.status(ref))

        self.assertEqual(self.pull(ref), self.info.config_digest)
        data = os.path.join(self.store, ".layers", self.hexof(self.info.chain_ids[1]), "big", "random")
        self.assertEqual(os.path.getsize(data), self.BIG)
        self.assertNoLeftovers()
        # The pulled image outlives a clean restart.
        self.daemon.stop()
        self.daemon.start()
        type(self).client = self.new_client(self.daemon.socket)
        self.assertEqual(self.status(ref).id, self.info.config_digest)


# ---------------------------------------------------------------------------
# 7. Redirects to blob storage
# ---------------------------------------------------------------------------

class RedirectPullTest(RegistryPullCase):
    registry_options = {"auth": "basic", "redirect": True}

    @classmethod
    def prepare(cls):
        image = rf.Image([base_layer(), top_layer([rf.file_entry("etc/redirected", "via storage\n")])],
                         config=runnable_config())
        cls.info = rf.build_layout(cls.layout, {"v1": image})["v1"]
        rf.push(cls.reg, cls.layout, "v1", "test/busybox:v1")
        cls.token_reg = cls.start_registry(auth="token", redirect=True)
        rf.push(cls.token_reg, cls.layout, "v1", "test/busybox:v1")

    @classmethod
    def registry_config(cls):
        return {"hosts": {cls.reg.host: {"ca": [cls.reg.ca_file]},
                          cls.token_reg.host: {"ca": [cls.token_reg.ca_file]},
                          "127.0.0.1:%d" % cls.token_reg.token_server.port: {"insecure": True}}}

    def check_redirected_pull(self, reg):
        self.remove_all_images()  # every blob must come from this registry's storage
        self.assertEqual(self.layer_dirs(), set())
        reg.reset_records()
        ref = self.ref("test/busybox:v1", reg)
        self.assertEqual(self.pull(ref, auth=pb.AuthConfig(username=reg.username, password=reg.password)),
                         self.info.config_digest)
        requests = list(reg.redirect_requests)
        self.assertTrue(requests, "no blob was fetched from the storage server")
        fetched = set(r["path"].rsplit("/", 2)[-2] for r in requests if r["method"] == "GET")
        self.assertTrue(set(map(self.hexof, self.info.layer_digests)) <= fetched, fetched)
        self.assertIn(self.hexof(self.info.config_digest), fetched)
        for req in requests:
            self.assertNotIn("authorization", {k.lower() for k in req["headers"]},
                             "credentials went to the storage host: %s" % req["path"])

    def test_basic_auth_registry_redirecting_blobs(self):
        self.check_redirected_pull(self.reg)
        cid = self.run_container(self.ref("test/busybox:v1"), "redirect")
        self.assertEqual(self.exec_ok(cid, "cat /etc/redirected"), "via storage\n")

    def test_token_auth_registry_redirecting_blobs(self):
        self.check_redirected_pull(self.token_reg)


# ---------------------------------------------------------------------------
# 8. Mirrors
# ---------------------------------------------------------------------------

class MirrorPullTest(RegistryPullCase):
    """The fixture (token auth) is a mirror for the unreachable 127.0.0.1:1 and for a second
    registry (Basic auth, user carol) that has an image the mirror lacks."""

    registry_options = {"auth": "token"}
    DEAD = "127.0.0.1:1"

    @classmethod
    def prepare(cls):
        image = rf.Image([base_layer(), top_layer([rf.file_entry("etc/mirrored", "from the mirror\n")])],
                         config=runnable_config())
        upstream_image = rf.Image([base_layer(), top_layer([rf.file_entry("etc/upstream", "upstream\n")])],
                                  config=runnable_config())
        infos = rf.build_layout(cls.layout, {"v1": image, "up": upstream_image})
        cls.info, cls.upstream_info = infos["v1"], infos["up"]
        rf.push(cls.reg, cls.layout, "v1", "test/busybox:v1")
        cls.upstream = cls.start_registry(auth="basic", users={"carol": "upstream-pw-9c1"})
        rf.push(cls.upstream, cls.layout, "up", "test/upstream-only:v1")

    @classmethod
    def registry_config(cls):
        mirror = {"ca": [cls.reg.ca_file], "username": cls.reg.username, "password": cls.reg.password}
        return {"hosts": {
            cls.DEAD: {"mirrors": [cls.reg.url]},
            cls.upstream.host: {"ca": [cls.upstream.ca_file], "mirrors": [cls.reg.url]},
            cls.reg.host: mirror,
            "127.0.0.1:%d" % cls.reg.token_server.port: {"insecure": True},
        }}

    def test_pull_through_a_mirror_of_an_unreachable_registry(self):
        self.reg.reset_records()
        ref = "%s/test/busybox:v1" % self.DEAD
        cri_secret = "cri-only-%s" % uuid.uuid4().hex[:8]
        self.assertEqual(self.pull(ref, auth=pb.AuthConfig(username="bob", password=cri_secret)),
                         self.info.config_digest)
        image = self.status(ref)
        self.assertIsNotNone(image)
        self.assertIn(ref, list(image.repo_tags))
        self.assertIn("%s/test/busybox@%s" % (self.DEAD, self.info.manifest_digest), list(image.repo_digests))
        # The mirror's own credentials were used; the CRI's (bob) never reached its realm.
        self.assertTrue(self.reg.token_requests)
        for req in self.reg.token_requests:
            self.assertEqual((req["status"], req["user"]), (200, "alice"), req)
        self.assertSecretNotLeaked(cri_secret)
        cid = self.run_container(ref, "mirrored")
        self.assertEqual(self.exec_ok(cid, "cat /etc/mirrored"), "from the mirror\n")

    def test_mirror_without_the_image_falls_back_to_the_registry(self):
        self.reg.reset_records()
        ref = self.ref("test/upstream-only:v1", self.upstream)
        auth = pb.AuthConfig(username="carol", password="upstream-pw-9c1")
        self.assertEqual(self.pull(ref, auth=auth), self.upstream_info.config_digest)
        self.assertTrue(self.reg.token_requests, "the mirror was not tried first")
        for req in self.reg.token_requests:
            self.assertEqual((req["status"], req["user"]), (200, "alice"),
                             "the registry's credentials (carol) went to the mirror: %r" % req)
        self.assertIn("%s/test/upstream-only@%s" % (self.upstream.host, self.upstream_info.manifest_digest),
                      list(self.status(ref).repo_digests))


# ---------------------------------------------------------------------------
# 9. podshim images pull
# ---------------------------------------------------------------------------

class CLIPullTest(RegistryPullCase):
    registry_options = {"auth": "basic"}

    @classmethod
    def setUpClass(cls):
        # No daemon: the CLI works on image stores of its own.
        super(RegistryPullCase, cls).setUpClass()
        cls.store = os.path.join(cls.base, "images")
        cls.layout = os.path.join(cls.base, "layout")
        cls.reg = cls.start_registry(**cls.registry_options)
        cls.prepare()
        cls.config_path = write_json(os.path.join(cls.base, "registry.json"), cls.registry_config())

    @classmethod
    def prepare(cls):
        image = rf.Image([base_layer(), top_layer([rf.file_entry("etc/cli", "cli\n")], "zstd")],
                         config=runnable_config())
        cls.info = rf.build_layout(cls.layout, {"v1": image})["v1"]
        rf.push(cls.reg, cls.layout, "v1", "test/busybox:v1")

    def cli_pull(self, store, *args, env=None):
        return podshim("images", "pull", "--image-dir", store, "--registry-config", self.config_path, *args, env=env)

    def test_pull_with_creds_prints_progress_and_the_id(self):
        store = os.path.join(self.base, "store-creds")
        ref = self.ref("test/busybox:v1")
        result = self.cli_pull(store, "--creds", "alice:" + self.reg.password, ref)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.split(), [self.info.config_digest, ref])
        err = result.stderr
        self.assertNotIn("\x1b", err, "no terminal escapes when stderr is not a tty")
        self.assertIn("%s: %s" % (ref, self.info.manifest_digest), err)
        self.assertIn("2 layers, 2 to download", err)
        for digest in self.info.layer_digests:
            self.assertIn("%s: done" % self.hexof(digest)[:12], err)
        self.assertNotIn(self.reg.password, err + result.stdout)

        listed = podshim("images", "list", "--image-dir", store)
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertIn(ref, listed.stdout)
        self.assertIn(self.hexof(self.info.config_digest)[:12], listed.stdout)

        # Again: the store has it; same id.
        again = self.cli_pull(store, "-q", "--creds", "alice:" + self.reg.password, ref)
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.stdout.strip(), self.info.config_digest)

    def test_progress_on_a_terminal_is_redrawn_in_place(self):
        import pty
        store = os.path.join(self.base, "store-tty")
        master, slave = pty.openpty()
        try:
            proc = subprocess.Popen([PODSHIM_BIN, "images", "pull", "--image-dir", store, "--registry-config",
                                     self.config_path, "--creds", "alice:" + self.reg.password, self.ref("test/busybox:v1")],
                                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave)
            os.close(slave)
            slave = None
            chunks = []
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the terminal's last writer is gone
                    break
                if not data:
                    break
                chunks.append(data)
            out, _ = proc.communicate(timeout=PULL_TIMEOUT)
        finally:
            os.close(master)
            if slave is not None:
                os.close(slave)
        err = b"".join(chunks).decode(errors="replace")
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(out.decode().split()[0], self.info.config_digest)
        self.assertIn("\x1b[", err, "a terminal gets lines redrawn in place")
        self.assertIn("done", err)

    def test_pull_with_a_docker_authfile(self):
        store = os.path.join(self.base, "store-authfile")
        auth = base64.b64encode(("alice:" + self.reg.password).encode()).decode()
        authfile = write_json(os.path.join(self.base, "docker-config.json"), {"auths": {self.reg.host: {"auth": auth}}})
        ref = self.ref("test/busybox:v1")
        result = self.cli_pull(store, "--authfile", authfile, "-q", ref)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), self.info.config_digest)
        self.assertEqual(result.stderr, "", "-q prints nothing else")
        listed = podshim("images", "list", "--image-dir", store)
        self.assertIn(ref, listed.stdout)
        # The same file found through DOCKER_CONFIG.
        docker_dir = os.path.join(self.base, "docker-dir")
        os.makedirs(docker_dir, exist_ok=True)
        os.replace(authfile, os.path.join(docker_dir, "config.json"))
        result = self.cli_pull(os.path.join(self.base, "store-docker-config"), "-q", ref,
                               env={"DOCKER_CONFIG": docker_dir})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), self.info.config_digest)

    def test_credentials_from_the_registry_config(self):
        store = os.path.join(self.base, "store-config-creds")
        config = write_json(os.path.join(self.base, "with-creds.json"), {"hosts": {self.reg.host: {
            "ca": [self.reg.ca_file], "username": "alice", "password": self.reg.password}}})
        result = podshim("images", "pull", "--image-dir", store, "--registry-config", config, "-q",
                         self.ref("test/busybox:v1"), env={"DOCKER_CONFIG": os.path.join(self.base, "no-such-dir")})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), self.info.config_digest)

    def test_wrong_creds_fail_without_printing_them(self):
        store = os.path.join(self.base, "store-wrong")
        wrong = "bad-%s" % uuid.uuid4().hex[:8]
        result = self.cli_pull(store, "--creds", "alice:" + wrong, self.ref("test/busybox:v1"),
                               env={"DOCKER_CONFIG": os.path.join(self.base, "no-such-dir")})
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertIn("unauthorized", result.stderr)
        self.assertIn(self.reg.host, result.stderr)
        self.assertNotIn(wrong, result.stderr + result.stdout)
        listed = podshim("images", "list", "--image-dir", store)
        self.assertNotIn("test/busybox", listed.stdout)


if __name__ == "__main__":
    unittest.main()
