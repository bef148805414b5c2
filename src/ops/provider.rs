//! The provider context (`provctx`, provider-base(7)): configuration and the lazily loaded
//! PKCS#11 module (`token::Tokens`), the child library context used for hashing, and a
//! per-digest cache of fetched `EVP_MD`s so the signing hot path never fetches again.

use std::sync::Arc;

use once_cell::sync::OnceCell;

use crate::asn1::Digest;
use crate::config::{Config, LoadBehavior};
use crate::error::{Error, Result};
use crate::sys::core::CoreHandle;
use crate::sys::libcrypto::{LibCtx, Md};
use crate::token::Tokens;

/// One loaded instance of the provider.
pub(crate) struct ProvCtx {
    pub(crate) core: CoreHandle,
    /// The configured module; shared with key operations that outlive a call.
    pub(crate) tokens: Arc<Tokens>,
    libctx: Option<LibCtx>,
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
            core,
            tokens: Arc::new(Tokens::new(config, config_error)),
            libctx,
            digests: Default::default(),
        };
        if ctx.config().load_behavior == LoadBehavior::Early {
            ctx.tokens.module()?;
        }
        Ok(ctx)
    }

    /// The provider's configuration.
    pub(crate) fn config(&self) -> &Config {
        self.tokens.config()
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
    }
}
