"""The actor runtime: realm supervisors, session actors, mailboxes and event buses.

Imports point down only: ``surfaces`` -> ``actors`` -> ``meerkat``. The public
entry point is :func:`open_service`, which yields a :class:`SessionService`.
"""

from .bus import EventBus as EventBus, Subscription as Subscription
from .mailbox import Mailbox as Mailbox, Reply as Reply
from .realm import HostOptions as HostOptions, RealmStatistics as RealmStatistics, RealmSupervisor as RealmSupervisor
from .host import Host as Host, HostStatistics as HostStatistics, open_host as open_host, open_service as open_service
from .service import ConfigView as ConfigView, SessionService as SessionService, TurnStream as TurnStream
from .session import SessionActor as SessionActor

__all__ = ["EventBus", "Subscription", "Mailbox", "Reply", "HostOptions", "RealmStatistics", "RealmSupervisor",
           "ConfigView", "SessionService", "TurnStream", "Host", "HostStatistics", "open_host", "open_service",
           "SessionActor"]
