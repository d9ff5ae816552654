"""Family `AUT`: auth hazards: bypass switches, timing-unsafe comparisons, unverified JWTs,
hardcoded secrets, and ids whose format will change when users are persisted."""

from .auth_bypass_switch import AuthBypassSwitch
from .hardcoded_secret_default import HardcodedSecretDefault
from .jwt_decode_unverified import JwtDecodeUnverified
from .non_constant_time_compare import NonConstantTimeCompare
from .unstable_id_format import UnstableIdFormat

CHECKS = (
    AuthBypassSwitch,
    NonConstantTimeCompare,
    JwtDecodeUnverified,
    HardcodedSecretDefault,
    UnstableIdFormat,
)
