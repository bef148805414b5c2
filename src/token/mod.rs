//! The token model: PKCS#11 modules, slots and their tokens, session pools, login, objects,
//! and [`op::run`], the one function every key operation goes through (retry, re-login,
//! rebind, logging and timing). Safe Rust over cryptoki; the few direct C calls are in
//! `sys::pkcs11`.
//!
//! - `module`: load, `C_Initialize`, slots, teardown;
//! - `slot`: a slot's identity and the token calls made on one of its sessions;
//! - `pool`: the slot's session pool; `login`: its login state and PIN order;
//! - `object`: keys and certificates found on a token, and where a key lives;
//! - `op`: the chokepoint.

pub(crate) mod login;
pub(crate) mod module;
pub(crate) mod object;
pub(crate) mod op;
pub(crate) mod pool;
pub(crate) mod settings;
pub(crate) mod slot;

use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::error::{Error, Result};
use module::Module;

/// The configured PKCS#11 module of one provider instance, loaded on first use and again in a
/// forked child.
pub(crate) struct Tokens {
    config: Config,
    /// Why the provider's openssl.cnf section could not be used; every use of a token then
    /// fails with it (the defaults in `config` are never used to reach a token).
    config_error: Option<String>,
    module: Mutex<Option<Arc<Module>>>,
}

impl Tokens {
    pub(crate) fn new(config: Config, config_error: Option<String>) -> Tokens {
        Tokens {
            config,
            config_error,
            module: Mutex::new(None),
        }
    }

    /// The provider's configuration.
    pub(crate) fn config(&self) -> &Config {
        &self.config
    }

    /// The PKCS#11 module, loaded and initialised on first use. A failed load is retried on the
    /// next use (the error is reported each time).
    pub(crate) fn module(&self) -> Result<Arc<Module>> {
        if let Some(problem) = &self.config_error {
            return Err(Error::Config(problem.clone()));
        }
        let mut slot = self
            .module
            .lock()
            .map_err(|_| Error::Module("module lock poisoned".into()))?;
        if let Some(module) = slot.as_ref() {
            if module.is_current() {
                return Ok(Arc::clone(module));
            }
        }
        // First use, or first use in a forked child: (re)load; an inherited module is kept,
        // untouched, for the rest of the process.
        if let Some(inherited) = slot.take() {
            Module::release(inherited);
        }
        let module = Arc::new(crate::sys::libcrypto::discarding_errors(|| {
            Module::load(&self.config)
        })?);
        *slot = Some(Arc::clone(&module));
        Ok(module)
    }
}

impl Drop for Tokens {
    fn drop(&mut self) {
        if let Ok(mut slot) = self.module.lock() {
            if let Some(module) = slot.take() {
                Module::release(module);
            }
        }
    }
}
