"""An offline OCI registry fixture for podshim's image-pull tests (Tests/cri/test_*.py).

`TestRegistry` runs Debian's `docker-registry` (distribution 2.8) on a free loopback port with a
private CA, optional Basic or Bearer-token authentication (our own token server) and an optional
storage redirect to a static loopback HTTP server (the recipe of the shared registry.md, §7).
The image helpers write deterministic OCI image layouts in pure Python (tarfile, gzip, the `zstd`
CLI), and `push` copies them into the registry with skopeo; `put_blob` and `put_raw_manifest`
upload exact bytes for hostile cases.

Everything binds 127.0.0.1 only, everything lives in a private temp dir, and `stop()` ends only
the process this fixture started (by its Popen handle) and removes the dir, also on failure:

    with TestRegistry(auth="token") as reg:
        info = build_layout(layout, {"v1": Image([Layer(busybox_layer_entries())])})["v1"]
        push(reg, layout, "v1", "test/busybox:v1")
        reg.request("GET", "/v2/test/busybox/manifests/v1", headers={"Accept": MT_OCI_MANIFEST})

Standard library plus the openssl CLI (certificates and signatures: it works in any Python,
including the grpc venv of hack/test-cri.sh); no podshim daemon and no grpc needed.
"""

import base64
import dataclasses
import datetime
import gzip
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import socket
import socketserver
import ssl
import subprocess
import tarfile
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

REGISTRY_BIN = "/usr/bin/docker-registry"
SKOPEO_BIN = shutil.which("skopeo") or "/usr/bin/skopeo"
HTPASSWD_BIN = shutil.which("htpasswd") or "/usr/bin/htpasswd"
ZSTD_BIN = shutil.which("zstd") or "/usr/bin/zstd"
OPENSSL_BIN = shutil.which("openssl") or "/usr/bin/openssl"
BUSYBOX_BIN = "/bin/busybox"

USERNAME = "alice"
PASSWORD = "s3cret"
BASIC_REALM = "podshim-test"
TOKEN_SERVICE = "test-registry"
TOKEN_ISSUER = "podshim-test-issuer"
PUBLIC_PREFIX = "public/"

MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
MT_OCI_LAYER_GZIP = MT_OCI_LAYER + "+gzip"
MT_OCI_LAYER_ZSTD = MT_OCI_LAYER + "+zstd"
MT_DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_DOCKER_SCHEMA1_SIGNED = "application/vnd.docker.distribution.manifest.v1+prettyjws"
MT_IN_TOTO = "application/vnd.in-toto+json"
# Everything a puller should send in Accept (registry.md section 1).
ACCEPT_ALL = ", ".join([MT_OCI_INDEX, MT_OCI_MANIFEST, MT_DOCKER_LIST, MT_DOCKER_MANIFEST])

ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
# Fixed timestamps keep every blob byte-for-byte reproducible.
MTIME = 1700000000
CREATED = "2023-11-14T22:13:20Z"
DEFAULT_PATH_ENV = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
READY_TIMEOUT = 20.0
STOP_GRACE = 5.0

_GOARCH = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64",
           "armv7l": "arm", "armv6l": "arm", "i686": "386", "i386": "386", "ppc64le": "ppc64le",
           "s390x": "s390x", "riscv64": "riscv64"}


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, then release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_arch():
    """The GOARCH name of this machine (x86_64 -> amd64, aarch64 -> arm64)."""
    machine = os.uname().machine
    return _GOARCH.get(machine, machine)


def sha256_digest(data):
    """`sha256:<hex>` of bytes."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def chain_ids(diff_ids):
    """ChainIDs per image-spec config.md: ChainID(L0) = DiffID(L0), then
    ChainID(L0..Ln) = sha256 of "ChainID(L0..Ln-1) DiffID(Ln)"."""
    out = []
    for diff_id in diff_ids:
        out.append(diff_id if not out else sha256_digest(("%s %s" % (out[-1], diff_id)).encode()))
    return out


def canonical_json(obj):
    """Compact, key-sorted JSON bytes: the same document always hashes the same."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _clean_env(drop_prefixes=("REGISTRY_",)):
    """This process's environment without proxies (loopback only) and without variables that
    would override the registry's config.yml."""
    env = {}
    for key, value in os.environ.items():
        if key.lower() in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
            continue
        if any(key.startswith(p) for p in drop_prefixes):
            continue
        env[key] = value
    return env


# ---------------------------------------------------------------------------
# Certificates
# ---------------------------------------------------------------------------

def openssl(*args, input=None):
    """Run the openssl CLI; returns stdout bytes, raises RuntimeError with its stderr."""
    out = subprocess.run([OPENSSL_BIN] + list(args), input=input, capture_output=True,
                         timeout=60)
    if out.returncode != 0:
        raise RuntimeError("openssl %s failed: %s"
                           % (" ".join(args[:2]), out.stderr.decode(errors="replace").strip()))
    return out.stdout


def pem_to_der_b64(pem_path):
    """The standard base64 of the first certificate's DER in a PEM file (what `x5c` holds)."""
    with open(pem_path) as f:
        text = f.read()
    body = text.split("-----BEGIN CERTIFICATE-----", 1)[1].split("-----END CERTIFICATE-----", 1)[0]
    return "".join(body.split())


def _der_ecdsa_to_raw(der, size=32):
    """ECDSA-Sig-Value (SEQUENCE of INTEGER r, s; short-form lengths, as for P-256) -> r||s."""
    if der[0] != 0x30:
        raise ValueError("not a DER ECDSA signature")
    pos = 2 if der[1] < 0x80 else 2 + (der[1] & 0x7F)
    out = b""
    for _ in range(2):
        if der[pos] != 0x02:
            raise ValueError("not a DER ECDSA signature")
        length = der[pos + 1]
        out += int.from_bytes(der[pos + 2:pos + 2 + length], "big").to_bytes(size, "big")
        pos += 2 + length
    return out


_KEYGEN = {"ec": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
           "rsa": ["-newkey", "rsa:2048"]}


