#!/usr/bin/python3
"""Direct calls to the sample plugins, from a generic gRPC client (Python
grpcio), against the C volume plugin and the Python network plugin:

- bank URIs: a protect inside --bank-root works and leaves only private
  folders (0700) and files (0600); a bank outside the root, a `..` escape,
  a `..` below a missing folder and a symlink escape are refused with
  PERMISSION_DENIED naming the URI, and nothing is created or removed
  outside (a DELETE aimed at another folder leaves its data in place);
  without --bank-root every bank URI is refused;
- unix sockets are 0660 or stricter even under umask 0;
- TLS (certificates made here with `openssl`): with --tls-client-ca a
  caller with a client certificate from that CA gets in; one without a
  client certificate, one with a certificate from another CA and a
  plaintext one are refused; smaug-plugin-check passes over mutual TLS
  (its bank-root check included) and fails without a client certificate;
  a group-readable key file stops the plugin at start-up with a message
  that says so.

    test_security.py --bin BIN_DIR --gen GEN_DIR [--only c|py]

Prints "N passed, N failed" last and exits non-zero on any failure.
"""

import argparse
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import unittest
import uuid

ap = argparse.ArgumentParser()
ap.add_argument("--bin", required=True)
ap.add_argument("--gen", required=True)
ap.add_argument("--only", choices=["c", "py"])
ARGS, _rest = ap.parse_known_args()

sys.path.insert(0, ARGS.gen)
import grpc  # noqa: E402

from smaug.v1 import plugin_pb2 as pb  # noqa: E402
from smaug.v1 import plugin_pb2_grpc as pbg  # noqa: E402
from smaug.v1 import types_pb2 as tp  # noqa: E402

WAIT = 20
RPC_TIMEOUT = 30
LISTEN_RE = re.compile(r".*msg=listening addr=(\S+)")
# name, binary, type, resource id
PLUGINS = [("c", "smaug-plugin-volume", "smaug.volume", "p1-vol-1"),
           ("py", "smaug-plugin-network", "smaug.network", "p1-net-1")]
if ARGS.only:
    PLUGINS = [p for p in PLUGINS if p[0] == ARGS.only]
TMP = None


