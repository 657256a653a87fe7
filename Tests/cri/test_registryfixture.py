"""Self-test of registryfixture: deterministic OCI layouts, and a real docker-registry per auth
mode (open, Basic, Bearer token, storage redirect, plain HTTP) fed by skopeo, checked from the
outside with urllib and the fixture's CA. Needs no podshim daemon and no grpc."""

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import socket
import subprocess
import tarfile
import tempfile
import unittest
import urllib.parse

import registryfixture as rf

_TOOLS = {"docker-registry": rf.REGISTRY_BIN, "skopeo": rf.SKOPEO_BIN,
          "htpasswd": rf.HTPASSWD_BIN, "openssl": rf.OPENSSL_BIN}
_BUILD_TOOLS = {"zstd": rf.ZSTD_BIN, "busybox": rf.BUSYBOX_BIN}


def _missing(tools):
    return ["%s (%s)" % (name, path) for name, path in tools.items() if not os.access(path, os.X_OK)]


MISSING_BUILD = _missing(_BUILD_TOOLS)
MISSING = MISSING_BUILD + _missing(_TOOLS)
SKIP_REASON = ("registry fixture needs docker-registry, skopeo, apache2-utils, openssl, zstd and "
               "busybox-static; missing: %s" % ", ".join(MISSING))
needs_registry = unittest.skipIf(MISSING, SKIP_REASON)
needs_build_tools = unittest.skipIf(MISSING_BUILD, "layout builder needs zstd and busybox-static; "
                                    "missing: %s" % ", ".join(MISSING_BUILD))

REPO = "test/busybox"
TAG = "v1"

_layout = {}


def shared_layout():
    """One layout for the whole module: a 2-layer image (gzip base with a hardlink, zstd top
    with a whiteout, an opaque dir and a char device) under TAG, and a multi-arch index."""
    if not _layout:
        tmp = tempfile.mkdtemp(prefix="podshim-layout-")
        path = os.path.join(tmp, "layout")
        base = rf.busybox_layer_entries() + [
            rf.file_entry("etc/motd", "hello\n"),
            rf.hardlink_entry("etc/motd.link", "etc/motd"),
            rf.dir_entry("opt"), rf.file_entry("opt/old", "old\n"),
            rf.file_entry("etc/doomed", "bye\n", mode=0o600, uid=1000, gid=1000),
        ]
        top = [rf.whiteout_entry("etc/doomed"), rf.dir_entry("opt"), rf.opaque_entry("opt"),
               rf.file_entry("opt/new", "new\n", xattrs={"user.podshim": "yes"}),
               rf.chardev_entry("dev/null", 1, 3), rf.symlink_entry("etc/link", "/etc/motd")]
        image = rf.Image([rf.Layer(base, "gzip"), rf.Layer(rf.add_parent_dirs(top), "zstd")],
                         config={"Entrypoint": ["/bin/sh", "-c"], "Cmd": ["echo hi"],
                                 "Env": [rf.DEFAULT_PATH_ENV], "User": "1000:1000",
                                 "WorkingDir": "/home/app"})
        _layout.update(tmp=tmp, path=path, image=rf.build_layout(path, {TAG: image})[TAG],
                       multi=rf.build_multiarch_layout(path, "multi"))
    return _layout


def tearDownModule():
    if _layout:
        shutil.rmtree(_layout["tmp"], ignore_errors=True)


def layer_tar(layout, info, i):
    """The uncompressed tar of layer i."""
    blob = rf.read_blob(layout, info.layer_digests[i])
    if info.layer_media_types[i].endswith("+gzip"):
        return gzip.decompress(blob)
    if info.layer_media_types[i].endswith("+zstd"):
        return subprocess.run([rf.ZSTD_BIN, "-d", "-c", "-q"], input=blob, check=True,
                              capture_output=True).stdout
    return blob


def members(tar):
    with tarfile.open(fileobj=io.BytesIO(tar)) as tf:
        return {m.name.rstrip("/"): m for m in tf.getmembers()}


def basic(user=rf.USERNAME, password=rf.PASSWORD):
    return "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()


