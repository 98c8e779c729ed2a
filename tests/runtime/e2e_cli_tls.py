#!/usr/bin/python3
"""e2e_cli_tls.py - the `smaug` CLI's TLS and token options, against a
Python grpcio server (a generic gRPC server written here) that serves
grpc.health.v1.Health/Check with mutual TLS and records the request
headers it receives. Certificates come from tls_certs.sh (openssl).

  * --tls-ca / --tls-cert / --tls-key (and SMAUG_TLS_CA, SMAUG_TLS_CERT,
    SMAUG_TLS_KEY) reach the server; without a client certificate, or
    trusting another CA, the CLI exits 3 (unreachable);
  * the token from SMAUG_TOKEN, --token-file or --token arrives as
    "authorization: Bearer TOKEN";
  * the token is never printed: not when the server refuses the call with
    UNAUTHENTICATED, not in --help, not for a token file that others can
    read (refused, exit 2).

usage: e2e_cli_tls.py --smaug PATH --certs-sh PATH [unittest arguments]
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from concurrent import futures

import grpc

ARGS = None
TOKEN = "s3cr3t-t0ken-for-the-test"


class HealthServer:
    """Health/Check with mTLS; records each call's metadata."""

    def __init__(self, certs, refuse=False):
        self.seen = []
        self.lock = threading.Lock()
        self.refuse = refuse

        def check(request, context):
            with self.lock:
                self.seen.append(dict(context.invocation_metadata()))
            if self.refuse:
                context.abort(grpc.StatusCode.UNAUTHENTICATED,
                              "token not accepted")
            return b"\x08\x01"  # HealthCheckResponse{status: SERVING}

        handler = grpc.method_handlers_generic_handler(
            "grpc.health.v1.Health",
            {"Check": grpc.unary_unary_rpc_method_handler(check)})
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        self.server.add_generic_rpc_handlers((handler,))

        def read(name):
            with open(os.path.join(certs, name), "rb") as f:
                return f.read()
        creds = grpc.ssl_server_credentials(
            [(read("server.key"), read("server.pem"))],
            root_certificates=read("ca.pem"),
            require_client_auth=True)
        self.port = self.server.add_secure_port("127.0.0.1:0", creds)
        self.server.start()

    def stop(self):
        self.server.stop(0)


class CliTls(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="smaug-cli-tls.")
        cls.certs = os.path.join(cls.tmp, "certs")
        os.mkdir(cls.certs, 0o700)
        subprocess.run(["sh", ARGS.certs_sh, cls.certs], check=True)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp)

    def setUp(self):
        self.srv = HealthServer(self.certs)
        self.addCleanup(self.srv.stop)

    def c(self, name):
        return os.path.join(self.certs, name)

    def smaug(self, *args, env=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("SMAUG_")}
        e.update(env or {})
        p = subprocess.run(
            [ARGS.smaug, "--timeout", "10000"] + list(args) +
            ["health", "127.0.0.1:%d" % self.srv.port],
            env=e, capture_output=True, text=True, timeout=60)
        self.assertNotIn(TOKEN, p.stdout + p.stderr, "the token was printed")
        return p

    def mtls_flags(self):
        return ["--tls-ca", self.c("ca.pem"), "--tls-cert",
                self.c("client.pem"), "--tls-key", self.c("client.key")]

    def test_flags_and_token_from_the_environment(self):
        p = self.smaug(*self.mtls_flags(), env={"SMAUG_TOKEN": TOKEN})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.srv.seen[-1].get("authorization"),
                         "Bearer " + TOKEN)

    def test_tls_from_the_environment_and_a_token_file(self):
        tf = os.path.join(self.tmp, "token")
        with open(tf, "w") as f:
            f.write(TOKEN + "\n")
        os.chmod(tf, 0o600)
        p = self.smaug("--token-file", tf, env={
            "SMAUG_TLS_CA": self.c("ca.pem"),
            "SMAUG_TLS_CERT": self.c("client.pem"),
            "SMAUG_TLS_KEY": self.c("client.key")})
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.srv.seen[-1].get("authorization"),
                         "Bearer " + TOKEN)

    def test_token_flag(self):
        p = self.smaug(*self.mtls_flags(), "--token", TOKEN)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(self.srv.seen[-1].get("authorization"),
                         "Bearer " + TOKEN)

    def test_no_token_no_header(self):
        p = self.smaug(*self.mtls_flags())
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertNotIn("authorization", self.srv.seen[-1])

    def test_refused_without_a_client_certificate_or_with_another_ca(self):
        for flags in (["--tls-ca", self.c("ca.pem")],
                      ["--tls-ca", self.c("other-ca.pem"), "--tls-cert",
                       self.c("client.pem"), "--tls-key", self.c("client.key")],
                      []):
            p = self.smaug(*flags, env={"SMAUG_TOKEN": TOKEN})
            self.assertEqual(p.returncode, 3, (flags, p.stderr))
        self.assertEqual(self.srv.seen, [], "a call got through")

    def test_a_refused_token_is_not_printed(self):
        self.srv.refuse = True
        p = self.smaug(*self.mtls_flags(), "-o", "json",
                       env={"SMAUG_TOKEN": TOKEN})
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("UNAUTHENTICATED", p.stderr)

    def test_a_token_file_others_can_read_is_refused(self):
        tf = os.path.join(self.tmp, "open-token")
        with open(tf, "w") as f:
            f.write(TOKEN)
        os.chmod(tf, 0o644)
        p = self.smaug(*self.mtls_flags(), "--token-file", tf)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("readable by its group or others", p.stderr)
        self.assertEqual(self.srv.seen, [])

    def test_help_names_the_options(self):
        e = {k: v for k, v in os.environ.items() if not k.startswith("SMAUG_")}
        e["SMAUG_TOKEN"] = TOKEN
        p = subprocess.run([ARGS.smaug, "--help"], env=e, capture_output=True,
                           text=True, timeout=30)
        self.assertEqual(p.returncode, 0)
        for w in ("--tls-ca", "--tls-cert", "--tls-key", "--token-file",
                  "SMAUG_TOKEN", "SMAUG_TLS_CA"):
            self.assertIn(w, p.stdout)
        self.assertNotIn(TOKEN, p.stdout + p.stderr)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--smaug", required=True)
    ap.add_argument("--certs-sh", required=True)
    ARGS, rest = ap.parse_known_args()
    unittest.main(argv=[sys.argv[0]] + rest, verbosity=2)


if __name__ == "__main__":
    main()