class Plugin:
    """A plugin process; its log goes to a file read for the address."""

    def __init__(self, binary, args, umask=None):
        self.log = os.path.join(TMP, "%s-%s.log" % (binary, uuid.uuid4().hex))
        with open(self.log, "w") as f:
            self.proc = subprocess.Popen(
                [os.path.join(ARGS.bin, binary)] + list(args), stdout=f,
                stderr=f, stdin=subprocess.DEVNULL,
                preexec_fn=(lambda: os.umask(umask)) if umask is not None
                else None)
        self.addr = None

    def text(self):
        with open(self.log) as f:
            return f.read()

    def wait_listening(self):
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for line in self.text().splitlines():
                m = LISTEN_RE.match(line)
                if m and "msg=listening" in line:
                    self.addr = m.group(1)
                    return self.addr
            if self.proc.poll() is not None:
                raise AssertionError("plugin exited: " + self.text())
            time.sleep(0.05)
        raise AssertionError("plugin did not listen: " + self.text())

    def wait_exit(self):
        return self.proc.wait(timeout=WAIT)

    def stop(self):
        """SIGTERM; the plugin must exit 0 (a sanitizer's report would not)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc.returncode != 0:
            raise AssertionError("plugin exited with %d: %s" % (
                self.proc.returncode, self.text()[-3000:]))


def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_ca(name):
    key, pem = os.path.join(TMP, name + ".key"), os.path.join(TMP, name + ".pem")
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
            "-out", pem, "-days", "2", "-subj", "/CN=" + name)
    return key, pem


def make_cert(name, ca, san=None):
    """A key and a certificate signed by `ca` (key, pem); 0600 key."""
    key, csr = os.path.join(TMP, name + ".key"), os.path.join(TMP, name + ".csr")
    pem, ext = os.path.join(TMP, name + ".pem"), os.path.join(TMP, name + ".ext")
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out",
            csr, "-subj", "/CN=" + name)
    with open(ext, "w") as f:
        f.write("basicConstraints=CA:FALSE\n")
        if san:
            f.write("subjectAltName=%s\n" % san)
    openssl("x509", "-req", "-in", csr, "-CA", ca[1], "-CAkey", ca[0],
            "-CAcreateserial", "-out", pem, "-days", "2", "-extfile", ext)
    os.chmod(key, 0o600)
    return key, pem


def read(path):
    with open(path, "rb") as f:
        return f.read()


def setUpModule():
    global TMP, CLOUD, CA, SERVER, CLIENT, ROGUE_CLIENT
    TMP = tempfile.mkdtemp(prefix="smaug-sec-")
    CLOUD = os.path.join(TMP, "cloud")
    subprocess.run([os.path.join(ARGS.bin, "smaug-cloud-gen"), "--dir", CLOUD,
                    "--volume-mib", "1", "--image-kib", "64"], check=True,
                   stdout=subprocess.DEVNULL)
    CA = make_ca("ca")
    SERVER = make_cert("server", CA, "DNS:localhost,IP:127.0.0.1")
    CLIENT = make_cert("smaugd", CA)
    ROGUE_CLIENT = make_cert("rogue", make_ca("rogue-ca"))


def tearDownModule():
    shutil.rmtree(TMP, ignore_errors=True)


def request(op, kind, activity, type_, rid, bank_uri, **kw):
    name = "parallel" if activity == tp.ACTIVITY_PARALLEL else "sync"
    return pb.ActivityRequest(
        operation=tp.OperationRef(id=op, kind=kind, checkpoint_id="cp-" + op),
        resource=tp.Resource(type=type_, id=rid, extra={"project": "proj-1"}),
        bank_uri=bank_uri,
        bank_section="checkpoints/cp-%s/%s/%s" % (op, type_, rid),
        attempt=1, activity=activity,
        idempotency_key="%s/%s/%s/%s" % (op, type_, rid, name), **kw)


def run(method, req):
    """(status code, message, result or None) of a streaming activity."""
    result = None
    try:
        for msg in method(req, timeout=RPC_TIMEOUT):
            if msg.HasField("result"):
                result = msg.result
    except grpc.RpcError as e:
        return e.code(), e.details(), None
    return grpc.StatusCode.OK, "", result


def tree_modes(root):
    """(path, mode) of every folder and file under root, root included."""
    out = [(root, stat.S_IMODE(os.lstat(root).st_mode))]
    for d, dirs, files in os.walk(root):
        for n in dirs + files:
            p = os.path.join(d, n)
            out.append((p, stat.S_IMODE(os.lstat(p).st_mode)))
    return out


class BankRoot(unittest.TestCase):
    """--bank-root on both plugins, each on a unix socket of its own."""

    @classmethod
    def setUpClass(cls):
        cls.root = os.path.join(TMP, "banks")
        os.makedirs(cls.root)
        cls.outside = os.path.join(TMP, "outside")
        os.makedirs(cls.outside)
        cls.plugins = {}
        for name, binary, type_, rid in PLUGINS:
            p = Plugin(binary, [
                "--listen", "unix:%s/%s.sock" % (TMP, name), "--cloud", CLOUD,
                "--bank-root", cls.root, "--exit-with-parent"])
            p.wait_listening()
            ch = grpc.insecure_channel(p.addr)
            cls.plugins[name] = (p, ch, pbg.ProtectionPluginStub(ch), type_,
                                 rid)

    @classmethod
    def tearDownClass(cls):
        for p, ch, _, _, _ in cls.plugins.values():
            ch.close()
            p.stop()

    def protect(self, name, bank_uri):
        """Protect P then S; the status, message and Sync result."""
        _, _, stub, type_, rid = self.plugins[name]
        op = uuid.uuid4().hex
        code, msg, pres = run(stub.ParallelActivity, request(
            op, tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_PARALLEL, type_, rid,
            bank_uri))
        if code != grpc.StatusCode.OK:
            return code, msg, None
        return run(stub.SyncActivity, request(
            op, tp.OPERATION_KIND_PROTECT, tp.ACTIVITY_SYNC, type_, rid,
            bank_uri, state=pres.state))

    def assert_refused(self, name, uri, why=None):
        code, msg, _ = self.protect(name, uri)
        self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED,
                         "%s: %s: %s" % (name, uri, msg))
        self.assertIn(uri, msg)
        if why:
            self.assertIn(why, msg)

    def test_inside_the_root_works_and_is_private(self):
        for name in self.plugins:
            with self.subTest(plugin=name):
                bank = os.path.join(self.root, "bank-" + name)
                code, msg, res = self.protect(name, "file://" + bank)
                self.assertEqual(code, grpc.StatusCode.OK, msg)
                modes = tree_modes(bank)
                self.assertGreater(len(modes), 2)
                for path, mode in modes:
                    want = 0o700 if os.path.isdir(path) else 0o600
                    self.assertEqual(mode, want, "%s: %04o" % (path, mode))

    def test_extra_slashes_and_dots_inside_the_root_work(self):
        for name in self.plugins:
            with self.subTest(plugin=name):
                uri = "file://%s//./bank-dots-%s/" % (self.root, name)
                code, msg, _ = self.protect(name, uri)
                self.assertEqual(code, grpc.StatusCode.OK, msg)

    def test_outside_the_root_is_refused_and_nothing_is_made(self):
        for name in self.plugins:
            with self.subTest(plugin=name):
                target = os.path.join(self.outside, "bank-" + name)
                self.assert_refused(name, "file://" + target,
                                    "outside --bank-root")
                self.assertFalse(os.path.exists(target))

    def test_dotdot_escape_is_refused(self):
        for name in self.plugins:
            with self.subTest(plugin=name):
                target = os.path.join(self.outside, "dd-" + name)
                uri = "file://%s/../outside/dd-%s" % (self.root, name)
                self.assert_refused(name, uri)
                self.assertFalse(os.path.exists(target))
                # Below a folder that does not exist yet, too.
                uri = "file://%s/new-%s/../../outside/dd-%s" % (
                    self.root, name, name)
                self.assert_refused(name, uri)
                self.assertFalse(os.path.exists(target))

    def test_symlink_escape_is_refused(self):
        for name in self.plugins:
            with self.subTest(plugin=name):
                target = os.path.join(self.outside, "sl-" + name)
                os.makedirs(target)
                link = os.path.join(self.root, "link-" + name)
                os.symlink(target, link)
                self.assert_refused(name, "file://" + link)
                self.assert_refused(name, "file://%s/sub" % link)
                self.assertEqual(os.listdir(target), [])

    def test_delete_aimed_outside_leaves_the_data(self):
        """The DELETE-kind Sync of the hostile report: another folder's
        section must survive."""
        for name in self.plugins:
            with self.subTest(plugin=name):
                _, _, stub, type_, rid = self.plugins[name]
                victim = os.path.join(self.outside, "live-" + name)
                op = uuid.uuid4().hex
                req = request(op, tp.OPERATION_KIND_DELETE, tp.ACTIVITY_SYNC,
                              type_, rid, "file://" + victim)
                section = os.path.join(victim, req.bank_section)
                os.makedirs(section)
                with open(os.path.join(section, "data"), "w") as f:
                    f.write("live checkpoint data\n")
                code, msg, _ = run(stub.SyncActivity, req)
                self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED, msg)
                self.assertIn("file://" + victim, msg)
                self.assertTrue(os.path.exists(os.path.join(section, "data")))

    def test_without_a_root_every_bank_is_refused(self):
        for name, binary, type_, rid in PLUGINS:
            with self.subTest(plugin=name):
                env_free = Plugin(binary, [
                    "--listen", "unix:%s/%s-noroot.sock" % (TMP, name),
                    "--cloud", CLOUD, "--exit-with-parent"])
                try:
                    env_free.wait_listening()
                    with grpc.insecure_channel(env_free.addr) as ch:
                        stub = pbg.ProtectionPluginStub(ch)
                        uri = "file://%s/bank-noroot" % self.root
                        code, msg, _ = run(stub.ParallelActivity, request(
                            uuid.uuid4().hex, tp.OPERATION_KIND_PROTECT,
                            tp.ACTIVITY_PARALLEL, type_, rid, uri))
                    self.assertEqual(code, grpc.StatusCode.PERMISSION_DENIED,
                                     msg)
                    self.assertIn(uri, msg)
                    self.assertIn("no bank root", msg)
                finally:
                    env_free.stop()


class SocketMode(unittest.TestCase):
    def test_unix_socket_is_0660_or_stricter_under_umask_0(self):
        for name, binary, _, _ in PLUGINS:
            with self.subTest(plugin=name):
                sock = os.path.join(TMP, "%s-mode.sock" % name)
                p = Plugin(binary, ["--listen", "unix:" + sock, "--cloud",
                                    CLOUD, "--exit-with-parent"], umask=0)
                try:
                    p.wait_listening()
                    mode = stat.S_IMODE(os.stat(sock).st_mode)
                    self.assertEqual(mode & 0o117, 0, "mode %04o" % mode)
                finally:
                    p.stop()


class Tls(unittest.TestCase):
    """Each plugin on 127.0.0.1:0 with TLS and --tls-client-ca."""

    @classmethod
    def setUpClass(cls):
        cls.plugins = {}
        for name, binary, _, _ in PLUGINS:
            p = Plugin(binary, [
                "--listen", "127.0.0.1:0", "--cloud", CLOUD,
                "--bank-root", os.path.join(TMP, "tls-banks"),
                "--tls-cert", SERVER[1], "--tls-key", SERVER[0],
                "--tls-client-ca", CA[1], "--exit-with-parent"])
            p.wait_listening()
            cls.plugins[name] = p

    @classmethod
    def tearDownClass(cls):
        for p in cls.plugins.values():
            p.stop()

    def info(self, addr, creds):
        """The status code of GetPluginInfo over `creds` (None: plaintext)."""
        target = "localhost:" + addr.rsplit(":", 1)[1]
        ch = grpc.secure_channel(target, creds) if creds else \
            grpc.insecure_channel(target)
        with ch:
            try:
                pbg.ProtectionPluginStub(ch).GetPluginInfo(
                    pb.GetPluginInfoRequest(protocol_major=1), timeout=10)
            except grpc.RpcError as e:
                return e.code()
        return grpc.StatusCode.OK

    def test_caller_with_a_client_certificate_from_the_ca_gets_in(self):
        for name, p in self.plugins.items():
            with self.subTest(plugin=name):
                creds = grpc.ssl_channel_credentials(
                    read(CA[1]), read(CLIENT[0]), read(CLIENT[1]))
                self.assertEqual(self.info(p.addr, creds), grpc.StatusCode.OK)

    def test_callers_without_the_cas_certificate_are_refused(self):
        for name, p in self.plugins.items():
            with self.subTest(plugin=name):
                none = grpc.ssl_channel_credentials(read(CA[1]))
                rogue = grpc.ssl_channel_credentials(
                    read(CA[1]), read(ROGUE_CLIENT[0]), read(ROGUE_CLIENT[1]))
                for what, creds in (("no client certificate", none),
                                    ("another CA's certificate", rogue),
                                    ("plaintext", None)):
                    self.assertEqual(self.info(p.addr, creds),
                                     grpc.StatusCode.UNAVAILABLE, what)

    def check(self, name, tls_args):
        """smaug-plugin-check over TLS: (exit status, output)."""
        _, _, type_, rid = [p for p in PLUGINS if p[0] == name][0]
        r = subprocess.run(
            [os.path.join(ARGS.bin, "smaug-plugin-check"),
             self.plugins[name].addr, "--type", type_, "--resource-id", rid,
             "--bank", "file://%s/tls-banks/chk-%s" % (TMP, name),
             "--outside-bank", "file://%s/tls-outside-%s" % (TMP, name),
             "--param", "delay_ms=300"] + tls_args,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            timeout=120)
        return r.returncode, r.stdout

    def test_checker_passes_over_mutual_tls(self):
        for name in self.plugins:
            with self.subTest(plugin=name):
                rc, out = self.check(name, [
                    "--tls-ca", CA[1], "--tls-cert", CLIENT[1], "--tls-key",
                    CLIENT[0]])
                self.assertEqual(rc, 0, out)
                self.assertIn("PASS bank-root", out)
                self.assertIn("PASS reflection", out)
                self.assertIn(" 0 failed", out)

    def test_checker_without_a_client_certificate_is_refused(self):
        for name in self.plugins:
            with self.subTest(plugin=name):
                rc, out = self.check(name, ["--tls-ca", CA[1]])
                self.assertEqual(rc, 1, out)
                self.assertIn("FAIL info", out)

    def test_group_readable_key_is_refused_with_a_message(self):
        key = os.path.join(TMP, "loose.key")
        shutil.copyfile(SERVER[0], key)
        os.chmod(key, 0o640)
        for name, binary, _, _ in PLUGINS:
            with self.subTest(plugin=name):
                p = Plugin(binary, [
                    "--listen", "127.0.0.1:0", "--tls-cert", SERVER[1],
                    "--tls-key", key])
                self.assertEqual(p.wait_exit(), 2, p.text())
                self.assertIn("group- or world-readable", p.text())
                self.assertIn(key, p.text())


if __name__ == "__main__":
    result = unittest.main(argv=[sys.argv[0]] + _rest, exit=False,
                           verbosity=2).result
    failed = len(result.failures) + len(result.errors)
    print("%d passed, %d failed" % (result.testsRun - failed, failed))
    sys.exit(1 if failed or not result.testsRun else 0)
