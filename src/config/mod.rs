//! Typed provider configuration, read from the provider section of `openssl.cnf`.
//!
//! The key names and their values are those of latchset/pkcs11-provider
//! (`docs/provider-pkcs11.7.md`), so an existing `openssl.cnf` works unchanged; see the
//! "Config keys" table in DESIGN.md. The module is pure: the FFI layer asks the core for
//! every name in [`Config::KEYS`] (`OSSL_FUNC_core_get_params`, provider-base(7)) and hands
//! the raw strings to [`Config::from_lookup`]. The only I/O is reading a PIN file named by
//! `pkcs11-module-token-pin = file:/path`.
//!
//! A PIN never appears in an error message, in `Debug` output or in a log line.

use std::fmt;
use std::fs::File;
use std::io::{ErrorKind, Read};

use zeroize::Zeroizing;

use crate::uri::UriOptions;

#[cfg(test)]
mod tests;

const MODULE_PATH: &str = "pkcs11-module-path";
const INIT_ARGS: &str = "pkcs11-module-init-args";
const TOKEN_PIN: &str = "pkcs11-module-token-pin";
const LOGIN_BEHAVIOR: &str = "pkcs11-module-login-behavior";
const LOAD_BEHAVIOR: &str = "pkcs11-module-load-behavior";
const CACHE_PINS: &str = "pkcs11-module-cache-pins";
const CACHE_KEYS: &str = "pkcs11-module-cache-keys";
const CACHE_SESSIONS: &str = "pkcs11-module-cache-sessions";
const QUIRKS: &str = "pkcs11-module-quirks";
const BLOCK_OPERATIONS: &str = "pkcs11-module-block-operations";
const ALLOW_EXPORT: &str = "pkcs11-module-allow-export";
const ENCODE_PROVIDER_URI_TO_PEM: &str = "pkcs11-module-encode-provider-uri-to-pem";
const URI_UNKNOWN_ATTRIBUTES: &str = "pkcs11-module-uri-unknown-attributes";
const KEY_FILE_PINS: &str = "pkcs11-module-key-file-pins";
const ASYNC: &str = "pkcs11-module-async";
const ASYNC_WORKERS: &str = "pkcs11-module-async-workers";
const ASYNC_QUEUE: &str = "pkcs11-module-async-queue";
const METRICS_FILE: &str = "pkcs11-module-metrics-file";
const METRICS_INTERVAL: &str = "pkcs11-module-metrics-interval";
/// Largest worker count and queue length accepted for asynchronous signing.
const ASYNC_WORKERS_MAX: usize = 256;
const ASYNC_QUEUE_MAX: usize = 1 << 20;
const ASYNC_QUEUE_DEFAULT: usize = 1024;
const METRICS_INTERVAL_DEFAULT: u64 = 5;

/// Environment variable that overrides `pkcs11-module-path` (as in pkcs11-provider).
const MODULE_PATH_ENV: &str = "PKCS11_PROVIDER_MODULE";

/// Prefix of a `pkcs11-module-token-pin` value that names a file holding the PIN.
const PIN_FILE_PREFIX: &str = "file:";

/// Longest first line accepted from a PIN file. Real PINs are far shorter (tokens report
/// `ulMaxPinLen` well below this); the bound lets us read into one fixed buffer that is never
/// reallocated, so no unzeroized copy of the PIN is left behind on the heap.
const PIN_FILE_MAX_LINE: usize = 4096;

const CACHE_SESSIONS_DEFAULT: usize = 5;
const CACHE_SESSIONS_MAX: usize = 1024;

/// Operation names accepted by `pkcs11-module-block-operations`.
const BLOCKABLE_OPERATIONS: &[&str] = &[
    "digest",
    "signature",
    "keymgmt",
    "store",
    "encoder",
    "decoder",
    "asym-cipher",
    "exchange",
    "kem",
    "keyexch",
    "cipher",
    "mac",
    "kdf",
    "rand",
    // OpenSSL 3.5's opaque symmetric keys; latchset/pkcs11-provider's test suite blocks it
    // along with `cipher` on tokens without symmetric keys.
    "skeymgmt",
];

/// When to call `C_Login` (`pkcs11-module-login-behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LoginBehavior {
    /// Log in only when an operation needs it (private objects, signing).
    #[default]
    Auto,
    /// Log in as soon as a session to the token is opened.
    Always,
    /// Never log in; only public objects are usable.
    Never,
}