def jwt_part(token, i):
    part = token.split(".")[i]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def get(reg, path, headers=None):
    """GET on the registry with urllib and the fixture CA, no automatic auth."""
    return rf.http_request("GET", reg.url + path, headers=headers, cafile=reg.ca_file)


def port_open(port):
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().decode(errors="replace").split("\0")
    except OSError:
        return []


def listening_addresses(pid):
    """(ip hex, port) of the TCP sockets `pid` listens on, from /proc."""
    inodes = set()
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            target = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        with open("/proc/%d/net/%s" % (pid, table)) as f:
            next(f)
            for line in f:
                fields = line.split()
                ip, port = fields[1].split(":")
                if fields[3] == "0A" and fields[9] in inodes:
                    found.append((ip, int(port, 16)))
    return found


# ---------------------------------------------------------------------------

@needs_build_tools
class LayoutBuilderTest(unittest.TestCase):

    def test_layout_files_and_index(self):
        lay = shared_layout()
        with open(os.path.join(lay["path"], "oci-layout")) as f:
            self.assertEqual(json.load(f), {"imageLayoutVersion": "1.0.0"})
        with open(os.path.join(lay["path"], "index.json")) as f:
            index = json.load(f)
        refs = {m["annotations"][rf.ANNOTATION_REF_NAME]: m for m in index["manifests"]}
        self.assertEqual(refs[TAG]["digest"], lay["image"].manifest_digest)
        self.assertEqual(refs[TAG]["mediaType"], rf.MT_OCI_MANIFEST)
        self.assertEqual(refs["multi"]["mediaType"], rf.MT_OCI_INDEX)
        for name in os.listdir(os.path.join(lay["path"], "blobs", "sha256")):
            data = rf.read_blob(lay["path"], "sha256:" + name)
            self.assertEqual(hashlib.sha256(data).hexdigest(), name)

    def test_digests_diff_ids_and_chain_ids(self):
        lay = shared_layout()
        info = lay["image"]
        manifest, config = info.manifest, info.config
        self.assertEqual(manifest["config"]["digest"], info.config_digest)
        self.assertEqual([l["digest"] for l in manifest["layers"]], info.layer_digests)
        self.assertEqual([l["mediaType"] for l in manifest["layers"]],
                         [rf.MT_OCI_LAYER_GZIP, rf.MT_OCI_LAYER_ZSTD])
        diff_ids = [rf.sha256_digest(layer_tar(lay["path"], info, i)) for i in range(2)]
        self.assertEqual(config["rootfs"], {"type": "layers", "diff_ids": diff_ids})
        self.assertEqual(info.chain_ids[0], diff_ids[0])
        self.assertEqual(info.chain_ids[1], "sha256:" + hashlib.sha256(
            ("%s %s" % (diff_ids[0], diff_ids[1])).encode()).hexdigest())
        self.assertEqual(config["architecture"], rf.host_arch())
        self.assertEqual(config["os"], "linux")
        self.assertEqual(config["config"]["User"], "1000:1000")
        self.assertEqual(config["config"]["Entrypoint"], ["/bin/sh", "-c"])
        blob = rf.read_blob(lay["path"], info.layer_digests[1])
        self.assertEqual(blob[:4], b"\x28\xb5\x2f\xfd")  # zstd magic

    def test_layer_entries(self):
        lay = shared_layout()
        base = members(layer_tar(lay["path"], lay["image"], 0))
        top = members(layer_tar(lay["path"], lay["image"], 1))
        self.assertTrue(base["bin/busybox"].isreg())
        self.assertEqual(base["bin/busybox"].mode, 0o755)
        for applet in ("sh", "sleep", "cat", "echo", "ls"):
            self.assertEqual((base["bin/" + applet].type, base["bin/" + applet].linkname),
                             (tarfile.SYMTYPE, "busybox"))
        self.assertEqual((base["etc/motd.link"].type, base["etc/motd.link"].linkname),
                         (tarfile.LNKTYPE, "etc/motd"))
        self.assertEqual((base["etc/doomed"].uid, base["etc/doomed"].mode), (1000, 0o600))
        self.assertEqual(base["tmp"].mode, 0o1777)
        with tarfile.open(fileobj=io.BytesIO(layer_tar(lay["path"], lay["image"], 0))) as tf:
            self.assertIn(b"app:x:1000:1000:", tf.extractfile("etc/passwd").read())
        self.assertEqual((top["etc/.wh.doomed"].size, top["etc/.wh.doomed"].mode), (0, 0))
        self.assertIn("opt/.wh..wh..opq", top)
        self.assertEqual((top["dev/null"].type, top["dev/null"].devmajor, top["dev/null"].devminor),
                         (tarfile.CHRTYPE, 1, 3))
        self.assertEqual(top["opt/new"].pax_headers.get("SCHILY.xattr.user.podshim"), "yes")
        self.assertLess(list(top).index("dev"), list(top).index("dev/null"))

    def test_builds_are_reproducible(self):
        with tempfile.TemporaryDirectory() as tmp:
            entries = [rf.dir_entry("a"), rf.file_entry("a/b", "x")]
            one = rf.build_layout(os.path.join(tmp, "1"), {"t": [rf.Layer(entries, "zstd"), entries]})
            two = rf.build_layout(os.path.join(tmp, "2"), {"t": [rf.Layer(entries, "zstd"), entries]})
            self.assertEqual(one["t"].manifest_digest, two["t"].manifest_digest)
            hostile = rf.Image([rf.Layer([rf.file_entry("../escape", "x"),
                                          rf.Entry("file", "/abs", b"y")], "none")])
            info = rf.build_layout(os.path.join(tmp, "3"), {"h": hostile})["h"]
            names = list(members(rf.read_blob(os.path.join(tmp, "3"), info.layer_digests[0])))
            self.assertEqual(names, ["../escape", "/abs"])

    def test_multiarch_index(self):
        lay = shared_layout()
        multi = lay["multi"]
        index = json.loads(multi.index_bytes)
        platforms = [(m["platform"]["os"], m["platform"]["architecture"]) for m in index["manifests"]]
        self.assertEqual(platforms, [("linux", "amd64"), ("linux", "arm64"), ("unknown", "unknown")])
        att = index["manifests"][2]
        self.assertEqual(att["annotations"]["vnd.docker.reference.type"], "attestation-manifest")
        self.assertEqual(att["annotations"]["vnd.docker.reference.digest"],
                         multi.images[multi.marked_platform].manifest_digest)
        for name, info in multi.images.items():
            files = set()
            for i in range(len(info.layer_digests)):
                files |= set(members(layer_tar(lay["path"], info, i)))
            self.assertEqual(multi.marker_path in files, name == multi.marked_platform, name)
            self.assertEqual(info.config["architecture"], name.split("/")[1])
        # The base layer is shared between the platforms.
        self.assertEqual(multi.images["linux/amd64"].layer_digests[0],
                         multi.images["linux/arm64"].layer_digests[0])


