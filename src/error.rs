//! The provider's one error type, its OpenSSL reason codes and the reason-string table.
//!
//! Every fallible function in the safe modules returns [`Result`]. Only the FFI entry points turn an
//! [`Error`] into something C sees: they raise it on OpenSSL's error stack (through the core
//! `new_error`/`set_error_debug`/`vset_error` upcalls, provider-base(7)) and return 0 or NULL.
//!
//! Reason codes: a PKCS#11 failure uses its `CKR_*` value, as the C providers do, so
//! `openssl errstr` and logs name the token's own return code. Provider-own reasons start at
//! [`OWN_REASON_BASE`], clear of every standard CKR value. Vendor-defined CKR values do not fit
//! OpenSSL's 23-bit reason field and map to [`Reason::VendorCkr`] with the number in the message.

use std::ffi::CStr;
use std::fmt;

use cryptoki::context::Function;
use cryptoki::error::RvError;

/// Result alias used throughout the crate.
pub(crate) type Result<T> = std::result::Result<T, Error>;

/// Everything that can fail inside the provider.
#[derive(Debug)]
pub(crate) enum Error {
    /// A PKCS#11 call returned an error.
    Token { func: Function, rv: RvError },
    /// The PKCS#11 module could not be loaded or initialised, or misbehaved.
    Module(String),
    /// A provider configuration value is invalid.
    Config(String),
    /// A `pkcs11:` URI could not be parsed.
    Uri(String),
    /// Nothing on any token matches what was asked for.
    NotFound(String),
    /// More than one object matches where exactly one is needed.
    Ambiguous(String),
    /// The token needs a login and no PIN source gave a PIN.
    LoginRequired(String),
    /// Login was refused before asking the token (PIN locked, final try, or known bad).
    PinRefused(String),
    /// An `OSSL_PARAM` was of the wrong type or out of range.
    BadParam(String),
    /// An operation, algorithm or parameter combination this provider does not do.
    Unsupported(String),
    /// A libcrypto call failed; its own errors are already queued.
    Openssl(&'static str),
    /// A required pointer argument was NULL.
    NullArg(&'static str),
    /// A Rust panic was caught at the FFI boundary.
    Panic,
    /// Another error with a description of what was being done.
    Context { context: String, source: Box<Error> },
}

/// Provider-own reason codes (above every standard CKR value).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub(crate) enum Reason {
    Module = OWN_REASON_BASE + 1,
    Config,
    Uri,
    NotFound,
    Ambiguous,
    LoginRequired,
    PinRefused,
    BadParam,
    Unsupported,
    Openssl,
    NullArg,
    Panic,
    VendorCkr,
    UnknownCkr,
}

/// First provider-own reason code.
pub(crate) const OWN_REASON_BASE: u32 = 0x10000;

/// Short texts OpenSSL prints for the provider-own reasons.
const OWN_REASONS: &[(Reason, &CStr)] = &[
    (Reason::Module, c"PKCS#11 module error"),
    (Reason::Config, c"invalid provider configuration"),
    (Reason::Uri, c"invalid pkcs11 URI"),
    (Reason::NotFound, c"no matching object"),
    (Reason::Ambiguous, c"more than one matching object"),
    (Reason::LoginRequired, c"login required"),
    (Reason::PinRefused, c"login refused"),
    (Reason::BadParam, c"invalid parameter"),
    (Reason::Unsupported, c"unsupported"),
    (Reason::Openssl, c"libcrypto call failed"),
    (Reason::NullArg, c"NULL argument"),
    (Reason::Panic, c"internal error"),
    (Reason::VendorCkr, c"vendor-defined PKCS#11 error"),
    (Reason::UnknownCkr, c"unknown PKCS#11 error"),
];

impl Error {
    /// Wraps the error with a description of what was being done.
    pub(crate) fn context(self, context: impl fmt::Display) -> Error {
        Error::Context {
            context: context.to_string(),
            source: Box::new(self),
        }
    }

    /// The innermost error (below all context wrappers).
    pub(crate) fn root(&self) -> &Error {
        match self {
            Error::Context { source, .. } => source.root(),
            other => other,
        }
    }