/// When to load and initialise the PKCS#11 module (`pkcs11-module-load-behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum LoadBehavior {
    /// On first use, so loading the provider costs nothing for programs that never touch a token.
    #[default]
    Lazy,
    /// Already in `OSSL_provider_init`.
    Early,
}

/// Work-arounds for token bugs (`pkcs11-module-quirks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Quirks {
    /// `no-deinit`: never call `C_Finalize` (SoftHSM2 crashes when finalised at exit).
    pub(crate) no_deinit: bool,
    /// `no-operation-state`: do not use `C_GetOperationState`/`C_SetOperationState`.
    pub(crate) no_operation_state: bool,
    /// `no-allowed-mechanisms`: do not read `CKA_ALLOWED_MECHANISMS`.
    pub(crate) no_allowed_mechanisms: bool,
    /// `no-session-callbacks`: open sessions without a notify callback.
    pub(crate) no_session_callbacks: bool,
    /// `ec-point-short-length`: accept a `CKA_EC_POINT` whose OCTET STRING gives a length of
    /// 128 to 255 in one byte (tpm2-pkcs11 1.9 writes P-521 points so; DER needs `81 xx`).
    pub(crate) ec_point_short_length: bool,
    /// `fork-unsafe`: in a forked child, refuse to use the module instead of finalising and
    /// initialising it again (tpm2-pkcs11 1.9 cannot be initialised again, and its
    /// `C_Finalize` there flushes the parent's TPM objects over the inherited connection).
    pub(crate) fork_unsafe: bool,
}

impl Quirks {
    /// The config words of the quirks that are set.
    pub(crate) fn names(&self) -> Vec<&'static str> {
        [
            (self.no_deinit, "no-deinit"),
            (self.no_operation_state, "no-operation-state"),
            (self.no_allowed_mechanisms, "no-allowed-mechanisms"),
            (self.no_session_callbacks, "no-session-callbacks"),
            (self.ec_point_short_length, "ec-point-short-length"),
            (self.fork_unsafe, "fork-unsafe"),
        ]
        .into_iter()
        .filter(|(set, _)| *set)
        .map(|(_, name)| name)
        .collect()
    }
}

/// What to do with `pin-value`/`pin-source` in the URI of a PEM-URI key file
/// (`pkcs11-module-key-file-pins`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum KeyFilePins {
    /// Ignore them: whoever can write a key file the program reads could otherwise make the
    /// provider read any file the program may read and send its first line to `C_Login`.
    #[default]
    Ignore,
    /// Use them like those of a URI the program passes itself.
    Use,
}

/// Whether an interactively entered PIN is kept for later re-login (`pkcs11-module-cache-pins`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum CachePins {
    /// Forget the PIN after login.
    #[default]
    Never,
    /// Keep the PIN (zeroized on drop) to log in again, e.g. in a forked child.
    Cache,
}

/// What the URI parser does with an unknown path attribute
/// (`pkcs11-module-uri-unknown-attributes`). Vendor `x-*` attributes and unknown query
/// attributes are skipped either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum UnknownAttributes {
    /// Refuse the URI, naming the attribute: skipping a misspelt `object`, `id` or `type`
    /// would make the URI select another key. Known attributes in the wrong section
    /// (`object` in the query, `module-path` in the path) are refused too.
    #[default]
    Reject,
    /// Skip them all, as the parser did before (for URIs from tools that add attributes of
    /// their own).
    Ignore,
}

impl From<UnknownAttributes> for UriOptions {
    fn from(unknown: UnknownAttributes) -> UriOptions {
        UriOptions {
            ignore_unknown_path_attributes: unknown == UnknownAttributes::Ignore,
        }
    }
}

