"""Write the hand-made seed inputs of each kept corpus (``fuzz/corpus/<target>/seed-*``).

Every seed is produced by the library itself: tickets signed with :func:`encode_ticket`, notes
with :func:`note.sign_note` and :func:`note.cosign`, codes from :func:`new_code`, and the
bundles by a real deployment's ``AuditLog.export`` after real calls were issued and checked.
The fuzzers add their own finds (files named by their SHA-1) beside these.

    python fuzz/seeds.py            # rewrite the seed-* files (tickets get new ids each time)
"""

from __future__ import annotations

import json
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from callproof import CheckFlow, FixedClock, Issuer, init_data_dir, new_client_token  # noqa: E402
from callproof.audit.log import AuditLog  # noqa: E402
from callproof.deployment import Deployment  # noqa: E402
from callproof.errors import CheckFailed  # noqa: E402
from callproof.protocol.canonical import canonical_json  # noqa: E402
from callproof.protocol.clock import to_epoch  # noqa: E402
from callproof.protocol.codes import display_code, new_code  # noqa: E402
from callproof.protocol.jws import b64url_encode, sign_compact  # noqa: E402
from callproof.protocol.ticket import CallTicket, encode_ticket  # noqa: E402
from callproof.tlog import merkle, note  # noqa: E402
from callproof.tlog.proof import format_tlog_proof  # noqa: E402
from fuzz import _targets as T  # noqa: E402

CORPUS = ROOT / "fuzz" / "corpus"


def _ticket(**changes: object) -> CallTicket:
    iat = to_epoch(T.NOW) - 60
    base = CallTicket(iss=T.ISSUER, jti="t_01JD4M7Q2W", iat=iat, exp=iat + 900,
                      agent_id="a-002", agent_name="Mei Lin", reason="order_delivery",
                      cdh=b64url_encode(bytes(range(32))))
    return replace(base, **changes)  # type: ignore[arg-type]


def _header(**members: object) -> bytes:
    return canonical_json({"alg": "Ed25519", "kid": T.TICKET_SIGNERS["active"].kid,
                           "typ": "callproof+jwt", **members})


def ticket_seeds(real: list[str]) -> dict[str, bytes]:
    active, retired, revoked = (T.TICKET_SIGNERS[n] for n in ("active", "retired", "revoked"))
    now = to_epoch(T.NOW)
    seeds = {
        "valid": encode_ticket(_ticket(), active),
        "valid-all-claims": encode_ticket(_ticket(
            agent_name="陳美玲 Chan Mei-ling", methods=("code", "word", "app"), department="客服",
            subject="cust_7f3a", dst="4321"), active),
        "retired-before": encode_ticket(_ticket(iat=now - 1200, exp=now + 300), retired),
        "retired-after": encode_ticket(_ticket(), retired),
        "revoked": encode_ticket(_ticket(), revoked),
        "expired": encode_ticket(_ticket(iat=now - 3600, exp=now - 2700), active),
        "future": encode_ticket(_ticket(iat=now + 600, exp=now + 1200), active),
        "too-long": encode_ticket(_ticket(exp=now + 7200), active),
        "wrong-issuer": encode_ticket(_ticket(iss="other.example"), active),
        "header-alg": sign_compact(_header(alg="EdDSA"), canonical_json(_ticket().to_claims()),
                                   active.sign),
        "header-crit": sign_compact(_header(crit=["exp"]),
                                    canonical_json(_ticket().to_claims()), active.sign),
        "claims-extra": sign_compact(_header(), canonical_json(
            {**_ticket().to_claims(), "zzz": {"nested": [1, True, None]}}), active.sign),
        "claims-bad-types": sign_compact(_header(), canonical_json(
            {**_ticket().to_claims(), "iat": True, "mth": "code"}), active.sign),
    }
    for i, token in enumerate(real[:2]):
        seeds[f"real-unknown-key-{i}"] = token
    return {k: v.encode("ascii") for k, v in seeds.items()}


