"""Issue 21: `podshim run` pulls a manifest's images as their imagePullPolicy says (Kubernetes'
default: Always for :latest or no tag, IfNotPresent otherwise), with credentials from a Docker
config file and the registry configuration of --registry-config; the registry runs on 127.0.0.1."""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import unittest

from crihelpers import PODSHIM_BIN
from registryfixture import (Image, Layer, TestRegistry, build_layout, busybox_layer_entries, file_entry, push)

REGISTRY_BIN = "/usr/bin/docker-registry"


@unittest.skipUnless(os.path.exists(REGISTRY_BIN) and shutil.which("skopeo") and os.geteuid() == 0,
                     "needs root, docker-registry and skopeo")
class RunPullTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.base = tempfile.mkdtemp(prefix="podshim-run-pull-")
        cls.registry = TestRegistry(auth="basic")
        cls.registry.start()
        layout = os.path.join(cls.base, "layout")
        build_layout(layout, {
            "v1": Image([Layer(busybox_layer_entries()), Layer([file_entry("etc/version", b"one\n")])], config={"Cmd": ["sh"]}),
            "v2": Image([Layer(busybox_layer_entries()), Layer([file_entry("etc/version", b"two\n")])], config={"Cmd": ["sh"]}),
        })
        cls.layout = layout
        push(cls.registry, layout, "v1", "team/app:v1")
        push(cls.registry, layout, "v1", "team/app:latest")
        cls.config = os.path.join(cls.base, "registries.json")
        with open(cls.config, "w") as f:
            json.dump({"hosts": {cls.registry.host: {"ca": [cls.registry.ca_file]}}}, f)
        cls.docker_config = os.path.join(cls.base, "docker")
        os.makedirs(cls.docker_config)
        with open(os.path.join(cls.docker_config, "config.json"), "w") as f:
            json.dump({"auths": {cls.registry.host: {"auth": base64.b64encode(b"alice:s3cret").decode()}}}, f)

    @classmethod
    def tearDownClass(cls):
        cls.registry.stop()
        shutil.rmtree(cls.base, ignore_errors=True)

    def setUp(self):
        self.dirs = {name: os.path.join(self.base, self.id().rsplit(".", 1)[-1], name)
                     for name in ("state", "root", "images", "logs")}

    def tearDown(self):
        shutil.rmtree(os.path.dirname(self.dirs["state"]), ignore_errors=True)

    def run_manifest(self, image, policy=None, command="cat /etc/version"):
        manifest = os.path.join(self.base, "pod.yaml")
        pull = "    imagePullPolicy: %s\n" % policy if policy else ""
        with open(manifest, "w") as f:
            f.write("apiVersion: v1\nkind: Pod\nmetadata: {name: pulled}\nspec:\n  restartPolicy: Never\n"
                    "  containers:\n  - name: app\n    image: %s\n%s    command: [sh, -c, \"%s\"]\n" % (image, pull, command))
        argv = [PODSHIM_BIN, "run", "--network", "none", "--registry-config", self.config,
                "--state-dir", self.dirs["state"], "--root", self.dirs["root"], "--image-dir", self.dirs["images"],
                "--log-dir", self.dirs["logs"], manifest]
        return subprocess.run(argv, capture_output=True, text=True, timeout=120,
                              env=dict(os.environ, DOCKER_CONFIG=self.docker_config))

    def test_policies(self):
        image = self.registry.host + "/team/app:v1"
        # Never, and nothing stored: refused, nothing asked of the registry.
        result = self.run_manifest(image, "Never")
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("is not in the local store", result.stderr)
        # IfNotPresent (the default for a tag other than latest): pulled with the Docker config's credentials.
        result = self.run_manifest(image)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("app | one", result.stdout + result.stderr)
        self.assertIn("to download", result.stderr, "plain progress lines")
        # The tag moves; IfNotPresent keeps the stored image, Always pulls the new one.
        push(self.registry, self.layout, "v2", "team/app:v1")
        result = self.run_manifest(image, "IfNotPresent")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("app | one", result.stdout + result.stderr)
        self.assertNotIn("to download", result.stderr)
        result = self.run_manifest(image, "Always")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("app | two", result.stdout + result.stderr)
        push(self.registry, self.layout, "v1", "team/app:v1")  # as the other tests expect it

    def test_latest_is_always_pulled_and_bad_credentials_fail_clearly(self):
        image = self.registry.host + "/team/app"  # no tag: latest, policy Always
        result = self.run_manifest(image)
        self.assertEqual(result.returncode, 0, result.stderr)
        with open(os.path.join(self.docker_config, "config.json")) as f:
            good = f.read()
        try:
            with open(os.path.join(self.docker_config, "config.json"), "w") as f:
                json.dump({"auths": {self.registry.host: {"auth": base64.b64encode(b"alice:wrong").decode()}}}, f)
            result = self.run_manifest(image)
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertIn("spec.containers[0].image: pull %s" % image, result.stderr)
            self.assertIn("unauthorized", result.stderr)
            self.assertNotIn("wrong", result.stderr)
        finally:
            with open(os.path.join(self.docker_config, "config.json"), "w") as f:
                f.write(good)


if __name__ == "__main__":
    unittest.main()
