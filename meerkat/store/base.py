"""The session store interface every backend implements.

A store keeps sessions (metadata and usage), their transcript rows and their
runs. Its methods are synchronous and may block on disk; the actors call them
from a worker thread unless :attr:`SessionStore.blocking` is False.

Commit model: a run is recorded when it starts (:meth:`SessionStore.begin_run`)
and everything it produced is written in one atomic step when it ends
(:meth:`SessionStore.commit_run`). A process killed at any instant therefore
leaves either the whole run or none of its rows, plus a run record still marked
``running`` that the next process closes as interrupted.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

import msgspec

from ..errors import LeaseLost
from ..events import EventEnvelope
from ..transcript import BlockAssistantMessage, Message, UserMessage, rfc3339_from_ms
from ..usage import Usage
if TYPE_CHECKING:
    from .revisions import ForkRequest, RevisionCommit, TranscriptRewrite
from .eventlog import DEFAULT_EVENT_RETENTION, EventPage, InputRecord, prune_cutoff

__all__ = [
    "RunStatus",
    "SessionRecord",
    "RunRecord",
    "RunCommit",
    "SessionStore",
    "current_owner",
    "host_id",
    "owner_is_alive",
    "apply_begin",
    "apply_commit",
    "LeaseReport",
    "lease_is_stale",
    "interrupted_commit",
    "check_commit_allowed",
    "file_stamp",
    "Renewal",
    "apply_renewal",
    "lease_report",
    "MAX_LIST_LIMIT",
    "CRASH_SEQ_GAP",
    "apply_event_log",
]

RunStatus = Literal["running", "completed", "failed", "interrupted"]

#: How far event seq numbering jumps past a run whose process died: its events
#: were never committed, so their numbers are unknown; jumping keeps any cursor a
#: client holds from matching new, different events.
CRASH_SEQ_GAP = 1_000_000

#: Upper bound on one page of ``list_sessions`` / ``read_messages``.
MAX_LIST_LIMIT = 1000


class SessionRecord(msgspec.Struct, kw_only=True):
    """A session's durable metadata (everything but its transcript rows)."""

    session_id: str
    created_at_ms: int
    updated_at_ms: int
    model: str
    provider: str
    system_prompt: str | None = None
    max_tokens: int | None = None
    provider_params: dict[str, Any] = {}
    labels: dict[str, str] = {}
    instance_id: str | None = None
    budget_max_tokens: int | None = None
    usage: Usage = Usage()
    message_count: int = 0
    last_assistant_text: str | None = None
    last_seq: int = 0
    archived: bool = False
    active_run_id: str | None = None
    #: The highest event seq pruned from the log by retention (see :mod:`.eventlog`).
    event_floor: int = 0
    #: How many events the log holds for the session now.
    event_count: int = 0
    #: The head transcript revision (``r0`` until the first rewrite; see ``store/revisions.py``).
    transcript_revision: str = "r0"
    #: Rewrites committed so far (the head is ``r<revision_count>``).
    revision_count: int = 0
    #: Fork lineage: the session this one was forked from, its revision then, and the rows copied.
    forked_from: str | None = None
    forked_from_revision: str | None = None
    fork_point: int | None = None


class RunRecord(msgspec.Struct, kw_only=True):
    """One run: one user input processed to completion (or not)."""

    run_id: str
    session_id: str
    status: RunStatus
    started_at_ms: int
    owner: str
    prompt: str | list[dict[str, Any]]
    finished_at_ms: int | None = None
    error: str | None = None
    #: The session's last event seq when the run began (to skip past its events after a crash).
    seq_start: int = 0
    #: Wall-clock ms until which the owner holds the session; it renews the lease
    #: while the run lives. 0: no lease (written by an older build; only the
    #: owner's liveness counts then).
    lease_expires_at_ms: int = 0
    #: Where the owner serves this run's live events and interrupts
    #: (``host:port``), and the secret a peer must present; None when it serves none.
    live_endpoint: str | None = None
    live_token: str | None = None
    #: Set by another process asking the owner to interrupt the run (seen when it renews).
    interrupt_requested: bool = False


