"""The work on `smaug.network` resources: checks requests, and protects,
restores and deletes network descriptors.

Protect P copies `<cloud>/projects/<project>/networks/<id>.json` into the
bank section as `network.json` (temp file, fsync, rename, fsync of the
folder) and returns its digest as state. Protect S checks the bank copy
against that state and returns {"sha256", "bytes",
"object_sha256.network.json"} as metadata. Restore S
re-creates the descriptor from the bank under `<id>-r<8 hex digits of the
restore operation id>` and returns that id. Delete S removes the section's
copy. Every function here runs on a job thread and reports failures as
ActivityError with the gRPC status to send.
"""

import errno
import hashlib
import json
import os
import re
import threading
import urllib.parse

import grpc

from . import slog
from .gen import plugin_pb2, types_pb2
from .jobs import ActivityError

TYPE = "smaug.network"
BANK_FILE = "network.json"
SAVED_KEY = "object_sha256." + BANK_FILE
ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}\Z")
MAX_DESCRIPTOR_BYTES = 1 << 20
MAX_DELAY_MS = 600000

OPTIONS_SCHEMA = json.dumps({
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "smaug.network protect parameters",
    "type": "object",
    "properties": {
        "delay_ms": {
            "type": "integer",
            "minimum": 0,
            "maximum": MAX_DELAY_MS,
            "description": "Extra time in milliseconds the activity takes "
                           "before it writes, with progress every 100 ms; "
                           "for trying slow plugins. Default 0.",
        },
    },
}, indent=2)
RESTORE_SCHEMA = OPTIONS_SCHEMA.replace("protect parameters",
                                        "restore parameters")

PROTECT = types_pb2.OPERATION_KIND_PROTECT
RESTORE = types_pb2.OPERATION_KIND_RESTORE
DELETE = types_pb2.OPERATION_KIND_DELETE
PARALLEL = types_pb2.ACTIVITY_PARALLEL
SYNC = types_pb2.ACTIVITY_SYNC


def _invalid(message):
    return ActivityError(grpc.StatusCode.INVALID_ARGUMENT, message)


def check_resource(res, field="resource"):
    """Raises INVALID_ARGUMENT unless `res` is a well-formed smaug.network
    resource; the message names the field."""
    if not res.id:
        raise _invalid("%s.id is required" % field)
    if res.type != TYPE:
        raise _invalid("%s.type: %r is not %s" % (field, res.type, TYPE))
    if not ID_RE.match(res.id):
        raise _invalid("%s.id: %r is not a valid id" % (field, res.id))


# The only directory bank URIs may name (main sets it from --bank-root /
# SMAUG_BANK_ROOT); None: every bank URI is refused.
BANK_ROOT = None


def _denied(message):
    return ActivityError(grpc.StatusCode.PERMISSION_DENIED, message)


def resolve_path(path):
    """The canonical form of `path`, segment by segment as the kernel opens
    it: while segments exist the result is a real path, so a symlink or
    ".." in the next one is resolved against real directories; segments
    that do not exist yet are appended as written. Returns None for a ".."
    below a missing directory (its meaning would depend on what is created
    later). Raises OSError for a segment that is not a directory, a loop or
    no access."""
    out = os.path.abspath("/" if path.startswith("/") else os.getcwd())
    missing = False
    for seg in path.split("/"):
        if seg in ("", "."):
            continue
        if missing:
            if seg == "..":
                return None
            out = os.path.join(out, seg)
            continue
        nxt = os.path.join(out, seg)
        try:
            os.stat(nxt)
        except FileNotFoundError:
            missing = True
            out = nxt
            continue
        out = os.path.realpath(nxt, strict=True)
    return out


def check_bank_root(uri, path):
    """Raises PERMISSION_DENIED, naming `uri`, unless the bank directory
    `path` is BANK_ROOT or under it once resolved (resolve_path). The check
    is made when the request arrives; the root is trusted to its owner."""
    if not BANK_ROOT:
        raise _denied("bank_uri %r is refused: no bank root is configured "
                      "(start the plugin with --bank-root DIR or "
                      "SMAUG_BANK_ROOT)" % uri)
    try:
        root = resolve_path(BANK_ROOT)
        bank = resolve_path(path)
    except OSError as e:
        raise _denied("bank_uri %r is outside --bank-root %s (%s)" %
                      (uri, BANK_ROOT, e.strerror))
    if root is None or bank is None:
        raise _denied("bank_uri %r is outside --bank-root %s ('..' below a "
                      "directory that does not exist)" % (uri, BANK_ROOT))
    if bank == root or bank.startswith(root.rstrip("/") + "/"):
        return
    raise _denied("bank_uri %r is outside --bank-root %s (it is %s)" %
                  (uri, BANK_ROOT, bank))


