//! The token model: PKCS#11 modules, slots and their tokens, session pools, login, objects,
//! and [`op::run`], the one function every key operation goes through (retry, re-login,
//! rebind, logging and timing). Safe Rust over cryptoki; the few direct C calls are in
//! `sys::pkcs11`.
//!
//! - `module`: load, `C_Initialize`, slots, teardown;
//! - `slot`: a slot's identity and the token calls made on one of its sessions;
//! - `pool`: the slot's session pool; `login`: its login state and PIN order;
//! - `object`: keys and certificates found on a token, and where a key lives;
//! - `op`: the chokepoint; `offload`: running it on worker threads for ASYNC jobs;
//! - `generate`: key-pair generation requests, the token to make them on, the templates;
//! - `metrics`: sign-duration histograms and gauges.

pub(crate) mod generate;
pub(crate) mod info;
pub(crate) mod login;
pub(crate) mod metrics;
pub(crate) mod module;
pub(crate) mod object;
pub(crate) mod offload;
pub(crate) mod op;
pub(crate) mod pool;
pub(crate) mod settings;
pub(crate) mod slot;

use std::sync::{Arc, Mutex};

use crate::config::Config;
use crate::error::{Error, Result};
use crate::sys::atfork::TokenCall;
use module::Module;
use offload::WorkerPool;

/// The configured PKCS#11 module of one provider instance, loaded on first use and again in a
/// forked child.
pub(crate) struct Tokens {
    config: Config,
    /// Why the provider's openssl.cnf section could not be used; every use of a token then
    /// fails with it (the defaults in `config` are never used to reach a token).
    config_error: Option<String>,
    module: Mutex<Option<Arc<Module>>>,
    /// Workers for asynchronous signing, started on first use in each process.
    workers: Mutex<Option<Arc<WorkerPool>>>,
}

impl Tokens {
    pub(crate) fn new(config: Config, config_error: Option<String>) -> Tokens {
        Tokens {
            config,
            config_error,
            module: Mutex::new(None),
            workers: Mutex::new(None),
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
        // Inside the fork gate: a child must not inherit the module lock held.
        let _call = TokenCall::enter();
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
        if let Some(path) = &self.config.metrics_file {
            metrics::write_file_periodically(path, self.config.metrics_interval);
        }
        Ok(module)
    }

    /// The worker pool of this process, started on first use with the configured number of
    /// workers or `default_workers()`.
    pub(crate) fn worker_pool(
        &self,
        default_workers: impl FnOnce() -> usize,
    ) -> Result<Arc<WorkerPool>> {
        let _call = TokenCall::enter();
        let mut slot = self
            .workers
            .lock()
            .map_err(|_| Error::Module("worker pool lock poisoned".into()))?;
        if let Some(pool) = slot.as_ref().filter(|p| p.is_current()) {
            return Ok(Arc::clone(pool));
        }
        // A pool inherited over fork has no threads here, and its queue may be locked by one
        // that no longer exists: leave it untouched.
        if let Some(inherited) = slot.take() {
            std::mem::forget(inherited);
        }
        let workers = self.config.async_workers.unwrap_or_else(default_workers);
        let pool = WorkerPool::start(workers, self.config.async_queue)?;
        *slot = Some(Arc::clone(&pool));
        Ok(pool)
    }
}

impl Drop for Tokens {
    fn drop(&mut self) {
        if let Some(path) = &self.config.metrics_file {
            metrics::write_final(path);
        }
        if let Ok(mut slot) = self.workers.lock() {
            if let Some(pool) = slot.take().filter(|p| p.is_current()) {
                pool.stop();
            }
        }
        if let Ok(mut slot) = self.module.lock() {
            if let Some(module) = slot.take() {
                Module::release(module);
            }
        }
    }
}