/// The provider configuration. `Debug` is written by hand so the PIN is shown as `<redacted>`.
#[derive(Clone)]
pub(crate) struct Config {
    /// PKCS#11 module to load; `PKCS11_PROVIDER_MODULE` overrides `pkcs11-module-path`.
    pub(crate) module_path: Option<String>,
    /// String for `CK_C_INITIALIZE_ARGS.pReserved` (`pkcs11-module-init-args`).
    pub(crate) init_args: Option<String>,
    /// User PIN from `pkcs11-module-token-pin` (literal, or first line of a `file:` PIN file).
    pub(crate) token_pin: Option<Zeroizing<String>>,
    pub(crate) login_behavior: LoginBehavior,
    pub(crate) load_behavior: LoadBehavior,
    pub(crate) quirks: Quirks,
    pub(crate) cache_pins: CachePins,
    /// Copy token keys into session objects on first use (`pkcs11-module-cache-keys`).
    pub(crate) cache_keys: bool,
    /// Idle sessions kept per slot (`pkcs11-module-cache-sessions`), at most 1024.
    pub(crate) cache_sessions: usize,
    /// Operation names hidden from OpenSSL (`pkcs11-module-block-operations`), no duplicates.
    pub(crate) block_operations: Vec<String>,
    /// `false` when `pkcs11-module-allow-export = 1` forbids exporting public keys to other
    /// providers (the key's name is inverted, its meaning is kept from pkcs11-provider).
    pub(crate) allow_export: bool,
    /// Register the PEM "PKCS#11 PROVIDER URI" private-key encoder.
    pub(crate) encode_provider_uri_to_pem: bool,
    /// Refuse or skip unknown URI path attributes (`pkcs11-module-uri-unknown-attributes`);
    /// `.into()` gives the `UriOptions` for `Pkcs11Uri::parse_with`.
    pub(crate) uri_unknown_attributes: UnknownAttributes,
    /// PINs in key files' URIs (`pkcs11-module-key-file-pins`).
    pub(crate) key_file_pins: KeyFilePins,
    /// `pkcs11-module-quirks` was set (possibly to `none`): then no quirk is added for a known
    /// module automatically.
    pub(crate) quirks_configured: bool,
    /// Hand private-key operations requested inside an OpenSSL ASYNC job to worker threads and
    /// pause the job (`pkcs11-module-async = auto`, the default; `off`: always synchronous).
    pub(crate) async_offload: bool,
    /// Worker threads (`pkcs11-module-async-workers`); `None`: the token's session limit,
    /// at most 16.
    pub(crate) async_workers: Option<usize>,
    /// Requests waiting for a worker before new ones fail (`pkcs11-module-async-queue`).
    pub(crate) async_queue: usize,
    /// Prometheus text file rewritten with the sign-duration metrics
    /// (`pkcs11-module-metrics-file`; `%p` becomes the process id).
    pub(crate) metrics_file: Option<String>,
    /// Seconds between rewrites of the metrics file (`pkcs11-module-metrics-interval`).
    pub(crate) metrics_interval: u64,
}

impl Default for Config {
    /// The configuration of an empty provider section.
    fn default() -> Self {
        Config {
            module_path: None,
            init_args: None,
            token_pin: None,
            login_behavior: LoginBehavior::default(),
            load_behavior: LoadBehavior::default(),
            quirks: Quirks::default(),
            cache_pins: CachePins::default(),
            cache_keys: true,
            cache_sessions: CACHE_SESSIONS_DEFAULT,
            block_operations: Vec::new(),
            allow_export: true,
            encode_provider_uri_to_pem: false,
            uri_unknown_attributes: UnknownAttributes::default(),
            key_file_pins: KeyFilePins::default(),
            quirks_configured: false,
            async_offload: true,
            async_workers: None,
            async_queue: ASYNC_QUEUE_DEFAULT,
            metrics_file: None,
            metrics_interval: METRICS_INTERVAL_DEFAULT,
        }
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("module_path", &self.module_path)
            .field("init_args", &self.init_args)
            .field("token_pin", &self.token_pin.as_ref().map(|_| "<redacted>"))
            .field("login_behavior", &self.login_behavior)
            .field("load_behavior", &self.load_behavior)
            .field("quirks", &self.quirks)
            .field("cache_pins", &self.cache_pins)
            .field("cache_keys", &self.cache_keys)
            .field("cache_sessions", &self.cache_sessions)
            .field("block_operations", &self.block_operations)
            .field("allow_export", &self.allow_export)
            .field(
                "encode_provider_uri_to_pem",
                &self.encode_provider_uri_to_pem,
            )
            .field("uri_unknown_attributes", &self.uri_unknown_attributes)
            .field("key_file_pins", &self.key_file_pins)
            .field("quirks_configured", &self.quirks_configured)
            .field("async_offload", &self.async_offload)
            .field("async_workers", &self.async_workers)
            .field("async_queue", &self.async_queue)
            .field("metrics_file", &self.metrics_file)
            .field("metrics_interval", &self.metrics_interval)
            .finish()
    }
}