class TestPKI:
    """A throwaway CA in `directory` plus leaf certificates signed by it, valid for two days
    (openssl CLI, SHA-256). Keys are ECDSA P-256 (fast) or RSA 2048 (`key_type="rsa"`, about
    0.2 s each; needed for RS256 tokens). Paths: ca_key, ca_cert (PEM).

    issue(name, server=True) adds SAN IP:127.0.0.1 and DNS:localhost (skopeo refuses
    CN-only certs) and serverAuth; without `server` the leaf is a signing cert (for example
    the token signer whose DER goes into a JWT's `x5c`)."""

    __test__ = False

    def __init__(self, directory, common_name="podshim test CA", key_type="ec"):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.ca_key = os.path.join(directory, "ca.key")
        self.ca_cert = os.path.join(directory, "ca.pem")
        openssl("req", "-x509", *_KEYGEN[key_type], "-nodes", "-sha256", "-days", "2",
                "-keyout", self.ca_key, "-out", self.ca_cert, "-subj", "/CN=" + common_name,
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
                "-addext", "subjectKeyIdentifier=hash")

    def issue(self, name, common_name=None, server=False, key_type="ec"):
        """(key path, cert path) of a new leaf `<name>.key` / `<name>.pem`."""
        key = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        cert = os.path.join(self.dir, name + ".pem")
        ext = os.path.join(self.dir, name + ".ext")
        openssl("req", "-new", *_KEYGEN[key_type], "-nodes", "-keyout", key, "-out", csr,
                "-subj", "/CN=" + (common_name or name))
        lines = ["basicConstraints=critical,CA:FALSE", "subjectKeyIdentifier=hash",
                 "authorityKeyIdentifier=keyid"]
        if server:
            usage = "digitalSignature,keyEncipherment" if key_type == "rsa" else "digitalSignature"
            lines += ["keyUsage=critical," + usage,
                      "extendedKeyUsage=serverAuth",
                      "subjectAltName=IP:127.0.0.1,DNS:localhost"]
        else:
            lines += ["keyUsage=critical,digitalSignature"]
        with open(ext, "w") as f:
            f.write("\n".join(lines) + "\n")
        openssl("x509", "-req", "-in", csr, "-CA", self.ca_cert, "-CAkey", self.ca_key,
                "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
                "-sha256", "-extfile", ext, "-out", cert)
        os.unlink(csr)
        return key, cert


# ---------------------------------------------------------------------------
# Small HTTP plumbing (urllib, never following redirects, never using a proxy)
# ---------------------------------------------------------------------------

class Response:
    """Status, headers (case-insensitive `header()`), body bytes and final url of one request."""

    def __init__(self, status, headers, body, url):
        self.status = status
        self.headers = headers
        self.body = body
        self.url = url

    def header(self, name, default=None):
        return self.headers.get(name, default) if self.headers is not None else default

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return "<Response %d %s>" % (self.status, self.url)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # let the 3xx surface as a Response


def http_request(method, url, body=None, headers=None, cafile=None, timeout=30):
    """One HTTP(S) request with urllib: no proxy, no redirect following, TLS verified against
    `cafile` (the system store when None). Returns a Response for every status; raises only on
    transport errors (URLError, OSError)."""
    handlers = [urllib.request.ProxyHandler({}), _NoRedirect()]
    if url.startswith("https:"):
        ctx = ssl.create_default_context(cafile=cafile)
        handlers.append(urllib.request.HTTPSHandler(context=ctx))
    opener = urllib.request.build_opener(*handlers)
    req = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with opener.open(req, timeout=timeout) as resp:
            return Response(resp.status, resp.headers, resp.read(), url)
    except urllib.error.HTTPError as err:
        try:
            data = err.read()
        finally:
            err.close()
        return Response(err.code, err.headers, data, url)


def parse_challenge(value):
    """`Bearer realm="..",service="..",scope=".."` -> ("bearer", {"realm": .., ...})."""
    scheme, _, rest = (value or "").strip().partition(" ")
    params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
    return scheme.lower(), params


class _LoopbackHTTPServer(http.server.ThreadingHTTPServer):
    """A threading HTTP server on 127.0.0.1:0 that skips the reverse-DNS lookup of HTTPServer."""

    daemon_threads = True
    allow_reuse_address = False

    def __init__(self, handler_cls):
        super().__init__(("127.0.0.1", 0), handler_cls)

    def server_bind(self):
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]


class _QuietHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # idle keep-alive connections end on their own

    def log_message(self, fmt, *args):
        pass

    def send_body(self, status, body, content_type="application/json", extra=()):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


class _ThreadedServer:
    """Owns one _LoopbackHTTPServer and its serve_forever thread."""

    handler_cls = None

    def __init__(self):
        self._server = None
        self._thread = None
        self.port = None

    def start(self):
        handler = type("Handler", (self.handler_cls,), {"owner": self})
        self._server = _LoopbackHTTPServer(handler)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None


# ---------------------------------------------------------------------------
# Token server (distribution docs/spec/auth/token.md)
# ---------------------------------------------------------------------------

class _TokenHandler(_QuietHandler):
    owner = None

    def do_GET(self):
        self.owner._handle(self)

    def do_POST(self):
        # OAuth2 POST (oauth.md) is not implemented: clients fall back to GET on 405.
        self.owner._record(self, {}, False, None, 405, [])
        self.send_body(405, b'{"error":"unsupported"}', extra=[("Allow", "GET")])


