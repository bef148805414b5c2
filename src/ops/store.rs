//! The `pkcs11:` store (provider-storemgmt(7), ossl_store(7)): resolves an RFC 7512 URI to the
//! matching tokens and objects and hands them to OpenSSL one at a time as object abstractions
//! (provider-object(7)): keys by reference (never private values), certificates as DER.
//!
//! Resolution happens on the first `load`, because only `load` receives the passphrase callback
//! a login may need. A URI that names no specific object lists every object of the matching
//! tokens; one that names an object (label or id) and matches nothing is an error, so users get
//! "no object matches ..." rather than a silent empty result.

use std::collections::VecDeque;
use std::sync::Arc;

use zeroize::Zeroizing;

use crate::config::KeyFilePins;
use crate::error::{Error, Result};
use crate::ops::provider::ProvCtx;
use crate::ops::search::Search;
use crate::token::login::{Pin, PinRequest, Prompt};
use crate::token::object::{self, Found, ObjectFilter};
use crate::uri::{ObjectType, Pkcs11Uri};

/// `OSSL_STORE_INFO_*` values from openssl/store.h (what `OSSL_STORE_expect` passes).
const STORE_INFO_PUBKEY: i32 = 3;
const STORE_INFO_PKEY: i32 = 4;
const STORE_INFO_CERT: i32 = 5;

/// Where a URI comes from: the program itself (`OSSL_STORE_open`, a file name on a command
/// line), or a PEM-URI key file, whose author may be someone else: its `pin-value` and
/// `pin-source` are ignored unless `pkcs11-module-key-file-pins = use`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum UriOrigin {
    Caller,
    KeyFile,
}

/// One open `pkcs11:` URI.
pub(crate) struct StoreCtx {
    prov: Arc<ProvCtx>,
    uri: Pkcs11Uri,
    text: String,
    /// Why the URI cannot be used. Reported by the first `load`: OpenSSL 3.0 discards errors
    /// raised by a failing `open` and would only say "unregistered scheme".
    invalid: Option<Error>,
    expect: i32,
    /// Search criteria (`OSSL_STORE_find`); objects that do not meet them are left out.
    search: Search,
    pending: Option<VecDeque<Found>>,
    finished: bool,
    /// The last `load` failed. `eof` says "not yet" once more, because `openssl storeutl` asks
    /// for EOF before it asks for an error and would otherwise count a failure as an empty
    /// result (exit 0); the next `load` then ends the listing without trying again.
    just_failed: bool,
}

/// The error for a URI that names `what` where a private key is needed.
fn not_private(uri: &str, what: &str) -> Error {
    Error::Unsupported(format!(
        "{uri} names {what}, but a private key is needed (use type=private)"
    ))
}

/// The PIN a URI gives: `pin-value`, or the first line of the `pin-source` file.
pub(crate) fn pin_from_uri(uri: &Pkcs11Uri) -> Result<Option<Pin>> {
    if let Some(pin) = &uri.pin_value {
        return Ok(Some(Zeroizing::new(pin.as_bytes().to_vec())));
    }
    if uri.pin_source.is_some() {
        let path = uri
            .pin_source_path()
            .ok_or_else(|| Error::Uri("pin-source must be a file path or a file: URI".into()))?;
        // One text for every way the file can be unusable (missing, unreadable, not a regular
        // file, not UTF-8, a long line, empty): the URI may come from someone who must not
        // learn anything about the files this program can read.
        let pin = crate::config::read_pin_file(path).map_err(|e| {
            log::debug!("pin-source: {e}");
            Error::Uri(format!(
                "the URI's pin-source '{path}' cannot be used: it must be a readable regular \
                 file whose first line is the PIN"
            ))
        })?;
        return Ok(Some(Zeroizing::new(pin.as_bytes().to_vec())));
    }
    Ok(None)
}