impl Config {
    /// Every key name the FFI layer must ask the core for.
    pub(crate) const KEYS: &'static [&'static str] = &[
        MODULE_PATH,
        INIT_ARGS,
        TOKEN_PIN,
        LOGIN_BEHAVIOR,
        LOAD_BEHAVIOR,
        CACHE_PINS,
        CACHE_KEYS,
        CACHE_SESSIONS,
        QUIRKS,
        BLOCK_OPERATIONS,
        ALLOW_EXPORT,
        ENCODE_PROVIDER_URI_TO_PEM,
        URI_UNKNOWN_ATTRIBUTES,
        KEY_FILE_PINS,
        ASYNC,
        ASYNC_WORKERS,
        ASYNC_QUEUE,
        METRICS_FILE,
        METRICS_INTERVAL,
    ];

    /// Builds the configuration from raw key values (`value_of`) and environment variables
    /// (`env_var`). An empty value counts as absent, because `key =` in `openssl.cnf` yields "".
    pub(crate) fn from_lookup(
        value_of: impl Fn(&str) -> Option<String>,
        env_var: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let value = |key: &str| value_of(key).filter(|v| !v.is_empty());
        let defaults = Config::default();
        let quirks_value = value(QUIRKS);
        Ok(Config {
            module_path: env_var(MODULE_PATH_ENV)
                .filter(|v| !v.is_empty())
                .or_else(|| value(MODULE_PATH)),
            init_args: value(INIT_ARGS),
            token_pin: value(TOKEN_PIN).map(token_pin).transpose()?,
            login_behavior: parse_if_set(value(LOGIN_BEHAVIOR), login_behavior)?
                .unwrap_or(defaults.login_behavior),
            load_behavior: parse_if_set(value(LOAD_BEHAVIOR), load_behavior)?
                .unwrap_or(defaults.load_behavior),
            quirks: parse_if_set(quirks_value.clone(), quirks)?.unwrap_or(defaults.quirks),
            cache_pins: parse_if_set(value(CACHE_PINS), cache_pins)?.unwrap_or(defaults.cache_pins),
            cache_keys: parse_if_set(value(CACHE_KEYS), |v| boolean(CACHE_KEYS, v))?
                .unwrap_or(defaults.cache_keys),
            cache_sessions: parse_if_set(value(CACHE_SESSIONS), cache_sessions)?
                .unwrap_or(defaults.cache_sessions),
            block_operations: parse_if_set(value(BLOCK_OPERATIONS), block_operations)?
                .unwrap_or(defaults.block_operations),
            allow_export: parse_if_set(value(ALLOW_EXPORT), allow_export)?
                .unwrap_or(defaults.allow_export),
            encode_provider_uri_to_pem: parse_if_set(value(ENCODE_PROVIDER_URI_TO_PEM), |v| {
                boolean(ENCODE_PROVIDER_URI_TO_PEM, v)
            })?
            .unwrap_or(defaults.encode_provider_uri_to_pem),
            uri_unknown_attributes: parse_if_set(
                value(URI_UNKNOWN_ATTRIBUTES),
                uri_unknown_attributes,
            )?
            .unwrap_or(defaults.uri_unknown_attributes),
            key_file_pins: parse_if_set(value(KEY_FILE_PINS), key_file_pins)?
                .unwrap_or(defaults.key_file_pins),
            quirks_configured: quirks_value.is_some(),
            async_offload: parse_if_set(value(ASYNC), async_offload)?
                .unwrap_or(defaults.async_offload),
            async_workers: parse_if_set(value(ASYNC_WORKERS), |v| {
                number_in(ASYNC_WORKERS, v, 1, ASYNC_WORKERS_MAX as u64).map(|n| n as usize)
            })?,
            async_queue: parse_if_set(value(ASYNC_QUEUE), |v| {
                number_in(ASYNC_QUEUE, v, 1, ASYNC_QUEUE_MAX as u64).map(|n| n as usize)
            })?
            .unwrap_or(defaults.async_queue),
            metrics_file: value(METRICS_FILE),
            metrics_interval: parse_if_set(value(METRICS_INTERVAL), |v| {
                number_in(METRICS_INTERVAL, v, 1, 3600)
            })?
            .unwrap_or(defaults.metrics_interval),
        })
    }
}