class StandaloneServersTest(unittest.TestCase):

    def test_storage_server_range_modes(self):
        with tempfile.TemporaryDirectory() as root:
            with open(os.path.join(root, "f"), "wb") as f:
                f.write(b"0123456789")
            for ignore, want in ((True, (200, b"0123456789")), (False, (206, b"456789"))):
                server = rf.StorageServer(root, ignore_range=ignore).start()
                try:
                    url = "http://127.0.0.1:%d/f" % server.port
                    resp = rf.http_request("GET", url, headers={"Range": "bytes=4-"})
                    self.assertEqual((resp.status, resp.body), want)
                    resp = rf.http_request("GET", "http://127.0.0.1:%d/../../etc/passwd" % server.port)
                    self.assertEqual(resp.status, 404)
                    self.assertEqual(server.requests[0]["headers"].get("Range"), "bytes=4-")
                finally:
                    server.stop()
                self.assertFalse(port_open(server.port))

    @unittest.skipIf(_missing({"openssl": rf.OPENSSL_BIN}), "needs openssl")
    def test_token_reply_shapes(self):
        with tempfile.TemporaryDirectory() as tmp:
            pki = rf.TestPKI(tmp)
            key, cert = pki.issue("signer", key_type="rsa")
            for token_as, fields in (("token", {"token"}), ("access_token", {"access_token"}),
                                     ("both", {"token", "access_token"})):
                server = rf.TokenServer(key, cert, token_as=token_as).start()
                try:
                    query = urllib.parse.urlencode([("service", rf.TOKEN_SERVICE),
                                                    ("scope", "repository:a/b:pull,push"),
                                                    ("scope", "repository:public/c:pull")])
                    resp = rf.http_request("GET", server.realm + "?" + query,
                                           headers={"Authorization": basic()})
                    reply = resp.json()
                    self.assertEqual(resp.status, 200)
                    self.assertEqual(fields & set(reply), fields)
                    self.assertFalse({"token", "access_token"} - fields & set(reply))
                    self.assertEqual(reply["expires_in"], 300)
                    claims = jwt_part(reply[next(iter(fields))], 1)
                    self.assertEqual(claims["access"], [
                        {"type": "repository", "name": "a/b", "actions": ["pull", "push"]},
                        {"type": "repository", "name": "public/c", "actions": ["pull"]}])
                    # Anonymous: public/ only, pull only.
                    anon = rf.http_request("GET", server.realm + "?" + query).json()
                    self.assertEqual(jwt_part(anon[next(iter(fields))], 1)["access"],
                                     [{"type": "repository", "name": "public/c", "actions": ["pull"]}])
                    bad = rf.http_request("GET", server.realm + "?" + query,
                                          headers={"Authorization": basic(password="nope")})
                    self.assertEqual(bad.status, 401)
                    post = rf.http_request("POST", server.realm, body=b"grant_type=password")
                    self.assertEqual(post.status, 405)
                    self.assertEqual([(r["method"], r["basic"], r["user"], r["status"])
                                      for r in server.requests],
                                     [("GET", True, "alice", 200), ("GET", False, None, 200),
                                      ("GET", True, None, 401), ("POST", False, None, 405)])
                finally:
                    server.stop()