class TokenServer(_ThreadedServer):
    """A distribution token server at http://127.0.0.1:PORT/token.

    GET ?service=..&scope=repository:<name>:<actions> (scope repeatable or space-separated),
    optional Basic auth. Anonymous callers get `pull` on repositories under `public/` only;
    a known user with the right password gets what was asked of pull and push; a wrong
    password or unknown user gets 401. Tokens are RS256 JWTs whose `x5c` header holds the
    signing cert (signed by the fixture CA, the registry's `rootcertbundle`).

    `token_as` picks the reply fields: "both" (token and access_token), "token" or
    "access_token". `requests` records every call as a dict: method, path, query (name ->
    list of values), basic (whether Basic auth was presented), user (only when the password
    was right), status and the granted access.
    """

    handler_cls = _TokenHandler

    def __init__(self, signing_key, signing_cert, users=None, service=TOKEN_SERVICE,
                 issuer=TOKEN_ISSUER, token_as="both", expires_in=300, public_prefix=PUBLIC_PREFIX):
        super().__init__()
        if token_as not in ("both", "token", "access_token"):
            raise ValueError("token_as must be 'both', 'token' or 'access_token'")
        self.signing_key = signing_key  # PEM path of an RSA key
        self.signing_cert = signing_cert  # PEM path of its cert, chained to the rootcertbundle
        self._x5c = [pem_to_der_b64(signing_cert)]
        self.users = dict(users if users is not None else {USERNAME: PASSWORD})
        self.service = service
        self.issuer = issuer
        self.token_as = token_as
        self.expires_in = expires_in
        self.public_prefix = public_prefix
        self.requests = []

    @property
    def realm(self):
        return "http://127.0.0.1:%d/token" % self.port

    def grant(self, user, scopes):
        """The `access` claim for `user` (None = anonymous) asking for `scopes`."""
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind != "repository" or not name:
                continue
            asked = [a for a in actions.split(",") if a]
            if user is not None:
                allowed = [a for a in asked if a in ("pull", "push")]
            elif name.startswith(self.public_prefix):
                allowed = [a for a in asked if a == "pull"]
            else:
                allowed = []
            if allowed:
                access.append({"type": "repository", "name": name, "actions": allowed})
        return access

    def issue_token(self, subject="", access=(), audience=None, expires_in=None, now=None,
                    issuer=None):
        """A signed JWT; tests may call it to craft expired or foreign-issuer tokens."""
        now = int(time.time() if now is None else now)
        ttl = self.expires_in if expires_in is None else expires_in
        header = {"typ": "JWT", "alg": "RS256", "x5c": self._x5c}
        claims = {"iss": issuer or self.issuer, "sub": subject or "",
                  "aud": audience or self.service, "exp": now + ttl, "nbf": now - 1, "iat": now,
                  "jti": uuid.uuid4().hex, "access": list(access)}
        signing_input = ("%s.%s" % (_b64url(canonical_json(header)),
                                    _b64url(canonical_json(claims)))).encode()
        signature = openssl("dgst", "-sha256", "-sign", self.signing_key, input=signing_input)
        return signing_input.decode() + "." + _b64url(signature)

    def _record(self, handler, query, basic, user, status, access):
        self.requests.append({"method": handler.command, "path": handler.path, "query": query,
                              "basic": basic, "user": user, "status": status,
                              "access": access})

    def _handle(self, handler):
        url = urllib.parse.urlsplit(handler.path)
        query = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if url.path != "/token":
            self._record(handler, query, False, None, 404, [])
            handler.send_body(404, b'{"error":"not found"}')
            return
        user, basic = None, False
        auth = handler.headers.get("Authorization")
        if auth:
            scheme, _, cred = auth.partition(" ")
            basic = scheme.lower() == "basic"
            name = password = None
            if basic:
                try:
                    name, _, password = base64.b64decode(cred.strip()).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    pass
            if name is None or self.users.get(name) != password:
                self._record(handler, query, basic, None, 401, [])
                handler.send_body(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}',
                                  extra=[("WWW-Authenticate", 'Basic realm="%s"' % BASIC_REALM)])
                return
            user = name
        service = query.get("service", [""])[0]
        if not service:
            self._record(handler, query, basic, user, 400, [])
            handler.send_body(400, b'{"error":"service required"}')
            return
        scopes = [s for value in query.get("scope", []) for s in value.split()]
        access = self.grant(user, scopes)
        token = self.issue_token(subject=user or "", access=access, audience=service)
        reply = {"expires_in": self.expires_in,
                 "issued_at": datetime.datetime.now(datetime.timezone.utc).strftime(
                     "%Y-%m-%dT%H:%M:%SZ")}
        if self.token_as in ("both", "token"):
            reply["token"] = token
        if self.token_as in ("both", "access_token"):
            reply["access_token"] = token
        self._record(handler, query, basic, user, 200, access)
        handler.send_body(200, json.dumps(reply).encode())


# ---------------------------------------------------------------------------
# Static storage server (the registry's redirect target)
# ---------------------------------------------------------------------------

class _StorageHandler(_QuietHandler):
    owner = None

    def do_GET(self):
        self.owner._handle(self)

    do_HEAD = do_GET


class StorageServer(_ThreadedServer):
    """Serves a directory read-only over plain HTTP on 127.0.0.1, like a blob store behind a
    registry's 307. `requests` records method, path and headers (a dict) of every request, so
    a test can assert that no Authorization header reached it. With `ignore_range` (the
    default) a Range header is ignored and the whole file comes back with 200, as a simple
    static server does; otherwise `bytes=N-` and `bytes=N-M` get a 206."""

    handler_cls = _StorageHandler

    def __init__(self, root, ignore_range=True):
        super().__init__()
        self.root = os.path.realpath(root)
        self.ignore_range = ignore_range
        self.requests = []

    def _handle(self, handler):
        self.requests.append({"method": handler.command, "path": handler.path,
                              "headers": dict(handler.headers.items())})
        rel = urllib.parse.unquote(urllib.parse.urlsplit(handler.path).path).lstrip("/")
        path = os.path.realpath(os.path.join(self.root, rel))
        if not path.startswith(self.root + os.sep) or not os.path.isfile(path):
            handler.send_body(404, b"not found\n", "text/plain")
            return
        with open(path, "rb") as f:
            data = f.read()
        wanted = handler.headers.get("Range")
        m = re.fullmatch(r"bytes=(\d+)-(\d*)", wanted or "")
        if wanted and not self.ignore_range and m:
            start = int(m.group(1))
            end = min(int(m.group(2)) if m.group(2) else len(data) - 1, len(data) - 1)
            if start >= len(data) or end < start:
                handler.send_body(416, b"", "text/plain",
                                  extra=[("Content-Range", "bytes */%d" % len(data))])
                return
            handler.send_body(206, data[start:end + 1], "application/octet-stream",
                              extra=[("Content-Range", "bytes %d-%d/%d" % (start, end, len(data)))])
            return
        handler.send_body(200, data, "application/octet-stream")


# ---------------------------------------------------------------------------
# The registry
# ---------------------------------------------------------------------------

class RegistryError(RuntimeError):
    """The fixture could not start the registry, or a registry operation failed."""