/// A config key with a value we cannot use. Never holds a PIN: PIN errors name only the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    key: &'static str,
    problem: String,
}

impl ConfigError {
    fn new(key: &'static str, problem: String) -> Self {
        ConfigError { key, problem }
    }

    fn unknown_value(key: &'static str, value: &str, expected: &str) -> Self {
        ConfigError::new(
            key,
            format!(
                "unknown value '{}' (expected {expected})",
                value.escape_debug()
            ),
        )
    }

    /// The config key whose value was rejected.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "structured access for callers and tests")
    )]
    pub(crate) fn key(&self) -> &'static str {
        self.key
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// Runs `parse` on a value that is set; `Ok(None)` when it is absent.
fn parse_if_set<T>(
    value: Option<String>,
    parse: impl FnOnce(&str) -> Result<T, ConfigError>,
) -> Result<Option<T>, ConfigError> {
    value.as_deref().map(parse).transpose()
}

fn async_offload(value: &str) -> Result<bool, ConfigError> {
    match value {
        "auto" => Ok(true),
        "off" => Ok(false),
        _ => Err(ConfigError::unknown_value(ASYNC, value, "auto or off")),
    }
}

/// A whole number from `min` to `max`.
fn number_in(key: &'static str, value: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    match value.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError::new(
            key,
            format!(
                "invalid value '{}' (expected a number from {min} to {max})",
                value.escape_debug()
            ),
        )),
    }
}

fn key_file_pins(value: &str) -> Result<KeyFilePins, ConfigError> {
    match value {
        "ignore" => Ok(KeyFilePins::Ignore),
        "use" => Ok(KeyFilePins::Use),
        _ => Err(ConfigError::unknown_value(
            KEY_FILE_PINS,
            value,
            "ignore or use",
        )),
    }
}

fn login_behavior(value: &str) -> Result<LoginBehavior, ConfigError> {
    match value {
        "auto" => Ok(LoginBehavior::Auto),
        "always" => Ok(LoginBehavior::Always),
        "never" => Ok(LoginBehavior::Never),
        _ => Err(ConfigError::unknown_value(
            LOGIN_BEHAVIOR,
            value,
            "auto, always or never",
        )),
    }
}

fn load_behavior(value: &str) -> Result<LoadBehavior, ConfigError> {
    match value {
        "early" => Ok(LoadBehavior::Early),
        _ => Err(ConfigError::unknown_value(LOAD_BEHAVIOR, value, "early")),
    }
}

fn cache_pins(value: &str) -> Result<CachePins, ConfigError> {
    match value {
        "cache" => Ok(CachePins::Cache),
        _ => Err(ConfigError::unknown_value(CACHE_PINS, value, "cache")),
    }
}

fn uri_unknown_attributes(value: &str) -> Result<UnknownAttributes, ConfigError> {
    match value {
        "reject" => Ok(UnknownAttributes::Reject),
        "ignore" => Ok(UnknownAttributes::Ignore),
        _ => Err(ConfigError::unknown_value(
            URI_UNKNOWN_ATTRIBUTES,
            value,
            "reject or ignore",
        )),
    }
}

fn boolean(key: &'static str, value: &str) -> Result<bool, ConfigError> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Ok(true),
        "false" | "0" | "no" => Ok(false),
        _ => Err(ConfigError::unknown_value(key, value, "true or false")),
    }
}

fn cache_sessions(value: &str) -> Result<usize, ConfigError> {
    match value.parse::<usize>() {
        Ok(count) if count <= CACHE_SESSIONS_MAX => Ok(count),
        _ => Err(ConfigError::new(
            CACHE_SESSIONS,
            format!(
                "invalid value '{}' (expected a number from 0 to {CACHE_SESSIONS_MAX})",
                value.escape_debug()
            ),
        )),
    }
}

