#!/usr/bin/env python3
"""An agency's client for popgate, in Python with grpcio: Lookup, Verify, a bulk
VerifyStream, and a change watcher (Follow + WatchChanges with a resume point) over mTLS.

    pip install -r examples/python/requirements.txt
    cargo run --release -- serve --dev            # in another terminal
    python3 examples/python/popgate_client.py --dev-dir popgate-dev --citizen-id 0010...

The gRPC code is generated from proto/ at start-up (grpc_tools), so this file needs nothing
from the Rust crate: it is what an agency's developer writes from the proto alone.
"""
import argparse
import os
import sys
import tempfile

import grpc
from grpc_tools import protoc


def generate(proto_root):
    """Compiles gateway.proto into a temporary package and imports it."""
    out = tempfile.mkdtemp(prefix="popgate-py-")
    include = os.path.join(os.path.dirname(protoc.__file__), "_proto")
    rc = protoc.main([
        "grpc_tools.protoc",
        f"-I{proto_root}",
        f"-I{include}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        os.path.join(proto_root, "popgate/v1/gateway.proto"),
    ])
    if rc != 0:
        sys.exit(f"protoc failed ({rc})")
    sys.path.insert(0, out)
    from popgate.v1 import gateway_pb2, gateway_pb2_grpc  # noqa: E402
    return gateway_pb2, gateway_pb2_grpc


def channel(addr, ca, cert, key):
    with open(ca, "rb") as f:
        root = f.read()
    with open(cert, "rb") as f:
        chain = f.read()
    with open(key, "rb") as f:
        private = f.read()
    creds = grpc.ssl_channel_credentials(root_certificates=root, private_key=private,
                                         certificate_chain=chain)
    # The dev server certificate names "localhost"; connect by IP, check that name.
    return grpc.secure_channel(addr, creds, options=[("grpc.ssl_target_name_override", "localhost")])


def moved(pb, current, full):
    """The record with its current address moved back and forth, so each run changes it."""
    rec = pb.Citizen()
    rec.CopyFrom(full)
    rec.current_address = ("Số 2 Tràng Tiền, Phường Tràng Tiền, Quận Hoàn Kiếm, Hà Nội"
                           if current.current_address.startswith("Số 1") else
                           "Số 1 Tràng Tiền, Phường Tràng Tiền, Quận Hoàn Kiếm, Hà Nội")
    return rec