# ---------------------------------------------------------------------------

class _RegistryCase(unittest.TestCase):
    """Starts one registry per class with `options` and pushes the shared image to REPO:TAG."""

    options = {}

    @classmethod
    def setUpClass(cls):
        cls.lay = shared_layout()
        cls.reg = rf.TestRegistry(**cls.options).start()
        try:
            cls.pushed = rf.push(cls.reg, cls.lay["path"], TAG, "%s:%s" % (REPO, TAG))
        except BaseException:
            cls.reg.stop()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.reg.stop()

    def assert_manifest_ok(self, resp):
        info = self.lay["image"]
        self.assertEqual(resp.status, 200, resp.body[:300])
        self.assertEqual(resp.header("Content-Type"), rf.MT_OCI_MANIFEST)
        self.assertEqual(resp.header("Docker-Content-Digest"), rf.sha256_digest(resp.body))
        self.assertEqual(resp.header("Docker-Content-Digest"), info.manifest_digest)
        self.assertEqual(resp.body, info.manifest_bytes)


@needs_registry
class OpenRegistryTest(_RegistryCase):
    options = {}

    def test_ping_and_pull_without_credentials(self):
        self.assertEqual(self.pushed, self.lay["image"].manifest_digest)
        self.assertEqual(get(self.reg, "/v2/").status, 200)
        self.assert_manifest_ok(get(self.reg, "/v2/%s/manifests/%s" % (REPO, TAG),
                                    {"Accept": rf.MT_OCI_MANIFEST}))

    def test_registry_listens_on_loopback_only(self):
        addrs = listening_addresses(self.reg.process.pid)
        self.assertEqual(addrs, [("0100007F", self.reg.port)])

    def test_tampered_blob_is_served_as_is(self):
        info = self.lay["image"]
        rf.push(self.reg, self.lay["path"], TAG, "test/tamper:v1")
        tampered = self.reg.tamper_blob(info.config_digest)
        resp = get(self.reg, "/v2/test/tamper/blobs/" + info.config_digest)
        self.assertEqual(resp.status, 200)
        self.assertEqual(resp.body, tampered)
        self.assertNotEqual(rf.sha256_digest(resp.body), info.config_digest)


