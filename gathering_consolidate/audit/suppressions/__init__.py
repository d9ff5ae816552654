"""Family `SUP`: hygiene of inline suppressions (`# consolidate: ignore[RULE] reason`)."""

from .suppression_without_reason import SuppressionWithoutReason
from .unused_suppression import UnusedSuppression

CHECKS = (UnusedSuppression, SuppressionWithoutReason)