    /// The PKCS#11 return code, if this is (or wraps) a token error.
    pub(crate) fn token_rv(&self) -> Option<RvError> {
        match self.root() {
            Error::Token { rv, .. } => Some(*rv),
            _ => None,
        }
    }

    /// The reason code raised on the OpenSSL error stack.
    pub(crate) fn reason(&self) -> u32 {
        match self.root() {
            Error::Token { rv, .. } => match rv {
                RvError::VendorDefined(_) => Reason::VendorCkr as u32,
                RvError::UnknownErrorCode(_) => Reason::UnknownCkr as u32,
                known => ckr_code(*known)
                    .and_then(|code| u32::try_from(code).ok())
                    .unwrap_or(Reason::UnknownCkr as u32),
            },
            Error::Module(_) => Reason::Module as u32,
            Error::Config(_) => Reason::Config as u32,
            Error::Uri(_) => Reason::Uri as u32,
            Error::NotFound(_) => Reason::NotFound as u32,
            Error::Ambiguous(_) => Reason::Ambiguous as u32,
            Error::LoginRequired(_) => Reason::LoginRequired as u32,
            Error::PinRefused(_) => Reason::PinRefused as u32,
            Error::BadParam(_) => Reason::BadParam as u32,
            Error::Unsupported(_) => Reason::Unsupported as u32,
            Error::Openssl(_) => Reason::Openssl as u32,
            Error::NullArg(_) => Reason::NullArg as u32,
            Error::Panic => Reason::Panic as u32,
            Error::Context { .. } => Reason::Panic as u32, // unreachable: root() unwraps contexts
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Token { func, rv } => {
                write!(f, "C_{func:?} failed: {}", ckr_display(*rv))
            }
            Error::Module(msg)
            | Error::Config(msg)
            | Error::Uri(msg)
            | Error::NotFound(msg)
            | Error::Ambiguous(msg)
            | Error::LoginRequired(msg)
            | Error::PinRefused(msg)
            | Error::BadParam(msg)
            | Error::Unsupported(msg) => f.write_str(msg),
            Error::Openssl(what) => write!(f, "libcrypto call {what} failed"),
            Error::NullArg(what) => write!(f, "NULL {what} passed to the provider"),
            Error::Panic => f.write_str("internal error in the pkcs11 provider (panic caught)"),
            Error::Context { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl From<cryptoki::error::Error> for Error {
    fn from(err: cryptoki::error::Error) -> Error {
        match err {
            cryptoki::error::Error::Pkcs11(rv, func) => Error::Token { func, rv },
            other => Error::Module(format!("PKCS#11 module: {other}")),
        }
    }
}

/// `CKR_*` name of a return code, with the number for vendor-defined and unknown ones.
pub(crate) fn ckr_display(rv: RvError) -> String {
    match rv {
        RvError::VendorDefined(code) => format!("vendor-defined CKR 0x{code:08x}"),
        RvError::UnknownErrorCode(code) => format!("unknown CKR 0x{code:08x}"),
        known => CKR_TABLE
            .iter()
            .find(|(variant, _, _)| *variant == known)
            .map(|(_, _, name)| name.to_string_lossy().into_owned())
            .unwrap_or_else(|| format!("{known:?}")),
    }
}

fn ckr_code(rv: RvError) -> Option<u64> {
    CKR_TABLE
        .iter()
        .find(|(variant, _, _)| *variant == rv)
        .map(|(_, code, _)| *code)
}

/// Every (reason code, text) pair the provider registers through `get_reason_strings`.
pub(crate) fn reason_strings() -> impl Iterator<Item = (u32, &'static CStr)> {
    let ckr = CKR_TABLE
        .iter()
        .filter_map(|(_, code, name)| u32::try_from(*code).ok().map(|c| (c, *name)));
    let own = OWN_REASONS
        .iter()
        .map(|(reason, text)| (*reason as u32, *text));
    ckr.chain(own)
}

/// Standard PKCS#11 return codes (PKCS#11 3.0 §5.1): cryptoki variant, value, name.
/// Generated from cryptoki's own `CK_RV` mapping; a unit test round-trips every row.
const CKR_TABLE: &[(RvError, u64, &CStr)] = &[
    (RvError::Cancel, 0x1, c"CKR_CANCEL"),
    (RvError::HostMemory, 0x2, c"CKR_HOST_MEMORY"),
    (RvError::SlotIdInvalid, 0x3, c"CKR_SLOT_ID_INVALID"),
    (RvError::GeneralError, 0x5, c"CKR_GENERAL_ERROR"),
    (RvError::FunctionFailed, 0x6, c"CKR_FUNCTION_FAILED"),
    (RvError::ArgumentsBad, 0x7, c"CKR_ARGUMENTS_BAD"),
    (RvError::NoEvent, 0x8, c"CKR_NO_EVENT"),
    (
        RvError::NeedToCreateThreads,
        0x9,
        c"CKR_NEED_TO_CREATE_THREADS",
    ),
    (RvError::CantLock, 0xa, c"CKR_CANT_LOCK"),
    (RvError::AttributeReadOnly, 0x10, c"CKR_ATTRIBUTE_READ_ONLY"),
    (
        RvError::AttributeSensitive,
        0x11,
        c"CKR_ATTRIBUTE_SENSITIVE",
    ),
    (
        RvError::AttributeTypeInvalid,
        0x12,
        c"CKR_ATTRIBUTE_TYPE_INVALID",
    ),
    (
        RvError::AttributeValueInvalid,
        0x13,
        c"CKR_ATTRIBUTE_VALUE_INVALID",
    ),
    (RvError::ActionProhibited, 0x1b, c"CKR_ACTION_PROHIBITED"),
    (RvError::DataInvalid, 0x20, c"CKR_DATA_INVALID"),
    (RvError::DataLenRange, 0x21, c"CKR_DATA_LEN_RANGE"),
    (RvError::DeviceError, 0x30, c"CKR_DEVICE_ERROR"),
    (RvError::DeviceMemory, 0x31, c"CKR_DEVICE_MEMORY"),
    (RvError::DeviceRemoved, 0x32, c"CKR_DEVICE_REMOVED"),
    (
        RvError::EncryptedDataInvalid,
        0x40,
        c"CKR_ENCRYPTED_DATA_INVALID",
    ),
    (
        RvError::EncryptedDataLenRange,
        0x41,
        c"CKR_ENCRYPTED_DATA_LEN_RANGE",
    ),
    (RvError::FunctionCanceled, 0x50, c"CKR_FUNCTION_CANCELED"),
    (
        RvError::FunctionNotParallel,
        0x51,
        c"CKR_FUNCTION_NOT_PARALLEL",
    ),
    (
        RvError::FunctionNotSupported,
        0x54,
        c"CKR_FUNCTION_NOT_SUPPORTED",
    ),
    (
        RvError::CurveNotSupported,
        0x140,
        c"CKR_CURVE_NOT_SUPPORTED",
    ),
    (RvError::KeyHandleInvalid, 0x60, c"CKR_KEY_HANDLE_INVALID"),
    (RvError::KeySizeRange, 0x62, c"CKR_KEY_SIZE_RANGE"),
    (
        RvError::KeyTypeInconsistent,
        0x63,
        c"CKR_KEY_TYPE_INCONSISTENT",
    ),
    (RvError::KeyNotNeeded, 0x64, c"CKR_KEY_NOT_NEEDED"),
    (RvError::KeyChanged, 0x65, c"CKR_KEY_CHANGED"),
    (RvError::KeyNeeded, 0x66, c"CKR_KEY_NEEDED"),
    (RvError::KeyIndigestible, 0x67, c"CKR_KEY_INDIGESTIBLE"),
    (
        RvError::KeyFunctionNotPermitted,
        0x68,
        c"CKR_KEY_FUNCTION_NOT_PERMITTED",
    ),
    (RvError::KeyNotWrappable, 0x69, c"CKR_KEY_NOT_WRAPPABLE"),
    (RvError::KeyUnextractable, 0x6a, c"CKR_KEY_UNEXTRACTABLE"),
    (RvError::MechanismInvalid, 0x70, c"CKR_MECHANISM_INVALID"),
    (
        RvError::MechanismParamInvalid,
        0x71,
        c"CKR_MECHANISM_PARAM_INVALID",
    ),
    (
        RvError::ObjectHandleInvalid,
        0x82,
        c"CKR_OBJECT_HANDLE_INVALID",
    ),
    (RvError::OperationActive, 0x90, c"CKR_OPERATION_ACTIVE"),
    (
        RvError::OperationNotInitialized,
        0x91,
        c"CKR_OPERATION_NOT_INITIALIZED",
    ),
    (RvError::PinIncorrect, 0xa0, c"CKR_PIN_INCORRECT"),
    (RvError::PinInvalid, 0xa1, c"CKR_PIN_INVALID"),
    (RvError::PinLenRange, 0xa2, c"CKR_PIN_LEN_RANGE"),
    (RvError::PinExpired, 0xa3, c"CKR_PIN_EXPIRED"),
    (RvError::PinLocked, 0xa4, c"CKR_PIN_LOCKED"),
    (RvError::SessionClosed, 0xb0, c"CKR_SESSION_CLOSED"),
    (RvError::SessionCount, 0xb1, c"CKR_SESSION_COUNT"),
    (
        RvError::SessionHandleInvalid,
        0xb3,
        c"CKR_SESSION_HANDLE_INVALID",
    ),
    (
        RvError::SessionParallelNotSupported,
        0xb4,
        c"CKR_SESSION_PARALLEL_NOT_SUPPORTED",
    ),
    (RvError::SessionReadOnly, 0xb5, c"CKR_SESSION_READ_ONLY"),
    (RvError::SessionExists, 0xb6, c"CKR_SESSION_EXISTS"),
    (
        RvError::SessionReadOnlyExists,
        0xb7,
        c"CKR_SESSION_READ_ONLY_EXISTS",
    ),
    (
        RvError::SessionReadWriteSoExists,
        0xb8,
        c"CKR_SESSION_READ_WRITE_SO_EXISTS",
    ),
    (RvError::SignatureInvalid, 0xc0, c"CKR_SIGNATURE_INVALID"),
    (RvError::SignatureLenRange, 0xc1, c"CKR_SIGNATURE_LEN_RANGE"),
    (
        RvError::TemplateIncomplete,
        0xd0,
        c"CKR_TEMPLATE_INCOMPLETE",
    ),
    (
        RvError::TemplateInconsistent,
        0xd1,
        c"CKR_TEMPLATE_INCONSISTENT",
    ),
    (RvError::TokenNotPresent, 0xe0, c"CKR_TOKEN_NOT_PRESENT"),
    (
        RvError::TokenNotRecognized,
        0xe1,
        c"CKR_TOKEN_NOT_RECOGNIZED",
    ),
    (
        RvError::TokenWriteProtected,
        0xe2,
        c"CKR_TOKEN_WRITE_PROTECTED",
    ),
    (
        RvError::UnwrappingKeyHandleInvalid,
        0xf0,
        c"CKR_UNWRAPPING_KEY_HANDLE_INVALID",
    ),
    (
        RvError::UnwrappingKeySizeRange,
        0xf1,
        c"CKR_UNWRAPPING_KEY_SIZE_RANGE",
    ),
    (
        RvError::UserAlreadyLoggedIn,
        0x100,
        c"CKR_USER_ALREADY_LOGGED_IN",
    ),
    (RvError::UserNotLoggedIn, 0x101, c"CKR_USER_NOT_LOGGED_IN"),
    (
        RvError::UserPinNotInitialized,
        0x102,
        c"CKR_USER_PIN_NOT_INITIALIZED",
    ),
    (RvError::UserTypeInvalid, 0x103, c"CKR_USER_TYPE_INVALID"),
    (
        RvError::UserAnotherAlreadyLoggedIn,
        0x104,
        c"CKR_USER_ANOTHER_ALREADY_LOGGED_IN",
    ),
    (RvError::UserTooManyTypes, 0x105, c"CKR_USER_TOO_MANY_TYPES"),
    (
        RvError::WrappedKeyInvalid,
        0x110,
        c"CKR_WRAPPED_KEY_INVALID",
    ),
    (
        RvError::WrappedKeyLenRange,
        0x112,
        c"CKR_WRAPPED_KEY_LEN_RANGE",
    ),
    (
        RvError::WrappingKeyHandleInvalid,
        0x113,
        c"CKR_WRAPPING_KEY_HANDLE_INVALID",
    ),
    (
        RvError::WrappingKeySizeRange,
        0x114,
        c"CKR_WRAPPING_KEY_SIZE_RANGE",
    ),
    (
        RvError::WrappingKeyTypeInconsistent,
        0x115,
        c"CKR_WRAPPING_KEY_TYPE_INCONSISTENT",
    ),
    (
        RvError::RandomSeedNotSupported,
        0x120,
        c"CKR_RANDOM_SEED_NOT_SUPPORTED",
    ),
    (RvError::RandomNoRng, 0x121, c"CKR_RANDOM_NO_RNG"),
    (
        RvError::DomainParamsInvalid,
        0x130,
        c"CKR_DOMAIN_PARAMS_INVALID",
    ),
    (RvError::BufferTooSmall, 0x150, c"CKR_BUFFER_TOO_SMALL"),
    (
        RvError::SavedStateInvalid,
        0x160,
        c"CKR_SAVED_STATE_INVALID",
    ),
    (
        RvError::InformationSensitive,
        0x170,
        c"CKR_INFORMATION_SENSITIVE",
    ),
    (RvError::StateUnsaveable, 0x180, c"CKR_STATE_UNSAVEABLE"),
    (
        RvError::CryptokiNotInitialized,
        0x190,
        c"CKR_CRYPTOKI_NOT_INITIALIZED",
    ),
    (
        RvError::CryptokiAlreadyInitialized,
        0x191,
        c"CKR_CRYPTOKI_ALREADY_INITIALIZED",
    ),
    (RvError::MutexBad, 0x1a0, c"CKR_MUTEX_BAD"),
    (RvError::MutexNotLocked, 0x1a1, c"CKR_MUTEX_NOT_LOCKED"),
    (RvError::NewPinMode, 0x1b0, c"CKR_NEW_PIN_MODE"),
    (RvError::NextOtp, 0x1b1, c"CKR_NEXT_OTP"),
    (
        RvError::ExceededMaxIterations,
        0x1b5,
        c"CKR_EXCEEDED_MAX_ITERATIONS",
    ),
    (
        RvError::FipsSelfTestFailed,
        0x1b6,
        c"CKR_FIPS_SELF_TEST_FAILED",
    ),
    (
        RvError::LibraryLoadFailed,
        0x1b7,
        c"CKR_LIBRARY_LOAD_FAILED",
    ),
    (RvError::PinTooWeak, 0x1b8, c"CKR_PIN_TOO_WEAK"),
    (RvError::PublicKeyInvalid, 0x1b9, c"CKR_PUBLIC_KEY_INVALID"),
    (RvError::FunctionRejected, 0x200, c"CKR_FUNCTION_REJECTED"),
];

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki::error::Rv;

    #[test]
    fn ckr_table_round_trips_through_cryptoki() {
        for (variant, code, name) in CKR_TABLE {
            let rv = Rv::from(*code);
            assert_eq!(rv, Rv::Error(*variant), "{name:?}");
            assert!(name.to_bytes().starts_with(b"CKR_"));
        }
    }

    #[test]
    fn reason_codes_are_unique_and_fit_openssl() {
        let mut seen = std::collections::HashSet::new();
        for (code, _) in reason_strings() {
            assert!(seen.insert(code), "duplicate reason {code:#x}");
            assert!(
                code > 0 && code < (1 << 23),
                "reason {code:#x} out of range"
            );
        }
    }

    #[test]
    fn token_error_names_the_function_and_code() {
        let err = Error::Token {
            func: Function::Login,
            rv: RvError::PinIncorrect,
        };
        assert_eq!(err.to_string(), "C_Login failed: CKR_PIN_INCORRECT");
        assert_eq!(err.reason(), 0xa0);
        let wrapped = err.context("token 'demo'");
        assert_eq!(
            wrapped.to_string(),
            "token 'demo': C_Login failed: CKR_PIN_INCORRECT"
        );
        assert_eq!(wrapped.reason(), 0xa0);
        assert_eq!(wrapped.token_rv(), Some(RvError::PinIncorrect));
    }

    #[test]
    fn vendor_codes_use_own_reason() {
        let err = Error::Token {
            func: Function::Sign,
            rv: RvError::VendorDefined(0x8000_0042),
        };
        assert_eq!(err.reason(), Reason::VendorCkr as u32);
        assert!(err.to_string().contains("0x80000042"));
    }
}
