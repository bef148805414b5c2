//! Where the helper gets what the provider would get: the OpenSSL configuration file
//! (`--config`, else `OPENSSL_CONF`, else OpenSSL's default), the pkcs11-ossl section in it,
//! the settings (with the provider's own parser, `PKCS11_PROVIDER_MODULE` first), and the user
//! PIN in the provider's order: the URI's `pin-value`, its `pin-source`, then
//! `pkcs11-module-token-pin`.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use pkcs11_ossl::tool::{self, Settings, Uri};
use zeroize::Zeroizing;

use crate::cnf::{self, Cnf, ProviderEntry};
use crate::token::Pin;

/// Where the configuration file path came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ConfigOrigin {
    Option,
    Environment,
    Default,
}

impl ConfigOrigin {
    pub(crate) fn describe(self) -> &'static str {
        match self {
            ConfigOrigin::Option => "--config",
            ConfigOrigin::Environment => "OPENSSL_CONF",
            ConfigOrigin::Default => "OpenSSL's default; set OPENSSL_CONF or --config for another",
        }
    }
}

/// The configuration file to read and why.
pub(crate) fn config_path(explicit: Option<&Path>) -> (PathBuf, ConfigOrigin) {
    if let Some(path) = explicit {
        return (path.to_path_buf(), ConfigOrigin::Option);
    }
    if let Some(path) = env::var_os("OPENSSL_CONF").filter(|p| !p.is_empty()) {
        return (PathBuf::from(path), ConfigOrigin::Environment);
    }
    let dir = openssl_version_dir("-d").unwrap_or_else(|| "/usr/lib/ssl".to_owned());
    (Path::new(&dir).join("openssl.cnf"), ConfigOrigin::Default)
}

/// OpenSSL's modules directory: `OPENSSL_MODULES`, else what `openssl version -m` reports.
pub(crate) fn modules_dir() -> Option<PathBuf> {
    if let Some(dir) = env::var_os("OPENSSL_MODULES").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    openssl_version_dir("-m").map(PathBuf::from)
}

/// The quoted directory `openssl version -d` (`OPENSSLDIR: "..."`) or `-m` (`MODULESDIR:`)
/// prints.
fn openssl_version_dir(flag: &str) -> Option<String> {
    let output = Command::new("openssl")
        .args(["version", flag])
        .env("OPENSSL_CONF", "/dev/null")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let start = text.find('"')? + 1;
    let end = start + text[start..].find('"')?;
    Some(text[start..end].to_owned())
}

/// True when an `openssl` command is on `PATH`.
pub(crate) fn have_openssl_command() -> bool {
    env::var_os("PATH")
        .is_some_and(|path| env::split_paths(&path).any(|dir| dir.join("openssl").is_file()))
}

/// The settings the provider would use, and the provider section they came from (`None` when
/// only the environment names a module). For `list` and `keyfile`; `doctor` takes the same
/// steps one check at a time.
pub(crate) fn load_settings(
    explicit: Option<&Path>,
) -> Result<(Settings, Option<ProviderEntry>), String> {
    let (path, origin) = config_path(explicit);
    let env_module = env::var(tool::MODULE_PATH_ENV)
        .ok()
        .filter(|v| !v.is_empty());
    let entry = match Cnf::load(&path) {
        Ok(cnf) => match cnf::find_provider(&cnf) {
            Ok(entry) => Some(entry),
            Err(_) if env_module.is_some() => None,
            Err(not_found) => {
                return Err(format!(
                    "{} ({}): {}; fix: {} (`pkcs11-ossl doctor` checks the whole set-up)",
                    path.display(),
                    origin.describe(),
                    not_found.problem,
                    not_found.fix
                ));
            }
        },
        Err(_) if origin == ConfigOrigin::Default && env_module.is_some() => None,
        Err(problem) => return Err(problem),
    };
    let settings = tool::settings(
        |key| entry.as_ref().and_then(|e| e.value(key)).map(str::to_owned),
        |name| env::var(name).ok(),
    )
    .map_err(|e| match &entry {
        Some(entry) => format!("{} [{}]: {e}", path.display(), entry.section),
        None => e,
    })?;
    Ok((settings, entry))
}

/// Parses a URI the user gave, as the provider would with these settings.
pub(crate) fn parse_uri(text: &str, settings: &Settings) -> Result<Uri, String> {
    Uri::parse(text, settings.ignore_unknown_uri_attributes)
        .map_err(|e| format!("cannot use '{}': {e}", redact_query(text)))
}

/// `text` with everything after `?` replaced, so messages never show a `pin-value`.
pub(crate) fn redact_query(text: &str) -> String {
    match text.split_once('?') {
        Some((path, _)) => format!("{path}?..."),
        None => text.to_owned(),
    }
}

/// Where the PIN comes from, in the provider's order, before reading it.
pub(crate) enum PinOrigin<'a> {
    /// `pin-value` in the URI.
    UriValue(&'a str),
    /// `pin-source` in the URI; `None` when it names nothing the provider can read.
    UriSource(&'a str, Option<&'a str>),
    /// `pkcs11-module-token-pin = file:PATH`.
    ConfigFile(&'a str),
    /// A literal `pkcs11-module-token-pin`.
    ConfigLiteral,
    /// None of them.
    Nowhere,
}

/// The first PIN source the provider would use for `uri`. `config_value` is the raw
/// `pkcs11-module-token-pin`.
pub(crate) fn pin_origin<'a>(uri: Option<&'a Uri>, config_value: Option<&'a str>) -> PinOrigin<'a> {
    if let Some(uri) = uri {
        if let Some(value) = uri.pin_value() {
            return PinOrigin::UriValue(value);
        }
        if let Some(source) = uri.pin_source() {
            return PinOrigin::UriSource(source, uri.pin_source_path());
        }
    }
    match config_value.filter(|v| !v.is_empty()) {
        Some(value) => match value.strip_prefix(tool::PIN_FILE_PREFIX) {
            Some(path) => PinOrigin::ConfigFile(path),
            None => PinOrigin::ConfigLiteral,
        },
        None => PinOrigin::Nowhere,
    }
}

/// The PIN for `uri` with `settings` (whose `token_pin` the provider's parser already read),
/// or `None` when there is none.
pub(crate) fn pin_for(
    uri: Option<&Uri>,
    settings: &Settings,
    config_value: Option<&str>,
) -> Result<Option<Pin>, String> {
    Ok(match pin_origin(uri, config_value) {
        PinOrigin::UriValue(value) => Some(Pin {
            value: Zeroizing::new(value.to_owned()),
            source: "pin-value in the URI".into(),
        }),
        PinOrigin::UriSource(source, path) => {
            let path = path.ok_or_else(|| {
                format!("pin-source '{source}' is not a file the provider can read")
            })?;
            Some(Pin {
                value: tool::read_pin_file(path)?,
                source: format!("pin-source file {path}"),
            })
        }
        PinOrigin::ConfigFile(_) | PinOrigin::ConfigLiteral => {
            settings.token_pin.as_ref().map(|value| Pin {
                value: value.clone(),
                source: tool::TOKEN_PIN_KEY.to_owned(),
            })
        }
        PinOrigin::Nowhere => None,
    })
}
