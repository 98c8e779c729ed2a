"""tokens.py - what the suites that run smaugd with --auth-tokens share:
making tokens with `smaugd token add` and calling a unary method with
one, getting the status instead of an exception."""

import subprocess


def token_cmd(smaugd, *args, timeout=30):
    """Runs `smaugd token ARGS...`; returns its output, stripped."""
    r = subprocess.run([smaugd, "token", *args], capture_output=True,
                       text=True, timeout=timeout)
    if r.returncode != 0:
        raise AssertionError(f"smaugd token {args}: {r.stderr}")
    return r.stdout.strip()


def unary(grpc, stub, method, req, metadata, timeout):
    """Calls `method` on `stub`; returns (code, details, response), the
    response None unless the code is OK."""
    try:
        r = getattr(stub, method)(req, metadata=metadata, timeout=timeout)
        return grpc.StatusCode.OK, "", r
    except grpc.RpcError as e:
        return e.code(), e.details() or "", None
