#!/usr/bin/python3
"""make-seeds.py - writes the seed inputs of fuzz/corpus/<target>/.

    /usr/bin/python3 fuzz/make-seeds.py   (Debian's python3-protobuf)

Seeds are small valid (and a few nearly valid) inputs that lead the fuzzer
into each format; they are committed, so this script only needs running
again when a format changes. Inputs of crashes are added to the corpus by
hand, named crash-<what>, and are never rewritten here. Protobuf seeds are
encoded with the Python classes protoc generates into a temporary folder.
"""
import hashlib
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def plans():
    write("plan", "example", json.dumps({
        "name": "web",
        "resources": [
            {"type": "smaug.project", "id": "proj-1", "name": "Project 1",
             "extra": {}},
            {"type": "smaug.server", "id": "srv-1"},
            {"type": "smaug.volume", "id": "vol-1", "extra": {"size": "8"}}],
        "edges": [{"parent": "smaug.server#srv-1",
                   "child": "smaug.volume#vol-1"}],
        "parameters": {"smaug.volume": {"compress": "true"},
                       "smaug.volume#vol-1": {"level": "3"}}}, indent=1))
    write("plan", "shown", json.dumps({
        "id": "plan-1", "name": "a", "created_at_ms": 1, "updated_at_ms": 2,
        "resources": [{"type": "t", "id": "i", "name": "", "extra": {}}],
        "edges": [], "parameters": {}}))
    write("plan", "unknown-key", '{"name":"x","resources":[{"type":"t",'
          '"idd":"i"}]}')
    write("plan", "bad-ref", '{"name":"x","resources":[{"type":"t","id":"i"}]'
          ',"edges":[{"parent":"t","child":"t#"}]}')
    write("plan", "bad-json", '{"name": "x", "resources": [\n  {"type": ')


def schemas():
    level = ('{"type":"object","properties":{"level":{"type":"integer",'
             '"minimum":0,"maximum":9},"mode":{"enum":["fast","slow"]},'
             '"ratio":{"type":"number","exclusiveMinimum":0},'
             '"name":{"type":"string","minLength":1,"maxLength":4},'
             '"gc":{"type":"boolean"},"tags":{"type":"array"},'
             '"opts":{"type":["object","null"]}},'
             '"required":["level"],"additionalProperties":false}')
    write("schema", "level", b"\x01" + level.encode() +
          b"\nlevel=3\nmode=fast\nratio=0.5\nname=ab\ngc=true\ntags=[1]"
          b"\nopts=null")
    write("schema", "refused", b"\x01" + level.encode() +
          b"\nlevel=12\nmode=medium\nname=\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9")
    write("schema", "additional", b'\x00{"additionalProperties":'
          b'{"type":"integer","exclusiveMaximum":5}}\nx=4\ny=5')
    write("schema", "empty", b"\x00\nanything=goes")
    write("schema", "not-object", b"\x00[1,2]\n")


def manifest_text(doc):
    body = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    doc = dict(doc, sha256=hashlib.sha256(body.encode()).hexdigest())
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def manifests():
    h = hashlib.sha256(b"chunk").hexdigest()
    base = {"format": "smaug-bank-manifest/1", "object": "disk",
            "size": 3 << 20, "chunk_size": 1 << 20,
            "chunks": [{"offset": 0, "length": 1 << 20, "sha256": h},
                       {"offset": 2 << 20, "length": 1 << 20, "sha256": h}]}
    write("manifest", "two-chunks", manifest_text(base))
    write("manifest", "empty", manifest_text(dict(base, size=0, chunks=[])))
    write("manifest", "overlap", manifest_text(dict(base, chunks=[
        {"offset": 0, "length": 1 << 20, "sha256": h},
        {"offset": 1024, "length": 1, "sha256": h}])))
    write("manifest", "bad-checksum",
          manifest_text(base).replace('"size":3145728', '"size":3145729'))


