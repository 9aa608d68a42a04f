"""The tables. Every row belongs to an issuer, so one deployment can serve many later.

Times are integer seconds since the epoch (the same NumericDate the tickets use), which compare
the same way on SQLite and PostgreSQL. Nothing here holds a phone number, a customer ref, a call
code or a client address in clear: only keyed hashes, the four-digit hint and random handles.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

_ISSUER = 255
_ID = 64
_HASH = 64  # base64url of a 32-byte HMAC is 43 characters

signing_keys = Table(
    "signing_keys", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("kid", String(_HASH), primary_key=True),
    Column("x", String(_HASH), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("retired_at", BigInteger),
    Column("revoked_at", BigInteger),
    Column("compromised_at", BigInteger),
)

agents = Table(
    "agents", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("agent_id", String(_ID), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("department", String(128)),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    # The name and the department in Chinese, where they differ from the given ones (0012).
    Column("name_zh_hant", String(128)),
    Column("name_zh_hans", String(128)),
    Column("department_zh_hant", String(128)),
    Column("department_zh_hans", String(128)),
)

reasons = Table(
    "reasons", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("code", String(_ID), primary_key=True),
    Column("text_en", Text, nullable=False),
    Column("text_zh_hant", Text, nullable=False),
    Column("text_zh_hans", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
)

# The one deletable link from a company's customer ref (keyed hash) to the ticket handle.
customers = Table(
    "customers", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("ref_hash", String(_HASH), primary_key=True),
    Column("handle", String(_ID), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
)

tickets = Table(
    "tickets", metadata,
    Column("ticket_id", String(_ID), primary_key=True),
    Column("issuer_id", String(_ISSUER), nullable=False),
    Column("kid", String(_HASH), nullable=False),
    Column("token", Text, nullable=False),
    Column("agent_id", String(_ID), nullable=False),
    Column("reason", String(_ID), nullable=False),
    Column("handle", String(_ID)),
    Column("dst", String(4)),
    Column("phone_hash", String(_HASH)),
    Column("code_hash", String(_HASH), nullable=False),
    Column("word_id", String(_ID), nullable=False),
    Column("word_choices", Text, nullable=False),  # JSON list of word ids, in display order
    Column("state", String(24), nullable=False),
    Column("cause", String(32)),  # why a failed ticket failed
    Column("claimed_by", String(_HASH)),  # keyed hash of the claim cookie
    Column("issued_at", BigInteger, nullable=False),
    Column("code_until", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("connected_at", BigInteger),
    Column("updated_at", BigInteger, nullable=False),
    Column("claim_lang", String(16)),  # the check page's language at the claim (0012)
    Index("ix_tickets_issuer_issued", "issuer_id", "issued_at"),
    Index("ix_tickets_handle", "handle"),
    Index("ix_tickets_agent_issued", "issuer_id", "agent_id", "issued_at"),  # the console (0012)
)

# A code is unique among live tickets across the whole deployment: the primary key makes that
# safe across processes; a row whose ticket has expired may be taken over by a new ticket.
live_codes = Table(
    "live_codes", metadata,
    Column("code_hash", String(_HASH), primary_key=True),
    Column("ticket_id", String(_ID), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
)

# The append-only event record; ``idx`` is contiguous per issuer (the audit log's leaf index)
# and ``body`` is the event's canonical JSON, exactly the bytes that become the Merkle leaf.
events = Table(
    "events", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("type", String(48), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("ticket_id", String(_ID)),
    Column("body", LargeBinary, nullable=False),
    Index("ix_events_ticket", "ticket_id"),
)

# Events written by requests wait here until the integrator (store/integrator.py) gives them
# their leaf index in ``events`` and the audit log's tree (migration 0008; ADR 0012). ``seq``
# orders the queue: a ticket's own events are always in causal order in it (each step of a
# ticket holds the ticket's row lock, so the next step's event is numbered after the last one
# committed); unrelated events may be numbered in another order than they commit.
event_queue = Table(
    "event_queue", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("issuer_id", String(_ISSUER), nullable=False),
    Column("type", String(48), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("ticket_id", String(_ID)),
    Column("body", LargeBinary, nullable=False),
    Index("ix_event_queue_ticket", "ticket_id"),
)

# Failed lookups, counted per minute for the whole deployment (logged once the minute is over,
# by housekeeping) and per client (a keyed hash of the address the shell passes) for the
# per-client limit. The deployment's count is spread over ``shard`` rows (a failed lookup adds
# to one at random) so that failures from unrelated customers do not queue on one row's lock.
failed_lookups = Table(
    "failed_lookups", metadata,
    Column("minute", BigInteger, primary_key=True),
    Column("shard", Integer, primary_key=True, autoincrement=False),
    Column("count", Integer, nullable=False),
    Column("logged", Boolean, nullable=False),
)

client_failures = Table(
    "client_failures", metadata,
    Column("client_hash", String(_HASH), primary_key=True),
    Column("minute", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
)

# The global circuit breaker on failed lookups: one row per deployment.
breaker = Table(
    "breaker", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("open_until", BigInteger, nullable=False),
    Column("tripped_at", BigInteger, nullable=False),
)

# --- the verifier app (migration 0002) ----------------------------------------------------------

# Issuer API keys: shown once, stored as SHA-256 of their 256-bit secret (a fast hash is right
# for random secrets); ``scopes`` is a comma-separated subset of issue,status,enrol,reveal.
api_keys = Table(
    "api_keys", metadata,
    Column("key_id", String(_ID), primary_key=True),
    Column("issuer_id", String(_ISSUER), nullable=False),
    Column("name", String(128), nullable=False),
    Column("secret_hash", String(_HASH), nullable=False),
    Column("scopes", String(128), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger),
)

# Agents' console passwords, hashed with Argon2id.
agent_credentials = Table(
    "agent_credentials", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("agent_id", String(_ID), primary_key=True),
    Column("password_hash", Text, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Scam reports from the failure page: what the caller asked for, the number that called (the
# scammer's, normalised) and an optional short text. Nothing that identifies the reporter.
scam_reports = Table(
    "scam_reports", metadata,
    Column("report_id", String(_ID), primary_key=True),
    Column("issuer_id", String(_ISSUER), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("caller_number", String(32)),
    Column("scripts", String(255), nullable=False),
    Column("text", Text),
    Index("ix_scam_reports_issuer_at", "issuer_id", "at"),
)

# --- the audit log (migration 0003; spec/audit-log.md) ------------------------------------------

# Every complete node of each issuer's RFC 6962 tree: (level, idx) is the subtree of the leaves
# [idx * 2^level, (idx + 1) * 2^level); level 0 holds the leaf hashes. Written as leaves are
# appended (about two rows per leaf), so appends, roots and proofs read O(log n) rows.
# On SQLite it is a WITHOUT ROWID table: an append then dirties one B-tree instead of two.
log_nodes = Table(
    "log_nodes", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
    sqlite_with_rowid=False,  # one B-tree, not a rowid table plus its key index
)

# Every checkpoint the log signed (the latest is also kept in <data dir>/log/checkpoint).
log_checkpoints = Table(
    "log_checkpoints", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("root", LargeBinary(32), nullable=False),
    Column("note", Text, nullable=False),
    Column("signed_at", BigInteger, nullable=False),
)

# --- witness cosignatures (migration 0004; spec/audit-log.md §7) ---------------------------------

# Every cosignature a configured witness returned for one of the log's checkpoints (the log
# signs one checkpoint per size, so issuer and size name it), as its note signature line.
witness_cosignatures = Table(
    "witness_cosignatures", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("size", BigInteger, primary_key=True, autoincrement=False),
    Column("witness", String(255), primary_key=True),  # the witness's key name
    Column("key_id", BigInteger, primary_key=True, autoincrement=False),
    Column("signature", Text, nullable=False),  # "— <name> base64(key ID ‖ time ‖ signature)"
    Column("cosigned_at", BigInteger, nullable=False),  # the cosignature's own timestamp
    Column("received_at", BigInteger, nullable=False),
)

# --- enrolled proofs (migration 0005; spec/enrolled-proofs.md) ----------------------------------

# What a customer enrolled, by handle: ``kind`` is "totp" or "phrase"; ``sealed`` is the secret or
# phrase under AES-256-GCM (callproof.sealing), with the issuer, handle and kind as associated
# data. A TOTP enrolment is pending until ``confirmed``; ``last_step`` is the last time step
# accepted (a code is never accepted twice) and ``failures`` counts wrong confirmation codes.
enrolled_proofs = Table(
    "enrolled_proofs", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("handle", String(_ID), primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("sealed", LargeBinary, nullable=False),
    Column("confirmed", Boolean, nullable=False),
    Column("last_step", BigInteger),
    Column("failures", Integer, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# Single-use enrolment tokens (15 minutes): only SHA-256 of the 256-bit token is kept.
enrollment_tokens = Table(
    "enrollment_tokens", metadata,
    Column("token_hash", String(_HASH), primary_key=True),
    Column("issuer_id", String(_ISSUER), nullable=False),
    Column("handle", String(_ID), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("used_at", BigInteger),
    Index("ix_enrollment_tokens_handle", "handle"),
)

# Recent reveals, for the per-agent and per-customer hourly caps (rows older than an hour are
# pruned as new ones are written; the events are the lasting record).
reveals = Table(
    "reveals", metadata,
    Column("reveal_id", Integer, primary_key=True, autoincrement=True),
    Column("issuer_id", String(_ISSUER), nullable=False),
    Column("at", BigInteger, nullable=False),
    Column("agent_id", String(_ID), nullable=False),
    Column("handle", String(_ID)),
    Column("ticket_id", String(_ID), nullable=False),
    Index("ix_reveals_agent", "issuer_id", "agent_id", "at"),
    Index("ix_reveals_handle", "issuer_id", "handle", "at"),
)

# --- the fraud desk (migration 0006; spec/fraud-desk.md) -----------------------------------------

# The fraud team's own sign-in, separate from the agents': Argon2id password hashes.
desk_users = Table(
    "desk_users", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("user_id", String(_ID), primary_key=True),
    Column("name", String(128), nullable=False),
    Column("password_hash", Text, nullable=False),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)

# The webhook's outbox: one row per alert event (``idx``) to push, kept until it is delivered or
# given up, so nothing is lost across restarts. A due row is claimed by moving
# ``next_attempt_at`` a lease ahead under the writer lock; ``last_status`` is the last HTTP status
# (0: no answer — refused, timed out, unreachable).
webhook_deliveries = Table(
    "webhook_deliveries", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("idx", BigInteger, primary_key=True, autoincrement=False),
    Column("queued_at", BigInteger, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", BigInteger, nullable=False),
    Column("delivered_at", BigInteger),
    Column("gave_up", Boolean, nullable=False),
    Column("last_status", Integer),
    Index("ix_webhook_deliveries_due", "issuer_id", "delivered_at", "gave_up",
          "next_attempt_at"),
)

# How far the outbox has queued each issuer's alert events: every alert with a larger index is
# still to be queued.
webhook_cursor = Table(
    "webhook_cursor", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("last_idx", BigInteger, nullable=False),
)

# --- idempotent issuing (migration 0007; callproof.idempotency) --------------------------------

# One row per Idempotency-Key of an API key, for 24 h: ``key_hash`` is a keyed hash of (issuer,
# API key id, idempotency key); ``request_hash`` the SHA-256 of the request's canonical JSON.
# ``attempt`` names the request that holds the row (until ``lease_until`` while ``ticket_id`` is
# empty); ``sealed_code`` is the ticket's call code under AES-256-GCM (nonce ‖ ciphertext), the
# one part of the response the ticket row cannot give back.
idempotency_keys = Table(
    "idempotency_keys", metadata,
    Column("key_hash", String(_HASH), primary_key=True),
    Column("issuer_id", String(_ISSUER), nullable=False),
    Column("api_key", String(_ID), nullable=False),
    Column("request_hash", String(_HASH), nullable=False),
    Column("attempt", String(_HASH), nullable=False),
    Column("ticket_id", String(_ID)),
    Column("sealed_code", LargeBinary),
    Column("created_at", BigInteger, nullable=False),
    Column("lease_until", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_idempotency_keys_expires", "expires_at"),
)

# --- background duties and shared ticket keys (migration 0009; store/leases.py, ADR 0011) ------

# Which worker process runs each background duty now (integration, checkpoints, witnesses,
# alerts, housekeeping): one row per (issuer, duty). ``expires_at`` is the DATABASE's clock in
# milliseconds, so hosts whose clocks differ agree on when a lease ends; ``generation`` goes up
# each time the lease changes hands (a fencing token). No row is ever locked for longer than the
# one statement that takes or renews it.
leases = Table(
    "leases", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("name", String(_ID), primary_key=True),
    Column("holder", String(128), nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("generation", BigInteger, nullable=False),
)

# The private half of each ACTIVE ticket signing key, PKCS#8 PEM encrypted under
# CALLPROOF_KEY_PASSPHRASE (unencrypted only in a demo without one), so that every instance of a
# deployment signs with the key ``signing_keys`` says is active, without copying files (ADR 0011).
# A key's row is deleted when the key is retired or revoked: nothing signs with it again.
signing_key_secrets = Table(
    "signing_key_secrets", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("kid", String(_HASH), primary_key=True),
    Column("pem", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# At most one active signing key per issuer, even when two operators rotate at once.
Index("uq_signing_keys_one_active", signing_keys.c.issuer_id, unique=True,
      sqlite_where=signing_keys.c.status == "active",
      postgresql_where=signing_keys.c.status == "active")

# --- sign-ins (migration 0010; hardening issue 13 items 6–8) ------------------------------------

# Staff sign-ins (agents on the console, users of the fraud desk), kept here, not in the cookie:
# the browser holds only a random token, stored as its SHA-256. Signing out, a new password or
# ``disable`` deletes the rows, which ends the sign-in on its next request everywhere. ``data`` is
# what the page keeps for the sign-in (the console's recent calls with their codes), never in the
# cookie.
sign_ins = Table(
    "sign_ins", metadata,
    Column("token_hash", String(_HASH), primary_key=True),
    Column("issuer_id", String(_ISSUER), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("user_id", String(_ID), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("data", Text),
    Index("ix_sign_ins_user", "issuer_id", "kind", "user_id"),
)

# Scam reports filed per client address and per network (keyed hashes) per epoch hour, for the
# report form's limits (migration 0011; hardening issue 13 item 3).
report_counts = Table(
    "report_counts", metadata,
    Column("key_hash", String(_HASH), primary_key=True),
    Column("hour", BigInteger, primary_key=True),
    Column("count", Integer, nullable=False),
)

# --- the voice line (migration 0013; spec/voice-line.md) ---------------------------------------

# Where the voice line puts a verified customer back through to: the agent's own line (a SIP URI
# or an E.164 number) and the agent's team queue, for when the agent is on another call.
agent_routes = Table(
    "agent_routes", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("agent_id", String(_ID), primary_key=True),
    Column("transfer_target", String(255)),
    Column("queue", String(255)),
    Column("updated_at", BigInteger, nullable=False),
)

# A webhook platform's call between its requests, keyed by the keyed hash of its call id: the
# step, the language and the ticket id; never a number, a code or a key pressed.
voice_calls = Table(
    "voice_calls", metadata,
    Column("call_hash", String(_HASH), primary_key=True),
    Column("state", Text, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Index("ix_voice_calls_expires", "expires_at"),
)

# --- the web app's secrets (migration 0014; hardening issue 13 item 7) --------------------------

# One secret per purpose (today: ``session``, the key the web app signs its session cookie with),
# so that no file in the data dir — the hash key least of all — lets anyone mint a session. Held
# as an Ed25519 PKCS#8 PEM encrypted under CALLPROOF_KEY_PASSPHRASE, like the signing keys
# (unencrypted only in a demo without one); the secret is an HKDF of the key's private bytes.
app_secrets = Table(
    "app_secrets", metadata,
    Column("issuer_id", String(_ISSUER), primary_key=True),
    Column("name", String(_ID), primary_key=True),
    Column("pem", Text, nullable=False),
    Column("created_at", BigInteger, nullable=False),
)

# --- networks staff signed in from (migration 0015) --------------------------------------------

# The networks (IPv4 /24, IPv6 /48) each account signed in from, and when last: from one of them
# the per-account limit on failed sign-ins does not refuse (callproof.sign_ins). Named by a keyed
# hash of the kind, the account id and the network, so the table holds no address and no id.
sign_in_networks = Table(
    "sign_in_networks", metadata,
    Column("name_hash", String(_HASH), primary_key=True),
    Column("last_at", BigInteger, nullable=False),
    Index("ix_sign_in_networks_last_at", "last_at"),
)