def watch_until_change(stub, pb, field_mask_pb2, after_seq, write):
    """Watches from after_seq; once caught up (the first progress event), makes `write` and
    returns the seq of the change event it causes: the resume point to keep."""
    events = stub.WatchChanges(pb.WatchChangesRequest(
        after_seq=after_seq, purpose="health-insurance", request_id="py-watch-1",
        read_mask=field_mask_pb2.FieldMask(paths=["current_address"])))
    wrote = False
    try:
        for e in events:
            if not e.HasField("citizen"):
                # Progress: everything up to e.seq has been sent; a safe place to resume.
                if not wrote:
                    write()
                    wrote = True
                continue
            print(f"WatchChanges: seq {e.seq}: {e.citizen.citizen_id} is now version "
                  f"{e.citizen.version}, changed {list(e.changed_fields)}, "
                  f"current_address {e.citizen.current_address!r}, audit_seq={e.audit_seq}")
            return e.seq
    except grpc.RpcError as err:
        if err.code() == grpc.StatusCode.FAILED_PRECONDITION:
            # The resume point is older than the gateway keeps changes: resync each followed
            # citizen with Lookup, then watch from 0 and keep the first progress seq.
            sys.exit(f"resync needed: {err.details()}")
        raise
    finally:
        events.cancel()
    sys.exit("the change stream ended before the change arrived")


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--addr", default="127.0.0.1:7443")
    p.add_argument("--dev-dir", default="popgate-dev", help="directory made by `popgate serve --dev`")
    p.add_argument("--proto", default=os.path.join(here, "..", "..", "proto"))
    p.add_argument("--citizen-id", required=True, help="an id that exists (serve --dev prints some)")
    p.add_argument("--name", help="the citizen's name, for Verify (default: what Lookup returns)")
    args = p.parse_args()

    pb, rpc = generate(os.path.abspath(args.proto))
    certs = os.path.join(args.dev_dir, "certs")

    def stub(client_id):
        ch = channel(args.addr, os.path.join(certs, "ca.pem"),
                     os.path.join(certs, f"{client_id}.pem"), os.path.join(certs, f"{client_id}.key"))
        return rpc.IdentityGatewayStub(ch)

    # 1. A ministry looks up the fields it may read.
    moh = stub("moh")
    from google.protobuf import field_mask_pb2
    resp = moh.Lookup(pb.LookupRequest(
        citizen_id=args.citizen_id,
        read_mask=field_mask_pb2.FieldMask(paths=["full_name", "date_of_birth"]),
        purpose="health-insurance", request_id="py-lookup-1"))
    print(f"Lookup: {resp.citizen.full_name} born {resp.citizen.date_of_birth}, "
          f"version {resp.citizen.version}, reused={resp.reused}, audit_seq={resp.audit_seq}")
    name = args.name or resp.citizen.full_name
    dob = resp.citizen.date_of_birth

    # A field outside the caller's rights is refused, naming the field.
    try:
        moh.Lookup(pb.LookupRequest(citizen_id=args.citizen_id,
                                    read_mask=field_mask_pb2.FieldMask(paths=["religion"]),
                                    purpose="health-insurance"))
        sys.exit("expected PERMISSION_DENIED for a field outside the rights")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.PERMISSION_DENIED, e
        print(f"Lookup of religion: {e.code().name}: {e.details()}")

    # 2. A telecom verifies a subscriber, name upper-case without diacritics (LOOSE).
    viettel = stub("viettel")
    loose_name = name.upper()
    v = viettel.Verify(pb.VerifyRequest(
        citizen_id=args.citizen_id,
        claims=pb.Claims(full_name=loose_name, date_of_birth=dob),
        purpose="subscriber-verification", request_id="py-verify-1", mode=pb.LOOSE))
    print(f"Verify: matched={v.matched} fields={[(f.field, f.matched) for f in v.fields]}")
    if not v.matched:
        sys.exit("expected the citizen's own name and date of birth to match")

    # 3. Bulk re-verification over one stream: answers come back in order, failures inline.
    def requests():
        for i in range(200):
            claimed = name if i % 10 else name + " X"   # every tenth claim is wrong
            yield pb.VerifyRequest(citizen_id=args.citizen_id,
                                   claims=pb.Claims(full_name=claimed, date_of_birth=dob),
                                   purpose="subscriber-verification", request_id=f"bulk-{i}",
                                   mode=pb.EXACT)
    matched = mismatched = failed = 0
    for i, r in enumerate(viettel.VerifyStream(requests())):
        assert r.request_id == f"bulk-{i}", (r.request_id, i)
        if r.HasField("error"):
            failed += 1
        elif r.matched:
            matched += 1
        else:
            mismatched += 1
    print(f"VerifyStream: {matched} matched, {mismatched} mismatched, {failed} failed")
    if (matched, mismatched, failed) != (180, 20, 0):
        sys.exit("unexpected bulk result")

    # 4. The registry updates the record (optimistic concurrency), and every later lookup
    #    sees the new version at once.
    def channel_for(client_id):
        return channel(args.addr, os.path.join(certs, "ca.pem"),
                       os.path.join(certs, f"{client_id}.pem"), os.path.join(certs, f"{client_id}.key"))
    full = stub("hanoi").Lookup(pb.LookupRequest(citizen_id=args.citizen_id,
                                                 purpose="administrative-procedure")).citizen
    registry = rpc.RegistryAdminStub(channel_for("registry"))
    updated = pb.Citizen()
    updated.CopyFrom(full)
    updated.current_address = "Số 1 Tràng Tiền, Phường Tràng Tiền, Quận Hoàn Kiếm, Hà Nội"
    put = registry.PutCitizen(pb.PutCitizenRequest(citizen=updated, expected_version=full.version))
    print(f"PutCitizen: version {full.version} -> {put.version}, audit_seq={put.audit_seq}")
    try:
        registry.PutCitizen(pb.PutCitizenRequest(citizen=updated, expected_version=full.version))
        sys.exit("expected ABORTED for a stale expected_version")
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.ABORTED, e
    again = moh.Lookup(pb.LookupRequest(citizen_id=args.citizen_id, purpose="health-insurance",
                                        read_mask=field_mask_pb2.FieldMask(paths=["current_address"])))
    assert again.citizen.version == put.version, (again.citizen.version, put.version)
    assert again.citizen.current_address == updated.current_address

    # 5. Change subscriptions: the ministry follows the citizen and keeps its copy current
    #    from a change stream instead of asking again. It stores the seq of every event (or
    #    progress event) it has processed, and resumes from it after a reconnect.
    f = moh.Follow(pb.FollowRequest(citizen_ids=[args.citizen_id], purpose="health-insurance",
                                    request_id="py-follow-1"))
    print(f"Follow: changed={f.changed} following={f.following} audit_seq={f.audit_seq}")
    resume_point = watch_until_change(moh, pb, field_mask_pb2, after_seq=0,
                                      write=lambda: registry.PutCitizen(pb.PutCitizenRequest(
                                          citizen=moved(pb, again.citizen, full), expected_version=put.version)))
    # Reconnecting with the kept seq misses nothing and repeats nothing: here, only progress.
    replay = moh.WatchChanges(pb.WatchChangesRequest(after_seq=resume_point, purpose="health-insurance"))
    first = next(replay)
    assert not first.HasField("citizen") and first.seq == resume_point, first
    replay.cancel()
    print(f"WatchChanges resumed after seq {resume_point}: caught up at once")

    # 6. The operator's statistics.
    stats = rpc.OperatorStub(channel_for("operator")).GetStats(pb.GetStatsRequest())
    print(f"GetStats: {stats.requests} requests, reuse rate {stats.reuse_rate:.2f}, "
          f"{stats.records} records, {len(stats.clients)} clients")
    assert stats.records > 0 and stats.requests > 0
    print("ok")


if __name__ == "__main__":
    main()