def code_seeds() -> dict[str, bytes]:
    codes = [new_code() for _ in range(4)]
    fullwidth = str.maketrans("0123456789", "０１２３４５６７８９")
    typo = codes[3][:8] + str((int(codes[3][8]) + 1) % 10)
    texts = {
        "plain": codes[0],
        "grouped": display_code(codes[1]),
        "fullwidth-ideographic-space": display_code(codes[2]).translate(fullwidth)
        .replace(" ", "\u3000"),
        "dashes-dots": f"{codes[0][:3]}-{codes[0][3:6]}.{codes[0][6:]}",
        "mixed-separators": f" {codes[1][:3]}・{codes[1][3:6]}—{codes[1][6:]}\t",
        "circled-superscript": "\u2460" + codes[2][1:].replace("2", "\u00b2"),
        "typo": display_code(typo),
        "eight-digits": codes[3][:8],
        "letters": codes[3][:4] + "O" + codes[3][5:],
        "arabic-indic": "٠١٢٣٤٥٦٧٨",
    }
    return {k: v.encode("utf-8") for k, v in texts.items()}


def note_seeds() -> dict[str, bytes]:
    log = T.LOG_SIGNER
    leaves = [canonical_json({"v": 1, "type": "agent.added", "iss": T.ISSUER, "at": 1_790_000_000
                              + i, "data": {"agent_id": f"a-00{i}"}}) for i in range(5)]
    hashes = [merkle.leaf_hash(b) for b in leaves]
    root = merkle.root_hash(hashes)
    cp = note.Checkpoint(T.LOG_NAME, len(leaves), root)
    signed = note.sign_note(cp.to_text(), [log])
    cosigs = [note.cosign(cp.to_text(), name, key, timestamp=1_790_000_100)
              for name, key in T.WITNESS_KEYS.items()]
    cosigned = note.add_signatures(signed, cosigs)
    other = note.Signer(T.LOG_NAME + "-mirror", T._private("callproof fuzz other key"))
    subtree = merkle.subtree_hasher(hashes)
    seeds = {
        "checkpoint": signed,
        "checkpoint-cosigned": cosigned,
        "checkpoint-extensions": note.sign_note(
            replace(cp, extensions=("ext/one 1", "ext/two ✓")).to_text(), [log]),
        "checkpoint-empty-tree": note.sign_note(
            note.Checkpoint(T.LOG_NAME, 0, merkle.EMPTY_ROOT).to_text(), [log]),
        "two-signers": note.sign_note(cp.to_text(), [other, log]),
        "plain-note": note.sign_note("Hello, world.\nline two\n", [log]),
        "tlog-proof": format_tlog_proof(3, merkle.inclusion_proof(3, len(leaves), subtree),
                                        cosigned, extra=leaves[3]),
        "tlog-proof-no-extra": format_tlog_proof(0, merkle.inclusion_proof(0, len(leaves),
                                                                           subtree), signed),
        "vkey-log": T.LOG_VERIFIER.to_vkey() + "\n",
        "vkey-witness": T.WITNESS_VERIFIERS[0].to_vkey() + "\n",
    }
    return {k: v.encode("utf-8") for k, v in seeds.items()}


def bundle_seeds() -> tuple[dict[str, bytes], list[str]]:
    """Two real bundles (a quiet day, and one with a revoked key) and two real tickets."""
    witnesses = "".join(v.to_vkey() + "\n" for v in T.WITNESS_VERIFIERS).encode()
    seeds: dict[str, bytes] = {}
    tokens: list[str] = []
    for name in ("calls", "revoked-key"):
        with tempfile.TemporaryDirectory() as tmp:
            clock = FixedClock(T.NOW)
            init_data_dir(Path(tmp) / "data", now=clock.now())
            dep = Deployment.open(Path(tmp) / "data", clock=clock)
            try:
                issuer, flow = Issuer(dep), CheckFlow(dep)
                for i in range(2):
                    call = issuer.issue(agent_id="a-002", reason="order_delivery")
                    tokens.append(call.ticket)
                    if i == 0:
                        step = flow.lookup(call.code, token := new_client_token())
                        try:  # one of the choices: right (verified) or wrong (failed)
                            flow.choose_word(step.ticket_id, token, step.choices[0].id)
                        except CheckFailed:
                            pass
                    clock.advance(seconds=11)
                if name == "revoked-key":
                    from callproof import Admin

                    admin = Admin(dep)
                    old = admin.keys()[0].kid
                    admin.rotate_key()
                    clock.advance(seconds=5)
                    admin.revoke_key(old, compromised_at=clock.now() - timedelta(seconds=8))
                log = AuditLog(dep)
                out = Path(tmp) / "bundle"
                signed = log.export(out)
                text, _ = note.split_note(signed.note)
                cosigs = [note.cosign(text, w, key, timestamp=to_epoch(clock.now()))
                          for w, key in T.WITNESS_KEYS.items()]
                (out / "checkpoint").write_text(
                    note.add_signatures((out / "checkpoint").read_text("utf-8"), cosigs),
                    "utf-8")
                files = {n: (out / n).read_bytes() for n in T.BUNDLE_FILES}
            finally:
                dep.store.close()
        seeds[f"bundle-{name}"] = T.pack_bundle(files, witnesses)
    seeds["bundle-no-witnesses"] = seeds["bundle-calls"].rsplit(T.SEPARATOR, 1)[0]
    return seeds, tokens


