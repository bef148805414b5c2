//! The PKCS#11 module's lifetime (PKCS#11 3.0 §5.4): load the library, `C_Initialize` with
//! `CKF_OS_LOCKING_OK` (and `pReserved` from `pkcs11-module-init-args`), discover slots, and at
//! provider teardown either `C_Finalize` or — with the `no-deinit` quirk — leave the module
//! untouched, because some modules (SoftHSM2) crash when finalised from an atexit handler.

use std::ffi::CString;
use std::sync::{Arc, Mutex};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::RvError;

use super::settings::SlotSettings;
use super::slot::Slot;
use crate::config::{Config, Quirks};
use crate::error::{Error, Result};
use crate::sys::atfork::TokenCall;
use crate::sys::pkcs11::DecryptFunctions;
use crate::sys::pkcs11::SignFunctions;
use crate::sys::pkcs11_query::QueryFunctions;

/// A loaded and initialised PKCS#11 module with the slots seen so far.
pub(crate) struct Module {
    pkcs11: Pkcs11,
    path: String,
    /// Fork generation this module was initialised in (see `sys::atfork`).
    generation: u64,
    /// Direct `C_DecryptInit`/`C_Decrypt`, as `sign_functions` below.
    decrypt_functions: Option<Arc<DecryptFunctions>>,
    no_deinit: bool,
    settings: Arc<SlotSettings>,
    /// Direct `C_SignInit`/`C_Sign`; `None` if they could not be looked up (then cryptoki's
    /// combined call is used, and keys that need a login per signature cannot sign).
    sign_functions: Option<Arc<SignFunctions>>,
    /// Direct `C_GetMechanismList`/`C_GetAttributeValue` for mechanism numbers cryptoki cannot
    /// name; `None` if they could not be looked up (then those numbers are left out).
    query_functions: Option<Arc<QueryFunctions>>,
    slots: Mutex<Vec<Arc<Slot>>>,
}

/// Modules kept alive (never finalised, never unloaded) because of the `no-deinit` quirk.
static RETAINED: Mutex<Vec<Arc<Module>>> = Mutex::new(Vec::new());

