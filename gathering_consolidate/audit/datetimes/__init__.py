"""Family `DTZ`: naive datetimes (no tzinfo) that break once they meet aware ones or another zone."""

from .naive_now import NaiveNow
from .naive_utcfromtimestamp import NaiveUtcfromtimestamp
from .naive_utcnow import NaiveUtcnow

CHECKS = (NaiveUtcnow, NaiveUtcfromtimestamp, NaiveNow)