def _edit(packed: bytes, kind: str, change: Callable[[dict[str, Any]], None]) -> bytes:
    """A bundle whose first line of event type ``kind`` is changed (and written canonically
    again, so that only the change is wrong)."""
    parts = packed.split(T.SEPARATOR)
    lines = parts[0].splitlines(keepends=True)
    i = next(i for i, line in enumerate(lines) if json.loads(line)["type"] == kind)
    event = json.loads(lines[i])
    change(event)
    lines[i] = json.dumps(event, ensure_ascii=False, sort_keys=True,
                          separators=(",", ":")).encode() + b"\n"
    return T.SEPARATOR.join([b"".join(lines), *parts[1:]])


def regressions(bundles: dict[str, bytes]) -> dict[str, dict[str, bytes]]:
    """Inputs that crashed the library before its fix (see tests/test_fuzz_corpus.py)."""
    deep = b"[" * 3000
    calls = bundles["bundle-calls"]
    parts = calls.split(T.SEPARATOR)
    jwks = json.loads(parts[2])
    jwks["keys"][0]["created_at"] = 10**20
    far_key = T.SEPARATOR.join([parts[0], parts[1], json.dumps(jwks).encode(), *parts[3:]])
    leaves = [deep, canonical_json({"v": 1})]
    cp = note.Checkpoint(T.LOG_NAME, 2, merkle.root_hash([merkle.leaf_hash(b) for b in leaves]))
    proof = format_tlog_proof(
        0, merkle.inclusion_proof(0, 2, merkle.subtree_hasher(
            [merkle.leaf_hash(b) for b in leaves])), note.sign_note(cp.to_text(), [T.LOG_SIGNER]),
        extra=deep)
    return {
        "ticket": {
            "deep-header": (b64url_encode(deep[:2000]) + ".e30." + "A" * 86).encode(),
        },
        "note": {"deep-proof-entry": proof.encode()},
        "bundle": {
            "type-not-text": _edit(calls, "agent.added", lambda e: e.update(type=[])),
            "at-text": _edit(calls, "ticket.claimed", lambda e: e.update(at="1")),
            "at-far-future": _edit(calls, "ticket.issued", lambda e: e.update(at=10**15)),
            "deep-line": T.SEPARATOR.join([deep + b"\n" + parts[0], *parts[1:]]),
            "deep-jwks": T.SEPARATOR.join([parts[0], parts[1], deep, *parts[3:]]),
            "key-time-far": far_key,
        },
    }


def main() -> None:
    bundles, tokens = bundle_seeds()
    regress = regressions(bundles)
    for target, seeds in (("ticket", ticket_seeds(tokens)), ("code", code_seeds()),
                          ("note", note_seeds()), ("bundle", bundles)):
        folder = CORPUS / target
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("seed-*"):
            old.unlink()
        for name, data in seeds.items():
            (folder / f"seed-{name}").write_bytes(data)
            T.TARGETS[target](data)  # every seed passes its own check
        for name, data in regress.get(target, {}).items():
            (folder / f"regress-{name}").write_bytes(data)
            T.TARGETS[target](data)
        print(f"{target}: {len(seeds)} seeds, {len(regress.get(target, {}))} regressions")


if __name__ == "__main__":
    main()