@needs_registry
class BasicAuthTest(_RegistryCase):
    options = {"auth": "basic", "schema1": True}

    def test_ping_challenges_with_basic(self):
        resp = get(self.reg, "/v2/")
        self.assertEqual(resp.status, 401)
        self.assertEqual(resp.header("WWW-Authenticate"), 'Basic realm="podshim-test"')
        self.assertEqual(get(self.reg, "/v2/", {"Authorization": basic()}).status, 200)
        self.assertEqual(get(self.reg, "/v2/", {"Authorization": basic(password="x")}).status, 401)

    def test_manifest_with_basic_auth(self):
        self.assert_manifest_ok(get(self.reg, "/v2/%s/manifests/%s" % (REPO, TAG),
                                    {"Accept": rf.MT_OCI_MANIFEST, "Authorization": basic()}))
        # Without the OCI type in Accept, registry 2.8 pretends not to know it.
        resp = get(self.reg, "/v2/%s/manifests/%s" % (REPO, TAG),
                   {"Accept": rf.MT_DOCKER_MANIFEST, "Authorization": basic()})
        self.assertEqual(resp.status, 404)

    def test_layer_blobs_match_their_digests(self):
        info = self.lay["image"]
        for digest in info.layer_digests + [info.config_digest]:
            resp = get(self.reg, "/v2/%s/blobs/%s" % (REPO, digest), {"Authorization": basic()})
            self.assertEqual(resp.status, 200)
            self.assertEqual(rf.sha256_digest(resp.body), digest)

    def test_multiarch_push_keeps_the_index(self):
        multi = self.lay["multi"]
        digest = rf.push(self.reg, self.lay["path"], "multi", "test/multi:v1", all=True)
        self.assertEqual(digest, multi.index_digest)
        resp = get(self.reg, "/v2/test/multi/manifests/v1",
                   {"Accept": rf.ACCEPT_ALL, "Authorization": basic()})
        self.assertEqual((resp.status, resp.header("Content-Type")), (200, rf.MT_OCI_INDEX))
        self.assertEqual(resp.body, multi.index_bytes)
        for info in list(multi.images.values()) + [multi.attestation]:
            resp = get(self.reg, "/v2/test/multi/manifests/" + info.manifest_digest,
                       {"Accept": rf.ACCEPT_ALL, "Authorization": basic()})
            self.assertEqual(resp.status, 200, info.platform)

    def test_v2s2_push(self):
        info = self.lay["multi"].images["linux/amd64"]
        rf.set_layout_tag(self.lay["path"], "gz", info.descriptor())  # gzip layers only
        digest = rf.push(self.reg, self.lay["path"], "gz", "test/docker:v1", fmt="v2s2")
        resp = get(self.reg, "/v2/test/docker/manifests/v1",
                   {"Accept": rf.ACCEPT_ALL, "Authorization": basic()})
        self.assertEqual(resp.header("Content-Type"), rf.MT_DOCKER_MANIFEST)
        self.assertEqual(resp.header("Docker-Content-Digest"), digest)
        manifest = resp.json()
        self.assertEqual(manifest["config"]["digest"], info.config_digest)
        self.assertEqual([l["digest"] for l in manifest["layers"]], info.layer_digests)
        self.assertEqual({l["mediaType"] for l in manifest["layers"]}, {rf.MT_DOCKER_LAYER_GZIP})

    def test_raw_uploads_for_hostile_content(self):
        # A hostile tar pushed byte for byte.
        with tempfile.TemporaryDirectory() as tmp:
            rf.init_layout(tmp)
            info = rf.build_image(tmp, rf.Image([rf.Layer([rf.file_entry("../escape", "x")])]))
            digest = rf.push_raw(self.reg, tmp, info, "test/hostile", "escape")
        self.assertEqual(digest, info.manifest_digest)
        # A manifest PUT under a digest that is not its own is refused.
        resp = rf.put_raw_manifest(self.reg, "test/hostile", "sha256:" + "0" * 64,
                                   info.manifest_bytes, rf.MT_OCI_MANIFEST, check=False)
        self.assertEqual(resp.status, 400)
        # A blob uploaded under a wrong digest is refused.
        resp = rf.put_blob(self.reg, "test/hostile", b"abc", digest="sha256:" + "1" * 64, check=False)
        self.assertEqual(resp.status, 400)
        # A signed schema1 manifest is accepted and served with its media type.
        layer = rf.put_blob(self.reg, "test/schema1", b"not really a layer")
        body = rf.schema1_manifest("test/schema1", "old", [layer])
        rf.put_raw_manifest(self.reg, "test/schema1", "old", body, rf.MT_DOCKER_SCHEMA1_SIGNED)
        resp = get(self.reg, "/v2/test/schema1/manifests/old",
                   {"Accept": rf.MT_DOCKER_SCHEMA1_SIGNED, "Authorization": basic()})
        self.assertEqual((resp.status, resp.header("Content-Type")),
                         (200, rf.MT_DOCKER_SCHEMA1_SIGNED))