def _bank_root(uri):
    if not uri:
        raise _invalid("bank_uri is required")
    u = urllib.parse.urlsplit(uri)
    if u.scheme != "file":
        raise _invalid("bank_uri: unsupported scheme %r (only file://)" %
                       u.scheme)
    if u.netloc not in ("", "localhost") or not u.path.startswith("/"):
        raise _invalid("bank_uri: %r is not a local absolute file:// URI" %
                       uri)
    path = urllib.parse.unquote(u.path)
    check_bank_root(uri, path)
    return path


def _section(section):
    if not section:
        raise _invalid("bank_section is required")
    if section.startswith("/"):
        raise _invalid("bank_section: %r must be relative" % section)
    if "\0" in section or ".." in section.split("/"):
        raise _invalid("bank_section: %r must not contain '..'" % section)
    return section


# The delay_ms of a request without that parameter (main sets it from
# --delay-ms / SMAUG_SAMPLE_DELAY_MS).
DEFAULT_DELAY_MS = "0"


class Request:
    """A checked ActivityRequest with the values the work needs."""

    def __init__(self, req, activity, cloud):
        op = req.operation
        if not op.id:
            raise _invalid("operation.id is required")
        if op.kind not in (PROTECT, RESTORE, DELETE):
            raise _invalid("operation.kind is required")
        if req.activity not in (types_pb2.ACTIVITY_UNSPECIFIED, activity):
            raise _invalid("activity: %s sent to %s" % (
                types_pb2.Activity.Name(req.activity),
                "ParallelActivity" if activity == PARALLEL
                else "SyncActivity"))
        if not req.HasField("resource"):
            raise _invalid("resource is required")
        check_resource(req.resource)
        self.req = req
        self.kind = op.kind
        self.activity = activity
        self.id = req.resource.id
        self.bank = os.path.join(_bank_root(req.bank_uri),
                                 _section(req.bank_section))
        self.bank_file = os.path.join(self.bank, BANK_FILE)
        self.key = req.idempotency_key or "%s/%s/%s/%s" % (
            op.id, TYPE, self.id, "parallel" if activity == PARALLEL
            else "sync")
        delay = req.parameters.get("delay_ms", DEFAULT_DELAY_MS)
        if not delay.isdigit() or int(delay) > MAX_DELAY_MS:
            raise _invalid("parameters[delay_ms]: %r is not a number of "
                           "milliseconds up to %d" % (delay, MAX_DELAY_MS))
        self.delay_s = int(delay) / 1000.0
        self.cloud_dir = None
        if self.kind in (PROTECT, RESTORE):
            project = req.resource.extra.get("project", "")
            if project and not ID_RE.match(project):
                raise _invalid("resource.extra[project]: %r is not a valid "
                               "id" % project)
            if not cloud:
                raise ActivityError(grpc.StatusCode.FAILED_PRECONDITION,
                                    "no cloud directory: start the plugin "
                                    "with --cloud DIR or SMAUG_CLOUD")
            if not project:
                # Network ids are unique across the cloud (see
                # docs/sample-cloud.md), so a caller that does not know the
                # project, such as smaug-plugin-check, still finds it.
                project = _find_project(cloud, self.id)
            self.cloud_dir = os.path.join(cloud, "projects", project,
                                          "networks")
        if self.kind == RESTORE:
            digits = "".join(c for c in op.id.lower()
                             if c in "0123456789abcdef")
            if len(digits) < 8:
                raise _invalid("operation.id: %r has fewer than 8 hex digits "
                               "for the restored id" % op.id)
            self.new_id = "%s-r%s" % (self.id, digits[:8])
            if not ID_RE.match(self.new_id):
                raise _invalid("resource.id: %r is too long to restore" %
                               self.id)


