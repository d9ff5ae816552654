"""Family `AUT`: auth hazards: bypass switches, timing-unsafe comparisons, unverified JWTs,
hardcoded secrets, and ids whose format will change when users are persisted."""

from .auth_bypass_switch import AuthBypassSwitch
from .auth_skipped_by_config import AuthSkippedByConfig
from .basic_auth_password_ignored import BasicAuthPasswordIgnored
from .hardcoded_secret_default import HardcodedSecretDefault
from .jwt_decode_unverified import JwtDecodeUnverified
from .non_constant_time_compare import NonConstantTimeCompare
from .open_registration_default import OpenRegistrationDefault
from .password_hash_of_none import PasswordHashOfNone
from .plaintext_password_stored import PlaintextPasswordStored
from .secret_in_repr import SecretInRepr
from .secret_logged import SecretLogged
from .synthesized_identity import SynthesizedIdentity
from .unstable_id_format import UnstableIdFormat

CHECKS = (
    AuthBypassSwitch,
    NonConstantTimeCompare,
    JwtDecodeUnverified,
    HardcodedSecretDefault,
    UnstableIdFormat,
    AuthSkippedByConfig,
    BasicAuthPasswordIgnored,
    SecretInRepr,
    SecretLogged,
    PlaintextPasswordStored,
    OpenRegistrationDefault,
    PasswordHashOfNone,
    SynthesizedIdentity,
)