class RunCommit(msgspec.Struct, kw_only=True):
    """Everything a finished run writes, applied in one transaction."""

    run_id: str
    session_id: str
    status: RunStatus
    messages: list[Message]
    usage: Usage
    last_assistant_text: str | None
    last_seq: int
    finished_at_ms: int
    model: str
    provider: str
    error: str | None = None
    #: The run's events, oldest first, written to the event log with the rows.
    events: list[EventEnvelope] = []
    #: Inputs whose state the run changed (consumed external events), written with it.
    inputs: list[InputRecord] = []
    #: Events the session's log keeps (older ones are pruned with this commit).
    event_retention: int = DEFAULT_EVENT_RETENTION


@dataclass(frozen=True, slots=True)
class LeaseReport:
    """What renewing an owner's leases found: runs it no longer holds, and interrupts asked for."""

    lost: frozenset[str] = field(default_factory=frozenset)
    interrupt_requested: frozenset[str] = field(default_factory=frozenset)


class SessionStore(Protocol):
    """What the realm supervisor and session actors need from storage."""

    #: True when calls may block on I/O (run them in a worker thread).
    blocking: bool
    #: The backend name: ``sqlite``, ``jsonl``, ``memory`` or ``postgres``.
    backend: str

    def create_session(self, record: SessionRecord, messages: list[Message]) -> None:
        """Insert a new session with its initial rows (ValueError if the id exists)."""

    def get_session(self, session_id: str, *, include_archived: bool = False) -> SessionRecord | None:
        """The session, or None if unknown (or archived, unless asked for)."""

    def list_sessions(
        self, *, limit: int, offset: int, labels: dict[str, str] | None = None
    ) -> list[SessionRecord]:
        """Live sessions, most recently updated first, whose labels contain every pair given."""

    def read_messages(self, session_id: str, *, offset: int = 0, limit: int | None = None) -> list[Message]:
        """Transcript rows oldest first (archived sessions included)."""

    def begin_run(self, run: RunRecord) -> SessionRecord:
        """Record a run in flight and return the session as stored now.

        Raises SessionBusy if another run (of any process) is active on the
        session, KeyError if the session does not exist or is archived (maybe
        by another process). The returned record lets
        a caller notice runs committed by other processes since it last looked.
        """

    def commit_run(self, commit: RunCommit) -> SessionRecord:
        """Append the run's rows, update the session, close the run; all or nothing.

        ``commit.session_id`` must be the run's session; KeyError if it does not exist.
        """

    def open_runs(self) -> list[RunRecord]:
        """Runs still marked ``running`` (candidates for crash reconciliation)."""

    def get_run(self, run_id: str) -> RunRecord | None:
        """One run record."""

    def archive_session(self, session_id: str) -> bool:
        """Hide the session from list and read; False if unknown or already archived."""

    def renew_leases(self, owner: str, runs: list[tuple[str, str]], expires_at_ms: int) -> LeaseReport:
        """Extend the leases of ``owner``'s running runs, given as (session_id, run_id), to ``expires_at_ms``.

        Runs that are no longer running or no longer ``owner``'s are reported
        lost (and left alone); runs another process asked to stop are reported too.
        """

    def request_interrupt(self, session_id: str, run_id: str) -> bool:
        """Flag a running run for its owner to interrupt; False if it is not running."""

    def close_stale_run(self, session_id: str, run_id: str, *, now_ms: int, owner_dead: bool, reason: str) -> bool:
        """Close a run as interrupted if it is still running and stale, in one atomic step.

        Stale means its owner is known dead (``owner_dead``, decided by the
        caller) or its lease expired before ``now_ms``. Keeps the user's input
        (see :func:`interrupted_commit`). False when the run is not stale or not running.
        """

    def change_stamp(self, session_id: str) -> tuple[int, ...] | None:
        """A fingerprint that differs after any write that may have changed the session, by any process.

        Cheap (a ``stat`` or two, fine on the event loop). None when no
        trustworthy fingerprint exists: then the caller must read the store.
        """

    def read_events(self, session_id: str, *, after_seq: int, limit: int) -> EventPage | None:
        """Logged events with ``seq > after_seq``, oldest first, at most ``limit``; None if no such session.

        Archived sessions are readable. The page's ``floor`` tells whether
        retention pruned events after the cursor (the caller decides staleness).
        """

    def admit_input(self, record: InputRecord, row: Message | None, *, inbox_capacity: int) -> InputRecord | None:
        """Store a new input, and append ``row`` to the transcript with it (one atomic step).

        Returns the input already stored under the same idempotency key
        instead (nothing written), or None when the new one was stored.
        KeyError if the session is unknown or archived; InboxFull when a
        queued input would exceed ``inbox_capacity`` waiting ones.
        """

    def get_input(self, session_id: str, *, input_id: str | None = None,
                  idempotency_key: str | None = None) -> InputRecord | None:
        """One input by id or by idempotency key."""

    def queued_inputs(self, session_id: str) -> list[InputRecord]:
        """The session's inputs in state ``queued``, in the order they were admitted."""

    def rewrite_transcript(self, rewrite: "TranscriptRewrite") -> tuple[SessionRecord, "RevisionCommit"]:
        """Replace rows of an idle session's head as one new revision, keeping the old one (all or nothing).

        KeyError if the session is unknown or archived, SessionBusy if a run is
        active, RevisionConflict if the head is not the expected one,
        InvalidParams for a range outside the transcript or an unknown revision.
        """

    def list_revisions(self, session_id: str) -> list["RevisionCommit"]:
        """The session's rewrite commits, oldest first."""

    def read_revision(self, session_id: str, revision: str, *, offset: int = 0,
                      limit: int | None = None) -> list[Message] | None:
        """A page of a revision's rows (the head's are the live rows); None if unknown."""

    def fork_session(self, fork: "ForkRequest") -> SessionRecord:
        """Create a session from an idle source's first rows, atomically with checking the source."""

    def close(self) -> None:
        """Release files and connections."""