impl StoreCtx {
    /// `OSSL_FUNC_store_open`: parses the URI (no token access yet). Only a URI that is not
    /// `pkcs11:` at all fails here, so other loaders can try it.
    pub(crate) fn open(prov: Arc<ProvCtx>, uri: &[u8], origin: UriOrigin) -> Result<StoreCtx> {
        let is_pkcs11 = uri
            .get(..7)
            .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"pkcs11:"));
        if !is_pkcs11 {
            return Err(Error::Uri("not a pkcs11: URI".into()));
        }
        let options = prov.config().uri_unknown_attributes.into();
        let (parsed, invalid) = match Pkcs11Uri::parse_with(uri, options) {
            Ok(mut parsed) => {
                let has_pin = parsed.pin_value.is_some() || parsed.pin_source.is_some();
                if has_pin
                    && origin == UriOrigin::KeyFile
                    && prov.config().key_file_pins == KeyFilePins::Ignore
                {
                    log::debug!(
                        "ignoring pin-value/pin-source in a key file's URI \
                         (pkcs11-module-key-file-pins = ignore)"
                    );
                    parsed.pin_value = None;
                    parsed.pin_source = None;
                }
                let invalid = Self::check_module(&prov, &parsed).err();
                (parsed, invalid)
            }
            Err(e) => (Pkcs11Uri::default(), Some(Error::Uri(e.to_string()))),
        };
        let text = parsed.to_string();
        Ok(StoreCtx {
            prov,
            uri: parsed,
            text,
            invalid,
            expect: 0,
            search: Search::default(),
            pending: None,
            finished: false,
            just_failed: false,
        })
    }

    fn check_module(prov: &ProvCtx, uri: &Pkcs11Uri) -> Result<()> {
        if let Some(path) = &uri.module_path {
            let configured = prov.config().module_path.as_deref().unwrap_or("");
            if path != configured {
                return Err(Error::Unsupported(format!(
                    "URI asks for module-path '{path}', but this provider uses '{configured}'; \
                     change pkcs11-module-path instead"
                )));
            }
        }
        Ok(())
    }

    /// `OSSL_STORE_PARAM_EXPECT`.
    pub(crate) fn set_expect(&mut self, expect: i32) {
        self.expect = expect;
    }

    /// Search criteria from `set_ctx_params`: each one given replaces the one set before.
    pub(crate) fn add_search(&mut self, criteria: Search) -> Result<()> {
        let old = std::mem::take(&mut self.search);
        let merged = Search {
            subject: criteria.subject.or(old.subject),
            issuer: criteria.issuer.or(old.issuer),
            serial: criteria.serial.or(old.serial),
            digest: criteria.digest.or(old.digest),
            fingerprint: criteria.fingerprint.or(old.fingerprint),
            alias: criteria.alias.or(old.alias),
        };
        self.search = merged.normalised()?;
        Ok(())
    }

    /// Looks for private keys only (unless the URI names another type).
    pub(crate) fn expect_private_keys(&mut self) {
        self.expect = STORE_INFO_PKEY;
    }

    /// The URI as given (never with a PIN), for messages.
    pub(crate) fn uri_text(&self) -> &str {
        &self.text
    }

    /// `OSSL_FUNC_store_eof`.
    pub(crate) fn eof(&self) -> bool {
        !self.just_failed
            && (self.finished || self.pending.as_ref().is_some_and(VecDeque::is_empty))
    }

    /// Next object, resolving the URI on the first call. After an error the store is finished
    /// (see `just_failed`), so a caller looping until EOF does not retry a failed login.
    pub(crate) fn next(&mut self, prompt: Option<&mut Prompt<'_>>) -> Result<Option<Found>> {
        self.just_failed = false;
        if self.finished {
            return Ok(None);
        }
        if let Some(err) = self.invalid.take() {
            self.finished = true;
            self.just_failed = true;
            return Err(err);
        }
        if self.pending.is_none() {
            match self.resolve(prompt) {
                Ok(found) => self.pending = Some(found.into()),
                Err(e) => {
                    self.finished = true;
                    self.just_failed = true;
                    return Err(e);
                }
            }
        }
        let next = self.pending.as_mut().and_then(VecDeque::pop_front);
        if next.is_none() {
            self.finished = true;
        }
        Ok(next)
    }

    fn filter(&self) -> Option<ObjectFilter> {
        let mut filter = ObjectFilter {
            label: self.uri.object.clone(),
            id: self.uri.id.clone(),
            ..ObjectFilter::default()
        };
        match self.uri.object_type {
            Some(ObjectType::Private) => filter.private_keys = true,
            Some(ObjectType::Public) => filter.public_keys = true,
            Some(ObjectType::Cert) => filter.certificates = true,
            Some(ObjectType::SecretKey | ObjectType::Data) => return None,
            None => match self.expect {
                STORE_INFO_PKEY => filter.private_keys = true,
                STORE_INFO_PUBKEY => filter.public_keys = true,
                STORE_INFO_CERT => filter.certificates = true,
                _ => {
                    filter.private_keys = true;
                    filter.public_keys = true;
                    filter.certificates = true;
                }
            },
        }
        Some(filter)
    }

    fn uri_pin(&self) -> Result<Option<Pin>> {
        pin_from_uri(&self.uri)
    }

    fn resolve(&mut self, mut prompt: Option<&mut Prompt<'_>>) -> Result<Vec<Found>> {
        if self.expect == STORE_INFO_PKEY {
            let named = match self.uri.object_type {
                Some(ObjectType::Public) => Some("a public key"),
                Some(ObjectType::Cert) => Some("a certificate"),
                _ => None,
            };
            if let Some(named) = named {
                return Err(not_private(&self.text, named));
            }
        }
        let Some(mut filter) = self.filter() else {
            log::debug!(
                "{}: secret keys and data objects are not offered to OpenSSL",
                self.text
            );
            return Ok(Vec::new());
        };
        if self.search.certificates_only() {
            // Names, serial numbers and fingerprints are certificates' (no login needed).
            filter.private_keys = false;
            filter.public_keys = false;
            if !filter.certificates {
                return Ok(Vec::new());
            }
        }
        let module = self.prov.tokens.module()?;
        let slots: Vec<_> = module
            .slots()?
            .into_iter()
            .filter(|s| s.identity().matches(&self.uri, s.id().id()))
            .collect();
        if slots.is_empty() {
            return Err(Error::NotFound(format!(
                "no token matches {} in module {}",
                self.text,
                module.path()
            )));
        }
        let mut found = Vec::new();
        for slot in &slots {
            if slot.needs_login(filter.private_keys) {
                let request = PinRequest {
                    uri_pin: self.uri_pin()?,
                    prompt: prompt.as_deref_mut(),
                };
                slot.login(request)?;
            }
            found.extend(object::find(slot, &filter)?);
        }
        let names_object = self.uri.object.is_some() || self.uri.id.is_some();
        if found.is_empty() && !self.uri.is_token_only() {
            if filter.private_keys {
                if let Some(slot) = slots.iter().find(|s| s.private_objects_hidden()) {
                    return Err(Error::LoginRequired(format!(
                        "no private key of {} is visible: token '{}' is not logged in, because \
                         pkcs11-module-login-behavior = never",
                        self.text,
                        slot.label()
                    )));
                }
            }
            if filter.private_keys && !filter.public_keys {
                // Say so when the URI names only a public key or certificate: the user most
                // likely wrote the wrong type or object.
                let others = ObjectFilter {
                    public_keys: true,
                    certificates: true,
                    ..filter.clone()
                };
                for slot in &slots {
                    if !object::find(slot, &others)?.is_empty() {
                        return Err(not_private(&self.text, "only a public key or certificate"));
                    }
                }
            }
            return Err(Error::NotFound(format!("no object matches {}", self.text)));
        }
        if !self.search.is_empty() {
            let mut kept = Vec::with_capacity(found.len());
            for item in found {
                if self.search.matches(&self.prov, &item)? {
                    kept.push(item);
                }
            }
            log::debug!(
                "{}: {} objects meet the search criteria",
                self.text,
                kept.len()
            );
            found = kept;
        }
        // A URI that names one private key (by label or id) must not silently pick one of
        // several: signing with the wrong key is worse than failing.
        let private_keys = found
            .iter()
            .filter(|f| matches!(f, Found::Key(k) if k.has_private()))
            .count();
        if names_object && private_keys > 1 {
            return Err(Error::Ambiguous(format!(
                "{private_keys} private keys match {}; add id= or token= to the URI to choose one",
                self.text
            )));
        }
        Ok(found)
    }
}