def protos():
    tmp = tempfile.mkdtemp()
    proto = os.path.join(ROOT, "proto")
    files = ["smaug/v1/types.proto", "smaug/v1/plugin.proto",
             "smaug/v1/orchestrator.proto"]
    subprocess.check_call(["protoc", "-I", proto, "--python_out", tmp] + files)
    sys.path.insert(0, tmp)
    from smaug.v1 import orchestrator_pb2 as o, types_pb2 as t

    methods = o.DESCRIPTOR.services_by_name["Orchestrator"].methods
    index = {m.name: i for i, m in enumerate(methods)}

    def resource(rtype, rid, **extra):
        return t.Resource(type=rtype, id=rid, name=rid.upper(), extra=extra)

    cp = o.Checkpoint(id="cp-1", plan_id="plan-1", operation_id="op-1",
                      status=o.CHECKPOINT_STATUS_AVAILABLE, reason="ok",
                      resources=[resource("t.a", "a1", k="v")])
    cp.results.add(resource=resource("t.a", "a1"),
                   status=t.TASK_STATUS_DONE, metadata={"plugin": "fake"})
    ev = o.OperationEvent(sequence=3, operation_id="op-1",
                          kind=o.EVENT_KIND_PROGRESS,
                          resource=resource("t.a", "a1"),
                          activity=t.ACTIVITY_SYNC, attempt=1,
                          progress=t.Progress(done=5, total=10, unit="MiB"))
    answers = {
        "GetCheckpoint": o.GetCheckpointResponse(checkpoint=cp),
        "ListCheckpoints": o.ListCheckpointsResponse(checkpoints=[cp],
                                                     next_page_token="p2"),
        "WatchOperation": o.WatchOperationResponse(event=ev),
        "GetPlan": o.GetPlanResponse(plan=o.Plan(
            id="plan-1", name="web", resources=[resource("t.a", "a1")],
            parameters=o.ParameterSet(entries={
                "t.a": o.Parameters(values={"level": "3"})}))),
        "ListPlugins": o.ListPluginsResponse(plugins=[o.Plugin(
            address="unix:/run/p.sock", health=o.PLUGIN_HEALTH_SERVING)]),
        "GetRestore": o.GetRestoreResponse(restore=o.Restore(
            id="rs-1", checkpoint_id="cp-1",
            status=o.RESTORE_STATUS_SUCCESS)),
    }
    for name, msg in answers.items():
        write("pbjson", name, bytes([index[name]]) + msg.SerializeToString())
    # A string that is not UTF-8, as a server may send it.
    bad = o.GetCheckpointResponse(checkpoint=o.Checkpoint(id="cp-1"))
    raw = bad.SerializeToString().replace(b"cp-1", b"cp\xff1")
    write("pbjson", "invalid-utf8", bytes([index["GetCheckpoint"]]) + raw)

    plan = o.Plan(name="web", resources=[
        resource("t.a", "a1"), resource("t.b", "b1", children="t.a/a1")])
    plan.edges.add(parent_type="t.b", parent_id="b1", child_type="t.a",
                   child_id="a1")
    plan.parameters.entries["t.a"].values["level"] = "3"
    plan.parameters.entries["t.a#a1"].values["mode"] = "fast"
    cycle = o.Plan(name="c", resources=[resource("t.a", "a1"),
                                        resource("t.b", "b1")])
    cycle.edges.add(parent_type="t.a", parent_id="a1", child_type="t.b",
                    child_id="b1")
    cycle.edges.add(parent_type="t.b", parent_id="b1", child_type="t.a",
                    child_id="a1")
    restore = o.RestoreRequest(checkpoint_id="cp-1")
    restore.parameters.entries["t.a"].values["target"] = "x"
    restore.parameters.entries["t.a#r1"].values["force"] = "true"
    requests = [
        ("create-plan", 0, o.CreatePlanRequest(plan=plan)),
        ("create-cycle", 0, o.CreatePlanRequest(plan=cycle)),
        ("update-plan", 1, o.UpdatePlanRequest(plan=o.Plan(
            id="plan-1", name="web", resources=plan.resources,
            parameters=plan.parameters))),
        ("restore", 2, restore),
        ("protect", 3, o.ProtectRequest(plan_id="plan-1")),
    ]
    for name, kind, msg in requests:
        write("request", name, bytes([kind]) + msg.SerializeToString())


if __name__ == "__main__":
    plans()
    schemas()
    manifests()
    protos()