def _find_project(cloud, network_id):
    """The project whose networks/ folder holds `network_id`."""
    root = os.path.join(cloud, "projects")
    try:
        projects = sorted(os.listdir(root))
    except OSError as e:
        raise _os_error(e, root)
    for project in projects:
        if os.path.exists(os.path.join(root, project, "networks",
                                       network_id + ".json")):
            return project
    raise ActivityError(grpc.StatusCode.NOT_FOUND,
                        "resource.id: network %r is in no project under %s "
                        "(and resource.extra[project] is not set)"
                        % (network_id, root))


def _os_error(e, what):
    """Maps an OSError to the status the orchestrator acts on."""
    code = {
        errno.ENOENT: grpc.StatusCode.NOT_FOUND,
        errno.EACCES: grpc.StatusCode.PERMISSION_DENIED,
        errno.EPERM: grpc.StatusCode.PERMISSION_DENIED,
        errno.ENOSPC: grpc.StatusCode.RESOURCE_EXHAUSTED,
        errno.EDQUOT: grpc.StatusCode.RESOURCE_EXHAUSTED,
    }.get(e.errno, grpc.StatusCode.INTERNAL)
    return ActivityError(code, "%s: %s" % (what, e.strerror or e))


def _progress(done, total, message):
    return types_pb2.Progress(done=done, total=total, unit="bytes",
                              message=message)


def _read(path, what):
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_DESCRIPTOR_BYTES + 1)
    except OSError as e:
        raise _os_error(e, "%s %s" % (what, path))
    if len(data) > MAX_DESCRIPTOR_BYTES:
        raise ActivityError(grpc.StatusCode.FAILED_PRECONDITION,
                            "%s %s is larger than %d bytes" %
                            (what, path, MAX_DESCRIPTOR_BYTES))
    return data


def _parse(data, what):
    try:
        doc = json.loads(data)
    except ValueError as e:
        raise ActivityError(grpc.StatusCode.FAILED_PRECONDITION,
                            "%s is not valid JSON: %s" % (what, e))
    if not isinstance(doc, dict):
        raise ActivityError(grpc.StatusCode.FAILED_PRECONDITION,
                            "%s is not a JSON object" % what)
    return doc


_TEMP_RE = re.compile(r"\.tmp-(\d+)-\d+$")


def clean_temps(folder):
    """Removes the temporary files of write_atomic ("<name>.tmp-<pid>-<tid>")
    that a killed plugin left in `folder`: those whose process is gone. A
    live process may still be writing its own (this one's included).
    Returns the removed names."""
    removed = []
    try:
        names = os.listdir(folder)
    except FileNotFoundError:
        return removed
    for name in names:
        m = _TEMP_RE.search(name)
        if m is None:
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # alive
        except ProcessLookupError:
            pass
        except (PermissionError, OverflowError):
            continue  # someone else's, alive
        try:
            os.unlink(os.path.join(folder, name))
            removed.append(name)
        except FileNotFoundError:
            pass
    return removed


def makedirs_private(path):
    """Creates folder `path` and its missing parents with mode 0700 (an
    existing folder is kept as it is). os.makedirs gives its mode to the
    last folder only."""
    parent = os.path.dirname(path)
    if parent != path and not os.path.isdir(parent):
        makedirs_private(parent)
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not os.path.isdir(path):
            raise


def write_atomic(path, data, mode=0o644):
    """Writes `data` to `path` so that readers see the old file or the whole
    new one, never a part: temp file, fsync, rename, fsync of the folder.
    The file gets `mode` (less the umask)."""
    folder = os.path.dirname(path)
    tmp = "%s.tmp-%d-%d" % (path, os.getpid(), threading.get_ident())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dfd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


def _delay(r, job, total):
    """The optional slow part, with a progress update every 100 ms."""
    left = r.delay_s
    while left > 0:
        job.progress(_progress(0, total, "working"))
        step = min(left, 0.1)
        job.sleep(step)
        left -= step


def _digest(data):
    return {"sha256": hashlib.sha256(data).hexdigest(),
            "bytes": str(len(data))}


