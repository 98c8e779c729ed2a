"""smaug-plugin-network: the protection plugin for `smaug.network` resources.

It protects the network descriptors of the sample cloud
(`<cloud>/projects/<project>/networks/<id>.json`, see docs/sample-cloud.md)
by copying them into the bank, restores them under a new id, and deletes
them from the bank. It is written in Python on Debian's grpcio and protobuf
to show that a plugin needs nothing from smaug but the .proto files: health
and server reflection, which Debian does not package for Python, are
implemented here too.
"""

VERSION = "0.1.0"