def apply_begin(record: SessionRecord, run: RunRecord) -> None:
    """Mark ``record`` busy with ``run`` (every backend applies a begin this way).

    The run starts no earlier than the session's last change: a host stamps the
    start before its begin reaches the store, so a begin that waited there (or one
    from a host whose clock is behind) would otherwise seem to start before the run
    that ended just before it. A session's runs are ordered by their starts.
    """
    run.started_at_ms = max(run.started_at_ms, record.updated_at_ms)
    record.active_run_id = run.run_id
    record.updated_at_ms = run.started_at_ms


def apply_commit(record: SessionRecord, commit: RunCommit, message_count: int, run: RunRecord | None) -> None:
    """Fold a commit into the session record and its run record (shared by every backend)."""
    record.usage = commit.usage
    record.message_count = message_count
    if commit.last_assistant_text is not None:
        record.last_assistant_text = commit.last_assistant_text
    record.last_seq = max(record.last_seq, commit.last_seq)
    record.updated_at_ms = max(record.updated_at_ms, commit.finished_at_ms)
    record.model = commit.model
    record.provider = commit.provider
    if record.active_run_id == commit.run_id:
        record.active_run_id = None
    if run is not None:
        run.status = commit.status
        run.finished_at_ms = commit.finished_at_ms
        run.error = commit.error


def apply_event_log(record: SessionRecord, commit: RunCommit) -> int:
    """Count a commit's events into ``record.event_count``; returns how many of the oldest to prune now.

    The caller deletes that many of the session's oldest logged events and
    sets ``record.event_floor`` to the highest seq it deleted.
    """
    total = record.event_count + len(commit.events)
    prune = prune_cutoff(total, commit.event_retention)
    record.event_count = total - prune
    return prune