fn quirks(value: &str) -> Result<Quirks, ConfigError> {
    let mut quirks = Quirks::default();
    for word in value.split_ascii_whitespace() {
        let flag = match word {
            "no-deinit" => &mut quirks.no_deinit,
            "no-operation-state" => &mut quirks.no_operation_state,
            "no-allowed-mechanisms" => &mut quirks.no_allowed_mechanisms,
            "no-session-callbacks" => &mut quirks.no_session_callbacks,
            "ec-point-short-length" => &mut quirks.ec_point_short_length,
            "fork-unsafe" => &mut quirks.fork_unsafe,
            // Only says "these are all": no quirk is added for a known module either.
            "none" => continue,
            _ => {
                return Err(ConfigError::new(
                    QUIRKS,
                    format!(
                        "unknown quirk '{}' (expected no-deinit, no-operation-state, \
                         no-allowed-mechanisms, no-session-callbacks, ec-point-short-length, \
                         fork-unsafe or none)",
                        word.escape_debug()
                    ),
                ));
            }
        };
        *flag = true;
    }
    Ok(quirks)
}

fn block_operations(value: &str) -> Result<Vec<String>, ConfigError> {
    let mut blocked: Vec<String> = Vec::new();
    for word in value.split_ascii_whitespace() {
        if !BLOCKABLE_OPERATIONS.contains(&word) {
            return Err(ConfigError::new(
                BLOCK_OPERATIONS,
                format!(
                    "unknown operation '{}' (expected some of: {})",
                    word.escape_debug(),
                    BLOCKABLE_OPERATIONS.join(", ")
                ),
            ));
        }
        if !blocked.iter().any(|b| b == word) {
            blocked.push(word.to_owned());
        }
    }
    Ok(blocked)
}

fn allow_export(value: &str) -> Result<bool, ConfigError> {
    match value {
        "0" => Ok(true),
        "1" => Ok(false),
        _ => Err(ConfigError::unknown_value(ALLOW_EXPORT, value, "0 or 1")),
    }
}

/// Takes ownership of the raw value so a literal PIN is moved, not copied, into `Zeroizing`.
fn token_pin(value: String) -> Result<Zeroizing<String>, ConfigError> {
    let value = Zeroizing::new(value);
    match value.strip_prefix(PIN_FILE_PREFIX) {
        Some(path) => read_pin_file(path).map_err(|problem| ConfigError::new(TOKEN_PIN, problem)),
        None => Ok(value),
    }
}

/// Returns the first line of the PIN file, without its `\n` or `\r\n`.
///
/// The error is the problem alone; the caller says which setting named the file.
/// Opens `path` for reading if it is a regular file. Opened without blocking (a FIFO would
/// wait for a writer forever) and checked on the open file, so nothing can swap the file
/// between the check and the read.
pub(crate) fn open_regular_file(path: &str) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::new(
            ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device or directory is refused)",
        ));
    }
    Ok(file)
}

pub(crate) fn read_pin_file(path: &str) -> Result<Zeroizing<String>, String> {
    if path.is_empty() {
        return Err("'file:' must be followed by a path".to_owned());
    }
    let mut file =
        open_regular_file(path).map_err(|e| format!("cannot open PIN file '{path}': {e}"))?;

    // Read only up to the first newline, into a buffer that never grows (see PIN_FILE_MAX_LINE).
    let mut buffer = Zeroizing::new(vec![0u8; PIN_FILE_MAX_LINE]);
    let mut filled = 0;
    let line_len = loop {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break filled,
            Ok(count) => {
                let newline = buffer[filled..filled + count]
                    .iter()
                    .position(|&b| b == b'\n');
                if let Some(offset) = newline {
                    break filled + offset;
                }
                filled += count;
                if filled == buffer.len() {
                    return Err(format!(
                        "first line of PIN file '{path}' is longer than \
                         {PIN_FILE_MAX_LINE} bytes"
                    ));
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read PIN file '{path}': {e}")),
        }
    };

    let mut line = &buffer[..line_len];
    if let Some(stripped) = line.strip_suffix(b"\r") {
        line = stripped;
    }
    if line.is_empty() {
        return Err(format!("PIN file '{path}' has no PIN on its first line"));
    }
    // The UTF-8 error is not shown: its byte offset would say something about the PIN.
    let pin =
        std::str::from_utf8(line).map_err(|_| format!("PIN file '{path}' is not valid UTF-8"))?;
    Ok(Zeroizing::new(pin.to_owned()))
}
