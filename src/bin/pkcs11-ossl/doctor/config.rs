//! `doctor` checks 1 and 2: the configuration file, the pkcs11-ossl provider section in it,
//! `activate`, the provider library OpenSSL will load, whether OpenSSL itself loads the
//! provider from that file, and the section's keys and values.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

use pkcs11_ossl::tool::{self, Settings};

use super::{Report, first_error_line};
use crate::cnf::{self, Cnf, ProviderEntry};
use crate::setup;

/// Keys of a provider section that OpenSSL itself reads (provider(7), config(5)).
const OPENSSL_PROVIDER_KEYS: &[&str] = &["module", "activate", "identity", "soft_load"];

/// What the configuration checks found.
pub(super) struct ConfigFindings {
    pub(super) path: Option<PathBuf>,
    /// OpenSSL loads the provider from this file (`openssl list -providers`).
    pub(super) provider_loads: bool,
    pub(super) entry: Option<ProviderEntry>,
    pub(super) settings: Option<Settings>,
}

/// Checks 1 and 2.
pub(super) fn check_config(report: &mut Report, explicit: Option<&Path>) -> ConfigFindings {
    let mut findings = ConfigFindings {
        path: None,
        provider_loads: false,
        entry: None,
        settings: None,
    };
    let env_only = || tool::settings(|_| None, |name| env::var(name).ok()).ok();
    let (path, origin) = setup::config_path(explicit);
    let cnf = match Cnf::load(&path) {
        Ok(cnf) => {
            report.ok(
                "config file",
                format!("{} ({})", path.display(), origin.describe()),
            );
            cnf
        }
        Err(problem) => {
            report.fail(
                "config file",
                problem,
                "pass --config FILE, or set OPENSSL_CONF to the openssl.cnf that loads the \
                 provider (example: /usr/share/doc/pkcs11-ossl/openssl.cnf.example)",
            );
            findings.settings = env_only();
            return findings;
        }
    };
    findings.path = Some(path.clone());
    let entry = match cnf::find_provider(&cnf) {
        Ok(entry) => {
            report.ok(
                "provider section",
                format!("[{}] (provider '{}')", entry.section, entry.name),
            );
            entry
        }
        Err(not_found) => {
            report.fail("provider section", not_found.problem, not_found.fix);
            findings.settings = env_only();
            return findings;
        }
    };
    let active = check_activate(report, &entry);
    let library = check_library(report, &entry);
    if active && library {
        findings.provider_loads = check_openssl_loads(report, &path, &entry);
    } else {
        report.skip("provider loads", "see the failure above");
    }
    findings.settings = check_settings(report, &entry);
    findings.entry = Some(entry);
    findings
}

fn check_activate(report: &mut Report, entry: &ProviderEntry) -> bool {
    match entry.value("activate") {
        None => {
            report.fail(
                "provider active",
                format!(
                    "[{}] has no 'activate' line, so OpenSSL does not load the provider",
                    entry.section
                ),
                format!("add 'activate = 1' to [{}]", entry.section),
            );
            false
        }
        Some(value)
            if ["0", "no", "false", "off"].contains(&value.to_ascii_lowercase().as_str()) =>
        {
            report.fail(
                "provider active",
                format!(
                    "[{}] says 'activate = {value}': OpenSSL 3.0 activates the provider anyway, \
                     OpenSSL 3.2 and later do not",
                    entry.section
                ),
                format!("write 'activate = 1' in [{}]", entry.section),
            );
            false
        }
        Some(value) => {
            report.ok("provider active", format!("activate = {value}"));
            true
        }
    }
}

/// The provider library OpenSSL will load for `entry`: its `module =` file, else
/// `<modules dir>/<name>.so`.
fn check_library(report: &mut Report, entry: &ProviderEntry) -> bool {
    let (library, how) = match entry.value("module") {
        Some(module) => (PathBuf::from(module), "module ="),
        None => match setup::modules_dir() {
            Some(dir) => (
                dir.join(format!("{}.so", entry.name)),
                "no module line: modules directory",
            ),
            None => {
                report.fail(
                    "provider library",
                    "no 'module =' line, and OpenSSL's modules directory is unknown (is the \
                     openssl command installed?)",
                    format!(
                        "add 'module = /path/to/libpkcs11_ossl.so' to [{}]",
                        entry.section
                    ),
                );
                return false;
            }
        },
    };
    if library.is_file() {
        let name = library
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        let note = if cnf::is_our_module_file(&name) {
            ""
        } else {
            " (not a pkcs11-ossl file name)"
        };
        report.ok(
            "provider library",
            format!("{} ({how}){note}", library.display()),
        );
        true
    } else {
        report.fail(
            "provider library",
            format!("{} ({how}) does not exist", library.display()),
            format!(
                "install the package or run scripts/install.sh (OpenSSL then finds {}.so in its \
                 modules directory without a module line), or point 'module =' in [{}] at the \
                 built libpkcs11_ossl.so",
                entry.name, entry.section
            ),
        );
        false
    }
}