#: A file's mtime is trusted to tell "unchanged" only once it is older than this
#: (ns): file times are coarse, so two writes within one tick can share an mtime.
SETTLED_NS = 50_000_000


def file_stamp(*paths: str | os.PathLike[str]) -> tuple[int, ...] | None:
    """(inode, size, mtime) of each file, or None if one is missing or was written too recently to trust."""
    stamp: list[int] = []
    newest = 0
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            return None
        stamp += (st.st_ino, st.st_size, st.st_mtime_ns)
        newest = max(newest, st.st_mtime_ns)
    if time.time_ns() - newest < SETTLED_NS:
        return None
    return tuple(stamp)


def check_commit_allowed(run: RunRecord | None, commit: RunCommit) -> None:
    """Refuse a commit for a run that was closed by someone else (its lease was lost).

    A run unknown to the store (a test writing rows directly) may still commit.
    """
    if run is not None and run.status != "running":
        raise LeaseLost(commit.session_id, commit.run_id)


#: What renewing one run's lease found: still held, held but asked to stop, or lost.
Renewal = Literal["held", "asked", "lost"]


def apply_renewal(run: RunRecord | None, owner: str, expires_at_ms: int) -> Renewal:
    """Extend ``run``'s lease in place if ``owner`` still holds it (the same rule in every backend)."""
    if run is None or run.status != "running" or run.owner != owner:
        return "lost"
    run.lease_expires_at_ms = max(run.lease_expires_at_ms, expires_at_ms)
    return "asked" if run.interrupt_requested else "held"


def lease_report(outcomes: dict[str, Renewal]) -> LeaseReport:
    """The report of renewals, by run id."""
    return LeaseReport(lost=frozenset(r for r, o in outcomes.items() if o == "lost"),
                       interrupt_requested=frozenset(r for r, o in outcomes.items() if o == "asked"))


def lease_is_stale(run: RunRecord, *, now_ms: int, owner_dead: bool) -> bool:
    """Whether another process may close ``run``: its owner died, or its lease ran out."""
    return run.status == "running" and (owner_dead or 0 < run.lease_expires_at_ms <= now_ms)


def interrupted_commit(run: RunRecord, record: SessionRecord, *, now_ms: int, reason: str) -> RunCommit:
    """The commit that closes a run its owner never finished: the user's input and an empty,
    cancelled answer, with event numbering jumped past whatever the owner may have sent."""
    created = rfc3339_from_ms(run.started_at_ms)
    rows: list[Message] = [
        UserMessage(content=run.prompt, created_at=created, run_id=run.run_id),
        BlockAssistantMessage(blocks=[], stop_reason="cancelled", created_at=created, run_id=run.run_id),
    ]
    return RunCommit(
        run_id=run.run_id, session_id=run.session_id, status="interrupted", messages=rows,
        usage=record.usage, last_assistant_text=None,
        last_seq=max(record.last_seq, run.seq_start + CRASH_SEQ_GAP),
        finished_at_ms=now_ms, model=record.model, provider=record.provider, error=f"interrupted: {reason}")


def host_id() -> str:
    """The name of this host among the processes sharing a realm: ``RKAT_HOST_ID``, else the hostname.

    Process ids mean something only within one host id: two machines (or two
    containers with their own pid namespaces) serving one database realm must
    have different host ids, or one could take the other's live runs for dead.
    """
    return os.environ.get("RKAT_HOST_ID", "").strip() or socket.gethostname()


def current_owner() -> str:
    """This process as a run owner: ``host_id:pid`` (see :func:`host_id`)."""
    return f"{host_id()}:{os.getpid()}"


def owner_is_alive(owner: str) -> bool:
    """Whether the process that owns a run may still be running.

    An owner with another host id can't be checked and counts as alive; its runs
    are left for that host (or a lease expiry) to close.
    """
    host, _, pid_text = owner.rpartition(":")
    if host != host_id():
        return True
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        return state != b"Z"
    except (OSError, IndexError):
        return True