class TestRegistry:
    """Debian's docker-registry on 127.0.0.1:<free port>, fully private to one test.

    auth: None (open), "basic" (htpasswd, bcrypt) or "token" (Bearer via our TokenServer).
    tls: HTTPS with a fixture CA (default) or plain HTTP.
    redirect: blob GET/HEAD answer 307 to a StorageServer (`redirect_host`, default
        "localhost", so the target is another host name as well as another port) that serves
        the registry's storage root; `ignore_range` is passed to it.
    token_as / token_expires_in: TokenServer reply shape and lifetime.
    schema1: enable `compatibility.schema1` so a signed schema1 manifest can be PUT.
    users: {name: password}; default {"alice": "s3cret"}. `username`/`password` are the first.
    tls_key_type: "ec" (P-256, default, fast) or "rsa" for the CA and the server cert.
    registry_bin / ready_timeout: the binary to run and how long to wait for /v2/.

    Attributes once started: host ("127.0.0.1:PORT"), url, port, ca_file, cert_dir (holds only
    ca.crt), username, password, log_path, storage_root, process (the Popen), and
    token_server / token_requests, storage_server / redirect_requests when used.
    """

    __test__ = False  # not a unittest/pytest test class despite the name

    def __init__(self, auth=None, tls=True, redirect=False, redirect_host="localhost",
                 ignore_range=True, token_as="both", token_expires_in=300, schema1=False,
                 users=None, tls_key_type="ec", registry_bin=REGISTRY_BIN,
                 ready_timeout=READY_TIMEOUT):
        if auth not in (None, "basic", "token"):
            raise ValueError("auth must be None, 'basic' or 'token'")
        self.auth = auth
        self.tls = tls
        self.redirect = redirect
        self.redirect_host = redirect_host
        self.ignore_range = ignore_range
        self.token_as = token_as
        self.token_expires_in = token_expires_in
        self.schema1 = schema1
        self.users = dict(users if users is not None else {USERNAME: PASSWORD})
        self.username, self.password = next(iter(self.users.items()))
        self.tls_key_type = tls_key_type
        self.registry_bin = registry_bin
        self.ready_timeout = ready_timeout
        self.tmpdir = None
        self.process = None
        self.port = None
        self.pki = None
        self.token_server = None
        self.storage_server = None
        self.final_log = ""
        self._log_file = None
        self._server_key = self._server_cert = None
        self._token_key = self._token_cert = None

    # -- paths and addresses -------------------------------------------------

    @property
    def host(self):
        return "127.0.0.1:%d" % self.port

    @property
    def url(self):
        return "%s://%s" % ("https" if self.tls else "http", self.host)

    def _path(self, *names):
        return os.path.join(self.tmpdir, *names)

    @property
    def cert_dir(self):
        return self._path("certs")

    @property
    def ca_file(self):
        return self._path("certs", "ca.crt")

    @property
    def log_path(self):
        return self._path("registry.log")

    @property
    def config_path(self):
        return self._path("config.yml")

    @property
    def storage_root(self):
        return self._path("data")

    @property
    def token_requests(self):
        return self.token_server.requests if self.token_server else []

    @property
    def redirect_requests(self):
        return self.storage_server.requests if self.storage_server else []

    def reset_records(self):
        """Forget the recorded token and redirect requests (for example those of a push)."""
        del self.token_requests[:]
        del self.redirect_requests[:]

    # -- lifecycle -----------------------------------------------------------

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        """Create the temp dir, certificates and helper servers, start the registry and wait
        until it answers on /v2/. On any failure everything started so far is undone."""
        if self.tmpdir is not None:
            raise RegistryError("already started")
        try:
            self.tmpdir = tempfile.mkdtemp(prefix="podshim-registry-")
            os.mkdir(self.cert_dir)
            os.mkdir(self.storage_root)
            self._write_pki()
            if self.auth == "basic":
                self._write_htpasswd()
            if self.auth == "token":
                self.token_server = TokenServer(
                    self._token_key, self._token_cert, users=self.users, token_as=self.token_as,
                    expires_in=self.token_expires_in).start()
            if self.redirect:
                self.storage_server = StorageServer(self.storage_root,
                                                    ignore_range=self.ignore_range).start()
            self._launch()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self):
        """Stop the registry we started (SIGTERM, SIGKILL after 5 s), the helper servers, and
        remove the temp dir. Safe to call twice and after a failed start."""
        try:
            self._stop_process()
        finally:
            for server in (self.token_server, self.storage_server):
                if server is not None:
                    server.stop()
            if self.tmpdir is not None:
                self.final_log = self.log_tail(65536)
                shutil.rmtree(self.tmpdir, ignore_errors=True)
                self.tmpdir = None

    def _stop_process(self):
        proc = self.process
        try:
            if proc is not None and proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(STOP_GRACE)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        finally:
            if self._log_file is not None:
                self._log_file.close()
                self._log_file = None

    def log_tail(self, limit=4000):
        """The last `limit` bytes of the registry log (after stop: of the saved copy)."""
        if self.tmpdir is None:
            return self.final_log[-limit:]
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                f.seek(max(0, f.tell() - limit))
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    # -- setup steps ---------------------------------------------------------

    def _write_pki(self):
        # Keys and the token root bundle stay in pki/, outside cert_dir: skopeo reads every
        # *.crt/*.cert/*.key there and wants a .cert for each .key.
        self.pki = TestPKI(self._path("pki"), key_type=self.tls_key_type)
        self._server_key, self._server_cert = self.pki.issue(
            "server", "localhost", server=True, key_type=self.tls_key_type)
        if self.auth == "token":
            self._token_key, self._token_cert = self.pki.issue(
                "token-signer", "podshim test token signer", key_type="rsa")
        shutil.copyfile(self.pki.ca_cert, self.ca_file)

    def _write_htpasswd(self):
        lines = []
        for name, password in self.users.items():
            out = subprocess.run([HTPASSWD_BIN, "-Bbn", name, password], capture_output=True,
                                 text=True, timeout=30)
            if out.returncode != 0:
                raise RegistryError("htpasswd failed: %s" % out.stderr.strip())
            lines.append(out.stdout.strip())
        with open(self._path("htpasswd"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def _config(self):
        http_cfg = {"addr": self.host, "secret": uuid.uuid4().hex,
                    "headers": {"X-Content-Type-Options": ["nosniff"]}}
        if self.tls:
            http_cfg["tls"] = {"certificate": self._server_cert, "key": self._server_key}
        cfg = {"version": "0.1",
               "log": {"level": "info", "formatter": "text"},
               "storage": {"filesystem": {"rootdirectory": self.storage_root},
                           "delete": {"enabled": True}},
               "http": http_cfg}
        if self.auth == "basic":
            cfg["auth"] = {"htpasswd": {"realm": BASIC_REALM, "path": self._path("htpasswd")}}
        elif self.auth == "token":
            cfg["auth"] = {"token": {"realm": self.token_server.realm,
                                     "service": self.token_server.service,
                                     "issuer": self.token_server.issuer,
                                     "rootcertbundle": self.pki.ca_cert}}
        if self.redirect:
            cfg["middleware"] = {"storage": [{"name": "redirect", "options": {
                "baseurl": "http://%s:%d" % (self.redirect_host, self.storage_server.port)}}]}
        if self.schema1:
            cfg["compatibility"] = {"schema1": {"enabled": True}}
        return cfg

    def _launch(self):
        """Start the registry on a free port; retry a few times if another process took the
        port between free_port() and the registry's bind."""
        for attempt in range(5):
            self.port = free_port()
            with open(self.config_path, "w") as f:
                # JSON is YAML: no quoting surprises in paths.
                json.dump(self._config(), f, indent=2)
            self._log_file = open(self.log_path, "ab")
            self.process = subprocess.Popen(
                [self.registry_bin, "serve", self.config_path], stdin=subprocess.DEVNULL,
                stdout=self._log_file, stderr=subprocess.STDOUT, cwd=self.tmpdir,
                env=_clean_env())
            status = self._wait_ready()
            if status == "ready":
                return
            self._stop_process()
            if status != "addr-in-use":
                break
        raise RegistryError("docker-registry did not become ready on %s (%s); log tail:\n%s"
                            % (self.host, status, self.log_tail()))

    def _wait_ready(self):
        """"ready" once GET /v2/ gets any HTTP answer over verified TLS, else why not."""
        deadline = time.monotonic() + self.ready_timeout
        last_error = None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                if "address already in use" in self.log_tail():
                    return "addr-in-use"
                return "exited with status %d" % self.process.returncode
            try:
                http_request("GET", self.url + "/v2/", cafile=self.ca_file, timeout=2)
                return "ready"
            except OSError as err:  # URLError and ssl.SSLError are OSErrors
                last_error = err
                time.sleep(0.05)
        return "timed out after %.0f s, last error: %s" % (self.ready_timeout, last_error)

    # -- talking to the registry --------------------------------------------

    def basic_auth_header(self, username=None, password=None):
        cred = "%s:%s" % (username or self.username, self.password if password is None else password)
        return "Basic " + base64.b64encode(cred.encode()).decode()

    def fetch_token(self, scopes=(), username=None, password=None, anonymous=False):
        """GET a token from the realm over HTTP (recorded in token_requests). Returns the
        Response; `.json()` holds token / access_token."""
        if not self.token_server:
            raise RegistryError("not a token registry")
        query = [("service", self.token_server.service)] + [("scope", s) for s in scopes]
        headers = {}
        if not anonymous:
            headers["Authorization"] = self.basic_auth_header(username, password)
        return http_request("GET", self.token_server.realm + "?" + urllib.parse.urlencode(query),
                            headers=headers)

    def request(self, method, path, body=None, headers=None, auth="auto", timeout=30):
        """A request to the registry (path "/v2/..." or a full URL), redirects not followed.

        auth="auto" acts as a client holding the fixture user's credentials: Basic on every
        request in basic mode; in token mode, on a 401 Bearer challenge a token for the
        challenge's scope is minted in-process (not recorded) and the request retried once.
        auth=None sends nothing beyond `headers`."""
        url = path if "://" in path else self.url + path
        headers = dict(headers or {})
        if auth == "auto" and self.auth == "basic":
            headers.setdefault("Authorization", self.basic_auth_header())
        resp = http_request(method, url, body, headers, cafile=self.ca_file, timeout=timeout)
        if auth == "auto" and self.auth == "token" and resp.status == 401:
            scheme, params = parse_challenge(resp.header("WWW-Authenticate"))
            if scheme == "bearer":
                scopes = params.get("scope", "").split()
                access = self.token_server.grant(self.username, scopes)
                headers["Authorization"] = "Bearer " + self.token_server.issue_token(
                    self.username, access)
                resp = http_request(method, url, body, headers, cafile=self.ca_file,
                                    timeout=timeout)
        return resp

    def blob_path(self, digest):
        """The file in registry storage that holds a blob's bytes."""
        algo, _, hexpart = digest.partition(":")
        return os.path.join(self.storage_root, "docker", "registry", "v2", "blobs", algo,
                            hexpart[:2], hexpart, "data")

    def tamper_blob(self, digest, data=None):
        """Overwrite a stored blob (manifest, config or layer) behind the registry's back, so it
        serves bytes that do not match their digest. data None flips the last byte (the size
        stays the same). Returns the new bytes."""
        path = self.blob_path(digest)
        if data is None:
            with open(path, "rb") as f:
                old = f.read()
            data = old[:-1] + bytes([old[-1] ^ 0xFF])
        with open(path, "wb") as f:
            f.write(data)
        return data


# ---------------------------------------------------------------------------
# Layer entries
# ---------------------------------------------------------------------------

@dataclasses.dataclass
class Entry:
    """One tar member. `name` is written verbatim (no cleaning), so hostile names such as
    "../escape" or "/abs" are possible; the *_entry helpers strip a leading "/"."""

    kind: str  # file, dir, symlink, hardlink, chardev, blockdev, fifo
    name: str
    content: bytes = b""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    linkname: str = ""
    devmajor: int = 0
    devminor: int = 0
    mtime: int = MTIME
    xattrs: dict = None
    pax_headers: dict = None

    _TYPES = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
              "hardlink": tarfile.LNKTYPE, "chardev": tarfile.CHRTYPE,
              "blockdev": tarfile.BLKTYPE, "fifo": tarfile.FIFOTYPE}

    def tarinfo(self):
        ti = tarfile.TarInfo(self.name)
        ti.type = self._TYPES[self.kind]
        ti.mode, ti.uid, ti.gid, ti.mtime = self.mode, self.uid, self.gid, self.mtime
        ti.uname = ti.gname = ""
        ti.linkname = self.linkname
        ti.devmajor, ti.devminor = self.devmajor, self.devminor
        ti.size = len(self.content) if self.kind == "file" else 0
        pax = dict(self.pax_headers or {})
        for key, value in (self.xattrs or {}).items():
            pax["SCHILY.xattr." + key] = value
        ti.pax_headers = pax
        return ti


def _rel(path):
    return path.lstrip("/")


def _bytes(content):
    return content.encode() if isinstance(content, str) else bytes(content)


def file_entry(path, content=b"", mode=0o644, uid=0, gid=0, xattrs=None):
    """A regular file; str content is UTF-8 encoded."""
    return Entry("file", _rel(path), _bytes(content), mode, uid, gid, xattrs=xattrs)


def dir_entry(path, mode=0o755, uid=0, gid=0, xattrs=None):
    return Entry("dir", _rel(path).rstrip("/"), mode=mode, uid=uid, gid=gid, xattrs=xattrs)


def symlink_entry(path, target, uid=0, gid=0):
    return Entry("symlink", _rel(path), mode=0o777, uid=uid, gid=gid, linkname=target)


def hardlink_entry(path, target):
    """A hard link to `target`, a path from the archive root (as in the tar format)."""
    return Entry("hardlink", _rel(path), linkname=_rel(target))


def whiteout_entry(path, uid=0, gid=0):
    """Deletes `path` from lower layers: an empty `.wh.<name>` file, mode 0 as umoci writes."""
    parent, name = os.path.split(_rel(path).rstrip("/"))
    return Entry("file", os.path.join(parent, ".wh." + name), mode=0, uid=uid, gid=gid)


def opaque_entry(dirpath):
    """Hides every lower-layer child of `dirpath`: `<dirpath>/.wh..wh..opq`."""
    return Entry("file", os.path.join(_rel(dirpath).rstrip("/"), ".wh..wh..opq"), mode=0)


def chardev_entry(path, major, minor, mode=0o666, uid=0, gid=0):
    return Entry("chardev", _rel(path), mode=mode, uid=uid, gid=gid, devmajor=major,
                 devminor=minor)


def fifo_entry(path, mode=0o644, uid=0, gid=0):
    return Entry("fifo", _rel(path), mode=mode, uid=uid, gid=gid)


BUSYBOX_APPLETS = ("sh", "sleep", "cat", "echo", "ls", "true", "false", "id", "env", "touch",
                   "mkdir", "rm", "pwd", "test", "stat", "head", "wc", "grep", "ps", "kill",
                   "hostname", "mount", "readlink", "printf", "date", "uname", "whoami", "tail",
                   "sort", "chmod", "mv", "cp", "ln", "nc", "wget")


def busybox_layer_entries(applets=BUSYBOX_APPLETS, busybox=BUSYBOX_BIN):
    """A runnable base layer: /bin/busybox (the static build from busybox-static), symlinks
    /bin/<applet> -> busybox (sh, sleep, cat, echo, ls and a few more), /etc/passwd with root
    and `app` (uid 1000), /etc/group, /tmp (1777), /root and /home/app."""
    with open(busybox, "rb") as f:
        binary = f.read()
    entries = [dir_entry("bin"), file_entry("bin/busybox", binary, mode=0o755)]
    entries += [symlink_entry("bin/" + name, "busybox") for name in applets if name != "busybox"]
    entries += [
        dir_entry("etc"),
        file_entry("etc/passwd", "root:x:0:0:root:/root:/bin/sh\n"
                                 "app:x:1000:1000:app:/home/app:/bin/sh\n"
                                 "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n"),
        file_entry("etc/group", "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"),
        dir_entry("home"), dir_entry("home/app", uid=1000, gid=1000),
        dir_entry("root", mode=0o700), dir_entry("tmp", mode=0o1777),
    ]
    return entries


def add_parent_dirs(entries, mode=0o755):
    """`entries` with a dir entry inserted before the first use of each missing parent."""
    have = {e.name.rstrip("/") for e in entries if e.kind == "dir"}
    out = []
    for e in entries:
        parts = e.name.strip("/").split("/")[:-1]
        for i in range(1, len(parts) + 1):
            parent = "/".join(parts[:i])
            if parent not in have and parent not in ("", ".", ".."):
                have.add(parent)
                out.append(dir_entry(parent, mode=mode))
        out.append(e)
    return out


# ---------------------------------------------------------------------------
# Layers, images, OCI layouts
# ---------------------------------------------------------------------------

def compress(data, compression):
    """gzip (mtime 0: reproducible), zstd (the zstd CLI) or none."""
    if compression == "gzip":
        return gzip.compress(data, compresslevel=6, mtime=0)
    if compression == "zstd":
        out = subprocess.run([ZSTD_BIN, "-q", "-c", "-3", "--no-progress"], input=data,
                             capture_output=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError("zstd failed: %s" % out.stderr.decode(errors="replace"))
        return out.stdout
    if compression in ("none", None):
        return data
    raise ValueError("unknown compression %r" % compression)


def tar_bytes(entries):
    """A PAX tar of `entries`, in the given order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
        for e in entries:
            tf.addfile(e.tarinfo(), io.BytesIO(e.content) if e.kind == "file" else None)
    return buf.getvalue()


_LAYER_TYPES = {"gzip": MT_OCI_LAYER_GZIP, "zstd": MT_OCI_LAYER_ZSTD, "none": MT_OCI_LAYER}


class Layer:
    """A layer: entries (or a ready uncompressed `tar`) and a compression ("gzip", "zstd",
    "none"). `media_type` overrides the OCI type matching the compression."""

    def __init__(self, entries=(), compression="gzip", tar=None, media_type=None):
        if compression not in _LAYER_TYPES:
            raise ValueError("compression must be gzip, zstd or none")
        self.entries = list(entries)
        self.compression = compression
        self.tar = tar
        self.media_type = media_type or _LAYER_TYPES[compression]

    def build(self):
        """(uncompressed tar, blob bytes)."""
        raw = self.tar if self.tar is not None else tar_bytes(self.entries)
        return raw, compress(raw, self.compression)


class Image:
    """An image: layers (Layer objects, or plain entry lists = gzip layers) and the runtime
    `config` (Cmd, Entrypoint, Env, User, WorkingDir, ...; default PATH env and Cmd /bin/sh).
    `extra_config` is merged into the top level of the config document (for example a wrong
    "rootfs"); `annotations` go into the manifest."""

    def __init__(self, layers, config=None, architecture=None, os="linux", variant=None,
                 annotations=None, extra_config=None):
        self.layers = [l if isinstance(l, Layer) else Layer(l) for l in layers]
        self.config = dict(config) if config is not None else {
            "Env": [DEFAULT_PATH_ENV], "Cmd": ["/bin/sh"]}
        self.architecture = architecture or host_arch()
        self.os = os
        self.variant = variant
        self.annotations = annotations
        self.extra_config = extra_config

    @property
    def platform(self):
        p = {"architecture": self.architecture, "os": self.os}
        if self.variant:
            p["variant"] = self.variant
        return p


@dataclasses.dataclass
class ImageInfo:
    """What build_image wrote; digests are "sha256:<hex>"."""

    manifest_digest: str
    manifest_size: int
    manifest_bytes: bytes
    config_digest: str
    config_bytes: bytes
    layer_digests: list
    layer_sizes: list
    layer_media_types: list
    diff_ids: list
    chain_ids: list
    platform: dict
    media_type: str = MT_OCI_MANIFEST

    @property
    def image_id(self):
        return self.config_digest

    @property
    def manifest(self):
        return json.loads(self.manifest_bytes)

    @property
    def config(self):
        return json.loads(self.config_bytes)

    def descriptor(self, **extra):
        d = {"mediaType": self.media_type, "digest": self.manifest_digest,
             "size": self.manifest_size}
        d.update(extra)
        return d


@dataclasses.dataclass
class IndexInfo:
    """What build_multiarch_layout wrote: the nested index and its children by "os/arch"."""

    index_digest: str
    index_size: int
    index_bytes: bytes
    images: dict
    attestation: ImageInfo
    marked_platform: str
    marker_path: str


def descriptor(media_type, data, **extra):
    """An OCI descriptor for `data`."""
    d = {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}
    d.update(extra)
    return d


def oci_manifest(config_desc, layer_descs, annotations=None, media_type=MT_OCI_MANIFEST):
    """Canonical bytes of an image manifest (media_type None leaves the field out)."""
    m = {"schemaVersion": 2, "config": config_desc, "layers": list(layer_descs)}
    if media_type:
        m["mediaType"] = media_type
    if annotations:
        m["annotations"] = annotations
    return canonical_json(m)


def init_layout(path):
    """Create an (empty) OCI image layout at `path` unless one is there."""
    os.makedirs(os.path.join(path, "blobs", "sha256"), exist_ok=True)
    marker = os.path.join(path, "oci-layout")
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
    if not os.path.exists(os.path.join(path, "index.json")):
        write_index_json(path, [])


def write_blob(layout, data):
    """Store bytes under blobs/sha256/<hex>; returns the digest."""
    digest = sha256_digest(data)
    path = os.path.join(layout, "blobs", "sha256", digest.split(":", 1)[1])
    if not os.path.exists(path):
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)
    return digest


def read_blob(layout, digest):
    with open(os.path.join(layout, "blobs", *digest.split(":", 1)), "rb") as f:
        return f.read()


def write_index_json(layout, manifests):
    with open(os.path.join(layout, "index.json"), "wb") as f:
        f.write(canonical_json({"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
                                "manifests": list(manifests)}))


def set_layout_tag(layout, tag, desc):
    """Point `tag` (org.opencontainers.image.ref.name) of index.json at `desc`, replacing
    an older entry with that tag."""
    with open(os.path.join(layout, "index.json"), "rb") as f:
        entries = json.load(f).get("manifests", [])
    entries = [e for e in entries
               if (e.get("annotations") or {}).get(ANNOTATION_REF_NAME) != tag]
    entry = dict(desc)
    entry["annotations"] = dict(entry.get("annotations") or {}, **{ANNOTATION_REF_NAME: tag})
    entries.append(entry)
    write_index_json(layout, entries)


def build_image(layout, image, history=True):
    """Write an Image's layer, config and manifest blobs into `layout` (no index entry)."""
    if not isinstance(image, Image):
        image = Image(image)
    digests, sizes, types, diff_ids = [], [], [], []
    for layer in image.layers:
        raw, blob = layer.build()
        digests.append(write_blob(layout, blob))
        sizes.append(len(blob))
        types.append(layer.media_type)
        diff_ids.append(sha256_digest(raw))
    config = {"created": CREATED, "architecture": image.architecture, "os": image.os,
              "config": image.config, "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    if image.variant:
        config["variant"] = image.variant
    if history:
        config["history"] = [{"created": CREATED, "created_by": "podshim-test layer %d" % i}
                             for i in range(len(image.layers))]
    config.update(image.extra_config or {})
    config_bytes = canonical_json(config)
    config_digest = write_blob(layout, config_bytes)
    manifest_bytes = oci_manifest(
        descriptor(MT_OCI_CONFIG, config_bytes),
        [{"mediaType": t, "digest": d, "size": s} for t, d, s in zip(types, digests, sizes)],
        annotations=image.annotations)
    manifest_digest = write_blob(layout, manifest_bytes)
    return ImageInfo(manifest_digest, len(manifest_bytes), manifest_bytes, config_digest,
                     config_bytes, digests, sizes, types, diff_ids, chain_ids(diff_ids),
                     image.platform)


def build_layout(path, images):
    """Write images into the OCI layout at `path` (created if needed, existing tags kept).

    images: {tag: Image | [Layer | [Entry, ...], ...]}. Returns {tag: ImageInfo}."""
    init_layout(path)
    infos = {}
    for tag, image in images.items():
        info = build_image(path, image)
        set_layout_tag(path, tag, info.descriptor())
        infos[tag] = info
    return infos


def build_multiarch_layout(path, tag="multi", base_entries=None, config=None,
                           marker_path="/marker", marker_content=b"picked the right platform\n",
                           marked_arch=None, compression="gzip"):
    """A nested OCI index under `tag`: linux/amd64, linux/arm64 and an unknown/unknown
    attestation manifest (BuildKit style: in-toto layer, annotations
    vnd.docker.reference.type=attestation-manifest and .digest=<marked image>).

    Each platform image has the shared base layer (`base_entries`, default
    busybox_layer_entries()) and a layer with /etc/platform naming its arch; only the
    `marked_arch` image (default: this host's arch, i.e. amd64 on x86_64) has the marker file.
    Returns IndexInfo."""
    init_layout(path)
    marked_arch = marked_arch or host_arch()
    base = Layer(busybox_layer_entries() if base_entries is None else base_entries, compression)
    images = {}
    for arch in ("amd64", "arm64"):
        top = [dir_entry("etc"), file_entry("etc/platform", "linux/%s\n" % arch)]
        if arch == marked_arch:
            top.append(file_entry(marker_path, marker_content))
        images["linux/" + arch] = build_image(path, Image(
            [base, Layer(add_parent_dirs(top), compression)], config=config, architecture=arch))
    marked = images.get("linux/" + marked_arch)
    subject = marked.manifest_digest if marked else images["linux/amd64"].manifest_digest
    statement = canonical_json({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": "https://spdx.dev/Document",
        "subject": [{"name": "podshim-test", "digest": {"sha256": subject.split(":", 1)[1]}}],
        "predicate": {"spdxVersion": "SPDX-2.3"}})
    att_digest = write_blob(path, statement)
    att_config = canonical_json({"architecture": "unknown", "os": "unknown", "config": {},
                                 "rootfs": {"type": "layers", "diff_ids": [att_digest]}})
    att_config_digest = write_blob(path, att_config)
    att_manifest = oci_manifest(
        descriptor(MT_OCI_CONFIG, att_config),
        [descriptor(MT_IN_TOTO, statement,
                    annotations={"in-toto.io/predicate-type": "https://spdx.dev/Document"})])
    att_manifest_digest = write_blob(path, att_manifest)
    attestation = ImageInfo(att_manifest_digest, len(att_manifest), att_manifest,
                            att_config_digest, att_config, [att_digest], [len(statement)],
                            [MT_IN_TOTO], [att_digest], [att_digest],
                            {"architecture": "unknown", "os": "unknown"})
    children = [info.descriptor(platform=info.platform) for info in images.values()]
    children.append(attestation.descriptor(
        platform=attestation.platform,
        annotations={"vnd.docker.reference.digest": subject,
                     "vnd.docker.reference.type": "attestation-manifest"}))
    index_bytes = canonical_json({"schemaVersion": 2, "mediaType": MT_OCI_INDEX,
                                  "manifests": children})
    index_digest = write_blob(path, index_bytes)
    set_layout_tag(path, tag, {"mediaType": MT_OCI_INDEX, "digest": index_digest,
                              "size": len(index_bytes)})
    return IndexInfo(index_digest, len(index_bytes), index_bytes, images, attestation,
                     "linux/" + marked_arch, _rel(marker_path))


# ---------------------------------------------------------------------------
# Pushing
# ---------------------------------------------------------------------------

def push(registry, layout_dir, tag_in_layout, dest, fmt="oci", all=False, creds=True,
         extra_args=(), timeout=120):
    """`skopeo copy oci:<layout>:<tag> docker://<host>/<dest>` ("repo:tag"), with the
    fixture user's credentials (unless the registry is open or creds is False) and its CA.

    fmt "oci" keeps every digest (--preserve-digests); "v2s2" converts to Docker media types
    (the manifest digest changes; layers must be gzip). all=True copies a whole index.
    Returns the pushed manifest digest; raises RegistryError with skopeo's stderr."""
    if fmt not in ("oci", "v2s2"):
        raise ValueError("fmt must be 'oci' or 'v2s2'")
    digest_file = tempfile.NamedTemporaryFile(prefix="skopeo-digest-", delete=False)
    digest_file.close()
    try:
        cmd = [SKOPEO_BIN, "--insecure-policy", "copy", "--quiet",
               "--digestfile", digest_file.name]
        cmd += ["--preserve-digests"] if fmt == "oci" else ["--format", "v2s2"]
        if all:
            cmd.append("--all")
        if registry.auth and creds:
            cmd += ["--dest-creds", "%s:%s" % (registry.username, registry.password)]
        if registry.tls:
            cmd += ["--dest-cert-dir", registry.cert_dir]
        else:
            cmd.append("--dest-tls-verify=false")
        cmd += list(extra_args)
        cmd += ["oci:%s:%s" % (layout_dir, tag_in_layout), "docker://%s/%s" % (registry.host, dest)]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                             env=_clean_env(drop_prefixes=()))
        if out.returncode != 0:
            raise RegistryError("skopeo copy to %s failed (%d): %s"
                                % (dest, out.returncode, out.stderr.strip()))
        with open(digest_file.name) as f:
            return f.read().strip()
    finally:
        os.unlink(digest_file.name)


def put_blob(registry, repo, data, digest=None, check=True):
    """Upload bytes as a blob of `repo` (POST, then PUT ?digest=). `digest` defaults to the
    real one; a wrong one makes the registry refuse (check=False returns that Response).
    Returns the digest, or the final Response when check is False."""
    digest = digest or sha256_digest(data)
    resp = registry.request("POST", "/v2/%s/blobs/uploads/" % repo, body=b"",
                            headers={"Content-Length": "0"})
    if resp.status != 202:
        raise RegistryError("start upload to %s: %d %s" % (repo, resp.status, resp.body[:300]))
    location = urllib.parse.urljoin(registry.url + "/", resp.header("Location"))
    sep = "&" if "?" in location else "?"
    resp = registry.request("PUT", location + sep + urllib.parse.urlencode({"digest": digest}),
                            body=data, headers={"Content-Type": "application/octet-stream"})
    if not check:
        return resp
    if resp.status != 201:
        raise RegistryError("upload %s to %s: %d %s" % (digest, repo, resp.status, resp.body[:300]))
    return digest


def put_raw_manifest(registry, repo, ref, body, media_type, check=True):
    """PUT exact manifest bytes under a tag or digest with the given Content-Type. Returns the
    Response (201 and Docker-Content-Digest on success); raises unless 201 when check."""
    resp = registry.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=body,
                            headers={"Content-Type": media_type})
    if check and resp.status != 201:
        raise RegistryError("PUT manifest %s:%s: %d %s" % (repo, ref, resp.status, resp.body[:500]))
    return resp


def push_raw(registry, layout_dir, info, repo, ref):
    """Upload an image's blobs and its exact manifest bytes from a layout without skopeo
    (ImageInfo from build_image, for example one with a crafted config). Returns the
    registry's Docker-Content-Digest."""
    for digest in [info.config_digest] + list(info.layer_digests):
        put_blob(registry, repo, read_blob(layout_dir, digest))
    resp = put_raw_manifest(registry, repo, ref, info.manifest_bytes, info.media_type)
    return resp.header("Docker-Content-Digest")


def schema1_manifest(name, tag, layer_digests, architecture="amd64"):
    """A Docker schema1 manifest signed the libtrust way (ES256 JWS, key in the header), which
    a registry with schema1=True accepts (its fsLayers must exist in the repository). Push it
    with media type MT_DOCKER_SCHEMA1_SIGNED. Note: the registry's digest for it is the sha256
    of the payload without the signatures."""
    history = [{"v1Compatibility": json.dumps({
        "id": hashlib.sha256(("%s-%d" % (name, i)).encode()).hexdigest(),
        "created": CREATED, "container_config": {"Cmd": [""]}})} for i in range(len(layer_digests))]
    payload = json.dumps({"schemaVersion": 1, "name": name, "tag": tag,
                          "architecture": architecture,
                          "fsLayers": [{"blobSum": d} for d in layer_digests],
                          "history": history}, indent=3).encode()
    # libtrust: the signature covers the document up to its last non-space byte before the
    # closing brace (formatLength) plus the tail (formatTail) it then re-appends.
    close = payload.rstrip().rfind(b"}")
    format_length = len(payload[:close].rstrip())
    protected = _b64url(json.dumps({"formatLength": format_length,
                                    "formatTail": _b64url(payload[format_length:]),
                                    "time": CREATED}).encode())
    signing_input = (protected + "." + _b64url(payload)).encode()
    with tempfile.TemporaryDirectory(prefix="podshim-schema1-") as tmp:
        key = os.path.join(tmp, "key.pem")
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", key)
        signature = _der_ecdsa_to_raw(openssl("dgst", "-sha256", "-sign", key,
                                              input=signing_input))
        point = openssl("ec", "-in", key, "-pubout", "-outform", "DER")[-65:]  # 04 || X || Y
    jwk = {"crv": "P-256", "kty": "EC", "x": _b64url(point[1:33]), "y": _b64url(point[33:])}
    signatures = [{"header": {"jwk": jwk, "alg": "ES256"}, "signature": _b64url(signature),
                   "protected": protected}]
    return (payload[:format_length] + b",\n   \"signatures\": "
            + json.dumps(signatures, indent=3).replace("\n", "\n   ").encode()
            + b"\n}")
