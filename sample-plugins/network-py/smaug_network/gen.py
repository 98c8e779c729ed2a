"""Loads the Python stubs that the build generates from the .proto files.

The build writes them into `<share>/network-py/gen` (never into the source
tree). The health and reflection stubs live under the package path
`grpc/...`, which is also the name of the grpcio package itself: grpcio is a
regular package, so its `__path__` is extended with the generated folder,
the same way the grpcio-health-checking wheel installs into `grpc.health`.
"""

import os
import sys

GEN_DIR = os.environ.get("SMAUG_PY_GEN") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "gen")

if not os.path.isdir(os.path.join(GEN_DIR, "smaug")):
    raise ImportError("generated stubs not found in %s (build the project)" %
                      GEN_DIR)
if GEN_DIR not in sys.path:
    sys.path.insert(0, GEN_DIR)

import grpc  # noqa: E402

_grpc_gen = os.path.join(GEN_DIR, "grpc")
if _grpc_gen not in grpc.__path__:
    grpc.__path__.append(_grpc_gen)

from grpc.health.v1 import health_pb2, health_pb2_grpc  # noqa: E402
from grpc.reflection.v1 import reflection_pb2 as refl_v1_pb2  # noqa: E402
from grpc.reflection.v1 import reflection_pb2_grpc as refl_v1_grpc  # noqa: E402
from grpc.reflection.v1alpha import reflection_pb2 as refl_v1alpha_pb2  # noqa: E402
from grpc.reflection.v1alpha import reflection_pb2_grpc as refl_v1alpha_grpc  # noqa: E402
from smaug.v1 import plugin_pb2, plugin_pb2_grpc, types_pb2  # noqa: E402

__all__ = ["GEN_DIR", "health_pb2", "health_pb2_grpc", "refl_v1_pb2",
           "refl_v1_grpc", "refl_v1alpha_pb2", "refl_v1alpha_grpc",
           "plugin_pb2", "plugin_pb2_grpc", "types_pb2"]