/// Asks OpenSSL itself: `openssl list -providers` with this configuration must show the
/// provider as active.
fn check_openssl_loads(report: &mut Report, path: &Path, entry: &ProviderEntry) -> bool {
    if !setup::have_openssl_command() {
        report.fail(
            "provider loads",
            "the openssl command is not installed, so this cannot be checked",
            "install it (Debian: apt-get install openssl)",
        );
        return false;
    }
    let output = Command::new("openssl")
        .args(["list", "-providers"])
        .env("OPENSSL_CONF", path)
        .output();
    let output = match output {
        Ok(output) => output,
        Err(e) => {
            report.fail(
                "provider loads",
                format!("cannot run openssl: {e}"),
                "check the openssl installation",
            );
            return false;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.success() && provider_is_active(&stdout, &entry.name) {
        report.ok(
            "provider loads",
            format!("openssl list -providers shows '{}' active", entry.name),
        );
        true
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let reason = first_error_line(&stderr).unwrap_or("OpenSSL skipped it without a message");
        report.fail(
            "provider loads",
            format!(
                "OpenSSL does not list '{}' as active with this file: {reason}",
                entry.name
            ),
            format!(
                "load the library by hand to see why: openssl list -providers -provider {}",
                entry.value("module").unwrap_or(&entry.name)
            ),
        );
        false
    }
}

/// True when `openssl list -providers` output has a block for `name` with `status: active`.
fn provider_is_active(listing: &str, name: &str) -> bool {
    let mut in_block = false;
    for line in listing.lines() {
        let indent = line.len() - line.trim_start().len();
        if indent == 2 {
            in_block = line.trim() == name;
        } else if in_block && line.trim() == "status: active" {
            return true;
        }
    }
    false
}

/// Check 2: unknown keys, then the values with the provider's parser (the PIN is checked
/// separately, step by step).
fn check_settings(report: &mut Report, entry: &ProviderEntry) -> Option<Settings> {
    let known = tool::config_keys();
    let unknown: Vec<&str> = entry
        .entries
        .iter()
        .map(|(key, _)| key.as_str())
        .filter(|key| !known.contains(key) && !OPENSSL_PROVIDER_KEYS.contains(key))
        .collect();
    let values = tool::settings(
        |key| {
            (key != tool::TOKEN_PIN_KEY)
                .then(|| entry.value(key))
                .flatten()
                .map(str::to_owned)
        },
        |name| env::var(name).ok(),
    );
    match (unknown.is_empty(), &values) {
        (true, Ok(_)) => report.ok(
            "settings",
            format!("[{}]: every key known, every value valid", entry.section),
        ),
        (false, _) => report.fail(
            "settings",
            format!(
                "[{}] has keys the provider does not know and ignores: {}",
                entry.section,
                unknown.join(", ")
            ),
            format!(
                "correct the spelling; the provider reads: {}",
                known.join(", ")
            ),
        ),
        (true, Err(problem)) => report.fail(
            "settings",
            format!("[{}]: {problem}", entry.section),
            "use one of the values pkcs11-ossl(7) lists for that key; the provider refuses every \
             token operation until it is fixed",
        ),
    }
    // Later checks need the module path even when another value is bad.
    values.ok().or_else(|| {
        tool::settings(
            |key| {
                (key == "pkcs11-module-path")
                    .then(|| entry.value(key))
                    .flatten()
                    .map(str::to_owned)
            },
            |name| env::var(name).ok(),
        )
        .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::provider_is_active;

    #[test]
    fn reads_the_provider_listing() {
        let listing = "Providers:\n  default\n    name: OpenSSL Default Provider\n    \
                       version: 3.0.19\n    status: active\n  pkcs11\n    name: pkcs11-ossl\n    \
                       status: active\n";
        assert!(provider_is_active(listing, "pkcs11"));
        assert!(provider_is_active(listing, "default"));
        assert!(!provider_is_active(listing, "legacy"));
        assert!(!provider_is_active(
            "Providers:\n  pkcs11\n    status: inactive\n",
            "pkcs11"
        ));
    }
}
