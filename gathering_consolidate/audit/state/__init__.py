"""Family `MEM`: in-memory state: process-lifetime containers used as stores or caches, that grow
without bound (MEM001) or hold what must survive a restart or be shared across instances
(MEM002), and registrations on module-level objects repeated on every request (MEM003)."""

from .per_request_registration import PerRequestRegistration
from .restart_critical_state import RestartCriticalState
from .unbounded_in_memory_store import UnboundedInMemoryStore

CHECKS = (UnboundedInMemoryStore, RestartCriticalState, PerRequestRegistration)