def protect_parallel(r, job):
    """Copies the descriptor into the bank; state is its digest (JSON)."""
    src = os.path.join(r.cloud_dir, r.id + ".json")
    job.progress(_progress(0, 0, "reading " + src))
    data = _read(src, "network descriptor")
    doc = _parse(data, "network descriptor " + src)
    if doc.get("id", r.id) != r.id:
        raise ActivityError(grpc.StatusCode.FAILED_PRECONDITION,
                            "network descriptor %s has id %r" %
                            (src, doc.get("id")))
    _delay(r, job, len(data))
    job.check()
    try:
        # The bank is private to its owner: folders 0700, files 0600.
        makedirs_private(r.bank)
        write_atomic(r.bank_file, data, 0o600)
    except OSError as e:
        raise _os_error(e, "writing " + r.bank_file)
    job.progress(_progress(len(data), len(data), "saved " + BANK_FILE))
    digest = _digest(data)
    return plugin_pb2.ParallelResult(
        state=json.dumps(digest, sort_keys=True).encode(),
        message="saved %d bytes" % len(data))


def protect_sync(r, job):
    """Checks the bank copy against the state P returned."""
    try:
        want = json.loads(r.req.state)
        want = {"sha256": str(want["sha256"]), "bytes": str(want["bytes"])}
    except (ValueError, TypeError, KeyError):
        raise _invalid("state: not the state ParallelActivity returned")
    _delay(r, job, int(want["bytes"]) if want["bytes"].isdigit() else 0)
    data = _read(r.bank_file, "bank copy")
    got = _digest(data)
    if got != want:
        raise ActivityError(grpc.StatusCode.FAILED_PRECONDITION,
                            "bank copy %s does not match: sha256 %s, want %s"
                            % (r.bank_file, got["sha256"], want["sha256"]))
    job.progress(_progress(len(data), len(data), "verified"))
    # The claim smaug checkpoint verify and smaugd's restore check apply to
    # a plain file in the section (docs/bank.md, "What a checkpoint must
    # hold").
    got[SAVED_KEY] = got["sha256"]
    return plugin_pb2.SyncResult(metadata=got, message="verified")


def restore_sync(r, job):
    """Re-creates the descriptor from the bank under the new id."""
    data = _read(r.bank_file, "bank copy")
    saved = r.req.saved_metadata.get("sha256")
    if saved and hashlib.sha256(data).hexdigest() != saved:
        raise ActivityError(grpc.StatusCode.FAILED_PRECONDITION,
                            "bank copy %s does not match the checkpoint's "
                            "sha256 %s" % (r.bank_file, saved))
    doc = _parse(data, "bank copy " + r.bank_file)
    doc["id"] = r.new_id
    out = (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()
    _delay(r, job, len(out))
    dst = os.path.join(r.cloud_dir, r.new_id + ".json")
    job.check()
    try:
        try:
            with open(dst, "rb") as f:
                existing = f.read(MAX_DESCRIPTOR_BYTES + 1)
        except FileNotFoundError:
            existing = None
        if existing is not None and existing != out:
            raise ActivityError(grpc.StatusCode.FAILED_PRECONDITION,
                                "%s already exists with other content" % dst)
        # What a killed run of this restore left goes first.
        for name in clean_temps(r.cloud_dir):
            slog.log("info", "removed a temporary file of a killed restore",
                     path=os.path.join(r.cloud_dir, name))
        if existing is None:
            os.makedirs(r.cloud_dir, exist_ok=True)
            write_atomic(dst, out)
    except OSError as e:
        raise _os_error(e, "writing " + dst)
    job.progress(_progress(len(out), len(out), "restored " + r.new_id))
    return plugin_pb2.SyncResult(restored_id=r.new_id, metadata=_digest(out),
                                 message="restored as " + r.new_id)


def delete_sync(r, job):
    """Removes the section's copy; a missing copy is already deleted."""
    _delay(r, job, 0)
    job.check()
    try:
        try:
            os.unlink(r.bank_file)
            gone = "deleted"
        except FileNotFoundError:
            gone = "already deleted"
        try:
            os.rmdir(r.bank)  # only when nothing else lives there
        except OSError:
            pass
    except OSError as e:
        raise _os_error(e, "deleting " + r.bank_file)
    job.progress(_progress(1, 1, gone))
    return plugin_pb2.SyncResult(message=gone)


# (operation kind, activity) -> work. Missing pairs are not implemented.
WORK = {
    (PROTECT, PARALLEL): protect_parallel,
    (PROTECT, SYNC): protect_sync,
    (RESTORE, SYNC): restore_sync,
    (DELETE, SYNC): delete_sync,
}
