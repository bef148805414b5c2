//! PEM-URI decoding (provider-decoder(7)): turns a PEM-URI key file (see `pemuri`) into the
//! token key it names, so `PEM_read_bio_PrivateKey`, the `file:` store and everything built on
//! them (nginx, HAProxy, Python `ssl`, curl, `openssl pkey -in`) get a token key from a file.
//!
//! Two steps, as OpenSSL does for its own PEM files: a decoder named "DER" takes the armour off
//! (`ffi::entry::decoder`), then one decoder per key type reads the DER body, resolves the URI
//! through the store logic (same PIN rules, same errors), and hands over the key only if it is
//! of its own type, so exactly one of them produces the object. Other input is declined at once.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::ops::provider::ProvCtx;
use crate::ops::store::{StoreCtx, UriOrigin};
use crate::pemuri;
use crate::token::login::Prompt;
use crate::token::object::{Found, KeyAlgorithm, KeyObj};

/// A decoder instance for one key type.
pub(crate) struct DecoderCtx {
    pub(crate) prov: Arc<ProvCtx>,
    pub(crate) algorithm: KeyAlgorithm,
}

impl DecoderCtx {
    /// The token key named by the PEM-URI DER body `input`; `Ok(None)` when `input` is
    /// something else or names a key of another type (another decoder then takes it).
    pub(crate) fn decode(
        &self,
        input: &[u8],
        want_private: bool,
        prompt: Option<&mut Prompt<'_>>,
    ) -> Result<Option<Arc<KeyObj>>> {
        let Some(uri) = pemuri::decode_der(input)? else {
            return Ok(None);
        };
        let key = resolve(&self.prov, &uri, want_private, prompt)
            .map_err(|e| e.context("PEM-URI key file"))?;
        Ok((key.algorithm == self.algorithm).then_some(key))
    }
}

/// The DER body of the PEM-URI block in `text` (`Ok(None)` for other PEM), once the URI in it
/// is known to name a usable key.
///
/// The key is looked up here as well as in the key decoder that takes the DER on, because only
/// errors from this first step reach the user: OpenSSL's `file:` store runs the second step
/// quietly and would report a missing object or a public key where a private one is needed as
/// an anonymous "unsupported".
pub(crate) fn pem_to_der(
    prov: &Arc<ProvCtx>,
    text: &[u8],
    want_private: bool,
    prompt: Option<&mut Prompt<'_>>,
) -> Result<Option<Vec<u8>>> {
    let Some((der, uri)) = pemuri::der_body(text)? else {
        return Ok(None);
    };
    resolve(prov, &uri, want_private, prompt).map_err(|e| e.context("PEM-URI key file"))?;
    Ok(Some(der))
}

/// The key `uri` names: its private key when `want_private`, else the first key.
fn resolve(
    prov: &Arc<ProvCtx>,
    uri: &str,
    want_private: bool,
    mut prompt: Option<&mut Prompt<'_>>,
) -> Result<Arc<KeyObj>> {
    let mut store = StoreCtx::open(Arc::clone(prov), uri.as_bytes(), UriOrigin::KeyFile)?;
    if want_private {
        store.expect_private_keys();
    }
    let mut public_only = None;
    while let Some(found) = store.next(prompt.as_deref_mut())? {
        if let Found::Key(key) = found {
            if key.has_private() {
                return Ok(key);
            }
            public_only.get_or_insert(key);
        }
    }
    match public_only {
        Some(key) if !want_private => Ok(key),
        Some(_) => Err(Error::Unsupported(format!(
            "{} names a public key, but a private key is needed",
            store.uri_text()
        ))),
        None => Err(Error::NotFound(format!(
            "no key matches {}",
            store.uri_text()
        ))),
    }
}
