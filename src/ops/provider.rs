//! The provider context (`provctx`, provider-base(7)): configuration, the lazily loaded PKCS#11
//! module, the child library context used for hashing, and a per-digest cache of fetched
//! `EVP_MD`s so the signing hot path never fetches again.

use std::sync::{Arc, Mutex};

use once_cell::sync::OnceCell;

use crate::asn1::Digest;
use crate::config::{Config, LoadBehavior};
use crate::error::{Error, Result};
use crate::sys::core::CoreHandle;
use crate::sys::libcrypto::{LibCtx, Md};
use crate::token::module::Module;

/// One loaded instance of the provider.
pub(crate) struct ProvCtx {
    pub(crate) config: Config,
    /// Why the provider's openssl.cnf section could not be used; every use of a token then
    /// fails with it (the defaults in `config` are never used to reach a token).
    config_error: Option<String>,
    pub(crate) core: CoreHandle,
    libctx: Option<LibCtx>,
    module: Mutex<Option<Arc<Module>>>,
    digests: [OnceCell<Arc<Md>>; Digest::ALL.len()],
}

impl ProvCtx {
    pub(crate) fn new(
        core: CoreHandle,
        config: Config,
        config_error: Option<String>,
        libctx: Option<LibCtx>,
    ) -> Result<ProvCtx> {
        let ctx = ProvCtx {
            config,
            config_error,
            core,
            libctx,
            module: Mutex::new(None),
            digests: Default::default(),
        };
        if ctx.config.load_behavior == LoadBehavior::Early {
            ctx.module()?;
        }
        Ok(ctx)
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

    /// The provider's child library context, if the core offered one.
    pub(crate) fn libctx(&self) -> Option<&LibCtx> {
        self.libctx.as_ref()
    }

    /// The fetched implementation of `digest`, fetched once per provider instance.
    pub(crate) fn md(&self, digest: Digest) -> Result<Arc<Md>> {
        let index = Digest::ALL
            .iter()
            .position(|d| *d == digest)
            .ok_or_else(|| Error::Unsupported(format!("digest {digest:?}")))?;
        self.digests[index]
            .get_or_try_init(|| Md::fetch(self.libctx.as_ref(), digest.name()).map(Arc::new))
            .cloned()
    }
}

impl Drop for ProvCtx {
    fn drop(&mut self) {
        // The fetched digests belong to the child library context: free them while it still
        // exists. (Fields drop in declaration order after this, `libctx` before `digests`;
        // freeing an EVP_MD after its library context made exit hang on a freed lock.)
        for digest in &mut self.digests {
            digest.take();
        }
        if let Ok(mut slot) = self.module.lock() {
            if let Some(module) = slot.take() {
                Module::release(module);
            }
        }
    }
}