impl Module {
    /// Loads and initialises the module named by the configuration.
    pub(crate) fn load(config: &Config) -> Result<Module> {
        let path = config.module_path.clone().ok_or_else(|| {
            Error::Config(
                "no PKCS#11 module configured: set pkcs11-module-path in the provider's \
                 openssl.cnf section or the PKCS11_PROVIDER_MODULE environment variable"
                    .into(),
            )
        })?;
        // Opening a FIFO (or a device) to load it would block or read forever.
        if std::fs::metadata(&path).is_ok_and(|m| !m.is_file()) {
            return Err(Error::Module(format!(
                "PKCS#11 module '{path}' is not a regular file"
            )));
        }
        crate::sys::pkcs11::check_module(&path)?;
        let pkcs11 = Pkcs11::new(&path)
            .map_err(|e| Error::Module(format!("cannot load PKCS#11 module '{path}': {e}")))?;
        let init_args = config
            .init_args
            .as_deref()
            .map(CString::new)
            .transpose()
            .map_err(|_| Error::Config("pkcs11-module-init-args contains a NUL byte".into()))?;
        let args = || match &init_args {
            None => CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK),
            // `init_args` stays alive until after C_Initialize below.
            Some(text) => crate::sys::pkcs11::init_args_with_reserved(text),
        };
        let _call = TokenCall::enter();
        let generation = crate::sys::atfork::generation();
        let mut quirks = None;
        match pkcs11.initialize(args()) {
            Ok(()) => {}
            // In a forked child the module may still consider itself initialised by the parent.
            // PKCS#11 wants a fresh C_Initialize there, so its state is finalised first — unless
            // the module must never be finalised (`no-deinit`): then it is used as it is.
            Err(cryptoki::error::Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _))
                if generation > 0 =>
            {
                let known = quirks.insert(quirks_for(&pkcs11, config, &path));
                if known.fork_unsafe {
                    return Err(Error::Module(format!(
                        "'{path}' cannot be used in a process forked after it was loaded \
                         (quirk fork-unsafe: it cannot be initialised again here, and \
                         finalising it would break the parent's use of the token); load the \
                         key after the fork"
                    )));
                }
                if known.no_deinit {
                    log::debug!("{path}: initialised before fork; kept as it is (no-deinit)");
                } else {
                    log::debug!("re-initialising {path} after fork");
                    let _ = pkcs11.clone().finalize();
                    pkcs11.initialize(args()).map_err(|e| {
                        Error::from(e).context(format!("re-initialising '{path}' after fork"))
                    })?;
                }
            }
            // Another user in this process (e.g. a second provider instance) initialised it.
            Err(cryptoki::error::Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
            Err(e) => {
                let with_args = if config.init_args.is_some() {
                    " with pkcs11-module-init-args (does the module take that string?)"
                } else {
                    ""
                };
                let err = Error::from(e);
                return Err(err.context(format!("initialising PKCS#11 module '{path}'{with_args}")));
            }
        }
        drop(init_args);
        log::debug!("loaded PKCS#11 module {path}");
        let decrypt_functions = match DecryptFunctions::of_loaded_module(&path) {
            Ok(functions) => Some(Arc::new(functions)),
            Err(e) => {
                log::debug!("direct C_Decrypt unavailable: {e}");
                None
            }
        };
        let quirks = quirks.unwrap_or_else(|| quirks_for(&pkcs11, config, &path));
        let sign_functions = match SignFunctions::of_loaded_module(&path) {
            Ok(functions) => Some(Arc::new(functions)),
            Err(e) => {
                log::debug!("direct C_Sign unavailable: {e}");
                None
            }
        };
        let query_functions = match QueryFunctions::of_loaded_module(&path) {
            Ok(functions) => Some(Arc::new(functions)),
            Err(e) => {
                log::debug!("direct mechanism queries unavailable: {e}");
                None
            }
        };
        let mut settings = SlotSettings::from_config(config);
        settings.ignore_allowed_mechanisms = quirks.no_allowed_mechanisms;
        settings.ec_point_short_length = quirks.ec_point_short_length;
        Ok(Module {
            pkcs11,
            sign_functions,
            query_functions,
            path,
            generation,
            decrypt_functions,
            no_deinit: quirks.no_deinit,
            settings: Arc::new(settings),
            slots: Mutex::new(Vec::new()),
        })
    }

    /// True when this module was initialised in the current process (not inherited over fork).
    pub(crate) fn is_current(&self) -> bool {
        self.generation == crate::sys::atfork::generation()
    }

    /// Path the module was loaded from.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }

    /// All slots that currently hold a token, reusing the state (sessions, login) of slots
    /// already known.
    pub(crate) fn slots(&self) -> Result<Vec<Arc<Slot>>> {
        let _call = TokenCall::enter();
        let ids = self.pkcs11.get_slots_with_token()?;
        let mut known = self
            .slots
            .lock()
            .map_err(|_| Error::Module("slot list lock poisoned".into()))?;
        let mut current = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(slot) = known.iter().find(|s| s.id() == id) {
                current.push(Arc::clone(slot));
                continue;
            }
            let opened = Slot::open(
                self.pkcs11.clone(),
                id,
                Arc::clone(&self.settings),
                self.decrypt_functions.clone(),
                self.sign_functions.clone(),
                self.query_functions.clone(),
            );
            match opened {
                Ok(slot) => {
                    let slot = Arc::new(slot);
                    known.push(Arc::clone(&slot));
                    current.push(slot);
                }
                // A slot whose token vanished or is unusable is skipped, not fatal.
                Err(e) => log::debug!("skipping slot {id}: {e}"),
            }
        }
        Ok(current)
    }

    /// Provider teardown: with `no-deinit` the module (and its sessions) are kept as they are
    /// for the rest of the process; otherwise sessions close and `C_Finalize` runs once the last
    /// key using the module is gone.
    pub(crate) fn release(module: Arc<Module>) {
        // A module inherited over fork belongs to the parent: never close or finalise it here.
        if module.no_deinit || !module.is_current() {
            if let Ok(mut kept) = RETAINED.lock() {
                kept.push(module);
            }
        }
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        let _call = TokenCall::enter();
        if let Ok(mut slots) = self.slots.lock() {
            slots.clear();
        }
        if !self.no_deinit {
            if let Err(e) = self.pkcs11.clone().finalize() {
                log::debug!("C_Finalize: {e}");
            }
        }
    }
}

/// Quirks known modules need, recognised by the manufacturer `C_GetInfo` reports. Applied
/// when `pkcs11-module-quirks` is not set; setting it (even to `none`) replaces them.
const KNOWN_QUIRKS: &[(&str, Quirks)] = &[
    (
        // SoftHSM2 2.6 crashes when its sessions are closed or it is finalised from an atexit
        // handler, and hangs in C_Finalize in a child forked while another thread was inside it.
        "SoftHSM",
        Quirks {
            no_deinit: true,
            no_operation_state: false,
            no_allowed_mechanisms: false,
            no_session_callbacks: false,
            ec_point_short_length: false,
            fork_unsafe: false,
        },
    ),
    (
        // tpm2-pkcs11 1.9 writes the CKA_EC_POINT of P-521 keys as `04 85 04 ...`, a length of
        // 133 in one byte, which DER does not allow; in a forked child it cannot be initialised
        // again, and its C_Finalize there flushes the parent's TPM objects (found by
        // scripts/matrix.sh, issue 14).
        "tpm2-software.github.io",
        Quirks {
            no_deinit: false,
            no_operation_state: false,
            no_allowed_mechanisms: false,
            no_session_callbacks: false,
            ec_point_short_length: true,
            fork_unsafe: true,
        },
    ),
];

/// The quirks to apply to the loaded module: the configured ones, or those of a known module.
fn quirks_for(pkcs11: &Pkcs11, config: &Config, path: &str) -> Quirks {
    if config.quirks_configured {
        return config.quirks;
    }
    let Ok(info) = pkcs11.get_library_info() else {
        return config.quirks;
    };
    let manufacturer = info.manufacturer_id().trim_end().to_owned();
    match KNOWN_QUIRKS.iter().find(|(name, _)| *name == manufacturer) {
        Some((_, quirks)) => {
            log::debug!(
                "{path}: module by '{manufacturer}': applying {} automatically (set \
                 pkcs11-module-quirks to override)",
                quirks.names().join(" ")
            );
            *quirks
        }
        None => config.quirks,
    }
}