@needs_registry
class TokenAuthTest(_RegistryCase):
    options = {"auth": "token"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        rf.push(cls.reg, cls.lay["path"], TAG, "public/busybox:" + TAG)

    def setUp(self):
        self.reg.reset_records()

    def manifest(self, repo, token=None):
        headers = {"Accept": rf.MT_OCI_MANIFEST}
        if token:
            headers["Authorization"] = "Bearer " + token
        return get(self.reg, "/v2/%s/manifests/%s" % (repo, TAG), headers)

    def test_ping_challenges_with_bearer(self):
        resp = get(self.reg, "/v2/")
        self.assertEqual(resp.status, 401)
        self.assertEqual(resp.header("WWW-Authenticate"), 'Bearer realm="%s",service="test-registry"'
                         % self.reg.token_server.realm)
        scheme, params = rf.parse_challenge(self.manifest(REPO).header("WWW-Authenticate"))
        self.assertEqual((scheme, params["scope"]), ("bearer", "repository:%s:pull" % REPO))

    def test_token_from_realm_pulls(self):
        resp = self.reg.fetch_token(["repository:%s:pull" % REPO])
        self.assertEqual(resp.status, 200)
        reply = resp.json()
        self.assertEqual(reply["token"], reply["access_token"])
        self.assert_manifest_ok(self.manifest(REPO, reply["token"]))
        header, claims = jwt_part(reply["token"], 0), jwt_part(reply["token"], 1)
        self.assertEqual(header["alg"], "RS256")
        self.assertEqual(header["x5c"], [rf.pem_to_der_b64(self.reg._token_cert)])
        self.assertEqual((claims["iss"], claims["aud"], claims["sub"]),
                         (rf.TOKEN_ISSUER, rf.TOKEN_SERVICE, rf.USERNAME))
        self.assertTrue(claims["nbf"] <= claims["iat"] < claims["exp"])
        [req] = self.reg.token_requests
        self.assertEqual((req["basic"], req["user"], req["query"]["service"]),
                         (True, rf.USERNAME, [rf.TOKEN_SERVICE]))

    def test_anonymous_tokens_only_pull_public(self):
        anon = self.reg.fetch_token(["repository:%s:pull" % REPO], anonymous=True).json()["token"]
        resp = self.manifest(REPO, anon)
        self.assertEqual(resp.status, 401)
        self.assertIn('error="insufficient_scope"', resp.header("WWW-Authenticate"))
        anon = self.reg.fetch_token(["repository:public/busybox:pull"], anonymous=True).json()["token"]
        self.assert_manifest_ok(self.manifest("public/busybox", anon))
        self.assertEqual([r["basic"] for r in self.reg.token_requests], [False, False])

    def test_wrong_password_and_foreign_tokens_are_refused(self):
        resp = self.reg.fetch_token(["repository:%s:pull" % REPO], password="wrong")
        self.assertEqual(resp.status, 401)
        # Expired, or signed by a cert outside the rootcertbundle: the registry says no.
        access = [{"type": "repository", "name": REPO, "actions": ["pull"]}]
        expired = self.reg.token_server.issue_token("alice", access, expires_in=-120)
        self.assertEqual(self.manifest(REPO, expired).status, 401)
        with tempfile.TemporaryDirectory() as tmp:
            key, cert = rf.TestPKI(tmp).issue("other", key_type="rsa")
            foreign = rf.TokenServer(key, cert).issue_token("alice", access)
        self.assertEqual(self.manifest(REPO, foreign).status, 401)
        self.assert_manifest_ok(self.manifest(
            REPO, self.reg.token_server.issue_token("alice", access)))


@needs_registry
class RedirectTest(_RegistryCase):
    options = {"auth": "basic", "redirect": True}

    def test_blob_redirects_to_storage_without_credentials(self):
        digest = self.lay["image"].layer_digests[0]
        self.reg.reset_records()
        resp = get(self.reg, "/v2/%s/blobs/%s" % (REPO, digest), {"Authorization": basic()})
        self.assertEqual(resp.status, 307)
        self.assertEqual(resp.header("Content-Length"), "0")
        location = urllib.parse.urlsplit(resp.header("Location"))
        self.assertEqual((location.scheme, location.hostname, location.port),
                         ("http", "localhost", self.reg.storage_server.port))
        # Followed like a careful client: no Authorization to the other host; Range ignored.
        data = rf.http_request("GET", resp.header("Location"), headers={"Range": "bytes=100-"})
        self.assertEqual(data.status, 200)
        self.assertEqual(rf.sha256_digest(data.body), digest)
        [req] = self.reg.redirect_requests
        self.assertNotIn("authorization", {k.lower() for k in req["headers"]})
        self.assertEqual(req["path"], location.path)

    def test_manifests_are_not_redirected(self):
        self.assert_manifest_ok(get(self.reg, "/v2/%s/manifests/%s" % (REPO, TAG),
                                    {"Accept": rf.MT_OCI_MANIFEST, "Authorization": basic()}))


@needs_registry
class PlainHttpTest(_RegistryCase):
    options = {"tls": False, "auth": "basic"}

    def test_plain_http(self):
        self.assertTrue(self.reg.url.startswith("http://127.0.0.1:"))
        self.assertEqual(get(self.reg, "/v2/").status, 401)
        self.assert_manifest_ok(get(self.reg, "/v2/%s/manifests/%s" % (REPO, TAG),
                                    {"Accept": rf.MT_OCI_MANIFEST, "Authorization": basic()}))


@needs_registry
class LifecycleTest(unittest.TestCase):

    def test_stop_ends_the_process_and_removes_everything(self):
        reg = rf.TestRegistry(auth="token", redirect=True)
        with reg:
            tmpdir, pid, config = reg.tmpdir, reg.process.pid, reg.config_path
            ports = [reg.port, reg.token_server.port, reg.storage_server.port]
            self.assertTrue(all(port_open(p) for p in ports))
            self.assertEqual(sorted(os.listdir(reg.cert_dir)), ["ca.crt"])
            self.assertIn(config, cmdline(pid))
        self.assertIsNotNone(reg.process.returncode)
        self.assertNotIn(config, cmdline(pid))
        self.assertFalse(os.path.exists(tmpdir))
        self.assertFalse(any(port_open(p) for p in ports))
        reg.stop()  # idempotent

    def test_context_manager_cleans_up_after_an_exception(self):
        with self.assertRaises(ZeroDivisionError):
            with rf.TestRegistry() as reg:
                tmpdir = reg.tmpdir
                1 / 0
        self.assertIsNotNone(reg.process.returncode)
        self.assertFalse(os.path.exists(tmpdir))

    def test_failed_start_reports_the_log_and_cleans_up(self):
        with tempfile.TemporaryDirectory() as tmp:
            seen = os.path.join(tmp, "cwd")
            for name, script, timeout, want in (
                    ("exits", "pwd > %s; echo 'boom: bad config'; exit 3", 20, "exited with status 3"),
                    ("hangs", "pwd > %s; echo 'stuck'; exec sleep 60", 1, "timed out")):
                fake = os.path.join(tmp, name)
                with open(fake, "w") as f:
                    f.write("#!/bin/sh\n" + script % seen + "\n")
                os.chmod(fake, 0o755)
                reg = rf.TestRegistry(registry_bin=fake, ready_timeout=timeout)
                with self.assertRaises(rf.RegistryError) as ctx:
                    reg.start()
                self.assertIn(want, str(ctx.exception))
                self.assertIn("boom" if name == "exits" else "stuck", str(ctx.exception))
                with open(seen) as f:
                    self.assertFalse(os.path.exists(f.read().strip()))
                self.assertIsNotNone(reg.process.returncode)


if __name__ == "__main__":
    unittest.main()
