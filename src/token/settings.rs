//! Per-module settings every slot needs, taken from the provider's configuration once.

use zeroize::Zeroizing;

use crate::config::{CachePins, Config, LoginBehavior};

/// A PIN in memory: wiped when dropped.
pub(crate) type Pin = Zeroizing<Vec<u8>>;

/// Per-module settings every slot needs.
pub(crate) struct SlotSettings {
    pub(crate) login_behavior: LoginBehavior,
    pub(crate) config_pin: Option<Pin>,
    pub(crate) cache_pins: bool,
    pub(crate) max_idle_sessions: usize,
    /// `pkcs11-module-allow-export = 1` turns this off: public keys stay in this provider.
    pub(crate) allow_export: bool,
    /// The `no-allowed-mechanisms` quirk: `CKA_ALLOWED_MECHANISMS` is not read.
    pub(crate) ignore_allowed_mechanisms: bool,
    /// Quirk `ec-point-short-length` (configured or known for the module).
    pub(crate) ec_point_short_length: bool,
}

impl SlotSettings {
    /// The settings of `config`; the module's own quirks (configured or known) are set
    /// afterwards by `Module::load`.
    pub(crate) fn from_config(config: &Config) -> SlotSettings {
        SlotSettings {
            login_behavior: config.login_behavior,
            config_pin: config
                .token_pin
                .as_ref()
                .map(|p| Zeroizing::new(p.as_bytes().to_vec())),
            cache_pins: matches!(config.cache_pins, CachePins::Cache),
            max_idle_sessions: config.cache_sessions,
            allow_export: config.allow_export,
            ignore_allowed_mechanisms: config.quirks.no_allowed_mechanisms,
            ec_point_short_length: config.quirks.ec_point_short_length,
        }
    }
}
