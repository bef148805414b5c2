//! One slot with a token: its identity (for URI matching) and the token calls made with one of
//! its keys on one of its sessions (PKCS#11 3.0 §5.12 signing, §5.10 decryption, §5.18 key
//! derivation). The slot's session pool is in `pool`, its login state in `login`; key
//! generation (§5.18) opens its own read-write session here, as nothing else needs one.

use std::sync::Arc;

use once_cell::sync::OnceCell;

use cryptoki::context::Pkcs11;
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;
use cryptoki::slot::Slot as SlotId;
use zeroize::Zeroizing;

use super::info::TokenFacts;
use super::login::{Login, Pin, PinRequest};
use super::pool::{PooledSession, SessionPool};
use super::settings::SlotSettings;
use crate::error::{Error, Result};
use crate::sys::atfork::TokenCall;
use crate::sys::pkcs11::DecryptFunctions;
use crate::sys::pkcs11::SignFunctions;
use crate::sys::pkcs11_query::QueryFunctions;
use crate::uri::Pkcs11Uri;

/// Identity strings of a slot and its token, blank-padding removed.
#[derive(Clone, Debug)]
pub(crate) struct TokenIdentity {
    pub(crate) label: String,
    pub(crate) manufacturer: String,
    pub(crate) model: String,
    pub(crate) serial: String,
    pub(crate) slot_description: String,
    pub(crate) slot_manufacturer: String,
}

impl TokenIdentity {
    /// True when `other` describes the same token (label, manufacturer, model, serial).
    pub(crate) fn is_same_token(&self, other: &TokenIdentity) -> bool {
        self.label == other.label
            && self.manufacturer == other.manufacturer
            && self.model == other.model
            && self.serial == other.serial
    }

    /// True when every token/slot attribute the URI gives matches (RFC 7512 §2.3).
    pub(crate) fn matches(&self, uri: &Pkcs11Uri, slot_id: u64) -> bool {
        fn same(want: &Option<String>, have: &str) -> bool {
            want.as_deref().is_none_or(|w| w == have)
        }
        same(&uri.token, &self.label)
            && same(&uri.manufacturer, &self.manufacturer)
            && same(&uri.model, &self.model)
            && same(&uri.serial, &self.serial)
            && same(&uri.slot_description, &self.slot_description)
            && same(&uri.slot_manufacturer, &self.slot_manufacturer)
            && uri.slot_id.is_none_or(|id| id == slot_id)
    }
}

/// A slot with a token.
pub(crate) struct Slot {
    pkcs11: Pkcs11,
    id: SlotId,
    identity: TokenIdentity,
    settings: Arc<SlotSettings>,
    decrypt_functions: Option<Arc<DecryptFunctions>>,
    /// The token is write-protected (`CKF_WRITE_PROTECTED`): no key generation.
    write_protected: bool,
    /// The token's `ulMaxSessionCount`, when it states a limit.
    session_limit: Option<usize>,
    sign_functions: Option<Arc<SignFunctions>>,
    query_functions: Option<Arc<QueryFunctions>>,
    /// The token's mechanism numbers, read on first use (`None`: the token did not say).
    mechanisms: OnceCell<Option<Arc<[u64]>>>,
    pool: SessionPool,
    login: Login,
}

/// One call with a key on the token (sign, decrypt, derive): the session, the key object, the
/// mechanism, the input and the size of the output the key makes.
pub(crate) struct SignCall<'a> {
    pub(crate) session: &'a Session,
    pub(crate) key: ObjectHandle,
    /// The key has `CKA_ALWAYS_AUTHENTICATE`: a context-specific login follows `C_SignInit`.
    pub(crate) always_authenticate: bool,
    pub(crate) mechanism: &'a Mechanism<'a>,
    pub(crate) input: &'a [u8],
    pub(crate) output_len: usize,
}

impl Slot {
    pub(crate) fn open(
        pkcs11: Pkcs11,
        id: SlotId,
        settings: Arc<SlotSettings>,
        decrypt_functions: Option<Arc<DecryptFunctions>>,
        sign_functions: Option<Arc<SignFunctions>>,
        query_functions: Option<Arc<QueryFunctions>>,
    ) -> Result<Slot> {
        let slot_info = pkcs11.get_slot_info(id)?;
        let token = TokenFacts::read(&pkcs11, id, sign_functions.as_deref())?;
        // An uninitialised token (SoftHSM2 always offers one more) has no objects and refuses
        // sessions with CKR_TOKEN_NOT_RECOGNIZED: not a place to look for keys.
        if !token.initialized {
            return Err(Error::NotFound(format!(
                "the token in slot {id} is not initialised"
            )));
        }
        let identity = TokenIdentity {
            label: token.label.clone(),
            manufacturer: token.manufacturer.clone(),
            model: token.model.clone(),
            serial: token.serial.clone(),
            slot_description: slot_info.slot_description().trim_end().to_string(),
            slot_manufacturer: slot_info.manufacturer_id().trim_end().to_string(),
        };
        let session_limit = token.session_limit;
        Ok(Slot {
            pool: SessionPool::new(
                pkcs11.clone(),
                id,
                &identity.label,
                settings.max_idle_sessions,
            ),
            write_protected: token.write_protected,
            decrypt_functions,
            login: Login::new(
                pkcs11.clone(),
                id,
                &token,
                Arc::clone(&settings),
                sign_functions.clone(),
            ),
            pkcs11,
            id,
            identity,
            settings,
            session_limit,
            sign_functions,
            query_functions,
            mechanisms: OnceCell::new(),
        })
    }

    pub(crate) fn id(&self) -> SlotId {
        self.id
    }

    pub(crate) fn identity(&self) -> &TokenIdentity {
        &self.identity
    }

    /// Whether public keys of this token may be exported to other providers.
    pub(crate) fn allows_export(&self) -> bool {
        self.settings.allow_export
    }

    /// Whether the quirk `ec-point-short-length` applies to this token's module.
    pub(crate) fn ec_point_short_length(&self) -> bool {
        self.settings.ec_point_short_length
    }

    /// The token's session limit, when it states one.
    pub(crate) fn session_limit(&self) -> Option<usize> {
        self.session_limit
    }

    /// Token label for messages.
    pub(crate) fn label(&self) -> &str {
        &self.identity.label
    }

    /// The mechanisms the token offers (`C_GetMechanismList`, read once per slot), numbers
    /// cryptoki has no name for included; `None` when the token cannot say.
    pub(crate) fn mechanisms(&self) -> Option<Arc<[u64]>> {
        self.mechanisms
            .get_or_init(|| {
                let _call = TokenCall::enter();
                let listed = match &self.query_functions {
                    Some(query) => query.mechanism_list(self.id.id()),
                    None => self
                        .pkcs11
                        .get_mechanism_list(self.id)
                        .map(|list| list.into_iter().map(u64::from).collect())
                        .map_err(Error::from),
                };
                match listed {
                    Ok(list) => {
                        log::debug!("token '{}' offers {} mechanisms", self.label(), list.len());
                        Some(list.into())
                    }
                    Err(e) => {
                        log::debug!("token '{}': no mechanism list: {e}", self.label());
                        None
                    }
                }
            })
            .clone()
    }

    /// `CKA_ALLOWED_MECHANISMS` of a key object as plain mechanism numbers, unknown ones
    /// included; `None` when the key has no restriction, the token does not report one, or the
    /// `no-allowed-mechanisms` quirk is set. An empty list also means no restriction (PKCS#11
    /// 3.0 §4.4: the attribute lists what may be used; tokens that return it empty mean none).
    pub(crate) fn allowed_mechanisms(
        &self,
        session: &Session,
        key: ObjectHandle,
    ) -> Result<Option<Vec<u64>>> {
        if self.settings.ignore_allowed_mechanisms {
            return Ok(None);
        }
        let allowed = match &self.query_functions {
            Some(query) => {
                query.ulong_array_attribute(session, key, cryptoki_sys::CKA_ALLOWED_MECHANISMS)?
            }
            // Without the direct call, cryptoki's reading (which fails on numbers it cannot
            // name: then the key is treated as unrestricted and the token has the last word).
            None => session
                .get_attributes(key, &[AttributeType::AllowedMechanisms])
                .ok()
                .and_then(|attrs| {
                    attrs.into_iter().find_map(|attr| match attr {
                        Attribute::AllowedMechanisms(list) => {
                            Some(list.into_iter().map(u64::from).collect())
                        }
                        _ => None,
                    })
                }),
        };
        Ok(allowed.filter(|list: &Vec<u64>| !list.is_empty()))
    }

    /// Signs on the token: `C_SignInit`, a context-specific login when the key needs one, and
    /// one `C_Sign` into a buffer of the size the key's signatures have.
    pub(crate) fn sign(&self, call: &SignCall<'_>) -> Result<Vec<u8>> {
        let Some(functions) = &self.sign_functions else {
            if call.always_authenticate {
                return Err(Error::Unsupported(format!(
                    "a key on token '{}' needs a login per signature (CKA_ALWAYS_AUTHENTICATE), \
                     but the module's C_SignInit/C_Sign could not be looked up",
                    self.label()
                )));
            }
            return Ok(call.session.sign(call.mechanism, call.key, call.input)?);
        };
        functions.sign_init(call.session, call.mechanism, call.key)?;
        if call.always_authenticate {
            self.login.context_login(call.session)?;
        }
        functions.sign(call.session, call.input, call.output_len)
    }

    /// Decrypts on the token: `C_DecryptInit`, a context-specific login when the key needs one,
    /// and one `C_Decrypt` into a buffer of the modulus size. A failed decryption leaves no
    /// partial plaintext behind.
    pub(crate) fn decrypt(&self, call: &SignCall<'_>) -> Result<Vec<u8>> {
        let Some(functions) = &self.decrypt_functions else {
            if call.always_authenticate {
                return Err(Error::Unsupported(format!(
                    "a key on token '{}' needs a login per use (CKA_ALWAYS_AUTHENTICATE), but \
                     the module's C_DecryptInit/C_Decrypt could not be looked up",
                    self.label()
                )));
            }
            return Ok(call.session.decrypt(call.mechanism, call.key, call.input)?);
        };
        // Modules that use OpenSSL themselves (SoftHSM2) leave their own errors behind on a bad
        // ciphertext; the provider reports the failure itself.
        crate::sys::libcrypto::discarding_errors(|| {
            functions.decrypt_init(call.session, call.mechanism, call.key)?;
            if call.always_authenticate {
                self.login.context_login(call.session)?;
            }
            functions.decrypt(call.session, call.input, call.output_len)
        })
    }

    /// Derives a secret on the token (`C_DeriveKey` into a session object that is extractable
    /// and not sensitive, `output_len` bytes), reads its value and destroys the object, also
    /// when reading fails.
    pub(crate) fn derive_secret(&self, call: &SignCall<'_>) -> Result<Vec<u8>> {
        let value_len = u64::try_from(call.output_len)
            .map_err(|_| Error::BadParam("secret length out of range".into()))?;
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::ValueLen(value_len.into()),
        ];
        let secret = crate::sys::libcrypto::discarding_errors(|| {
            call.session.derive_key(call.mechanism, call.key, &template)
        })?;
        let read = call.session.get_attributes(secret, &[AttributeType::Value]);
        if let Err(e) = call.session.destroy_object(secret) {
            log::debug!(
                "C_DestroyObject of a derived secret on '{}': {e}",
                self.label()
            );
        }
        let value = read?.into_iter().find_map(|attr| match attr {
            Attribute::Value(v) => Some(Zeroizing::new(v)),
            _ => None,
        });
        let value = value.ok_or_else(|| {
            Error::Module(format!(
                "token '{}' returned no value for a derived secret",
                self.label()
            ))
        })?;
        Ok(value.to_vec())
    }

    /// Whether the token can generate key pairs with `mechanism` (and is not write-protected).
    pub(crate) fn can_generate(&self, mechanism: MechanismType) -> bool {
        if self.write_protected {
            return false;
        }
        match self.pkcs11.get_mechanism_info(self.id, mechanism) {
            Ok(info) => info.generate_key_pair(),
            Err(e) => {
                log::debug!("token '{}' has no {mechanism}: {e}", self.label());
                false
            }
        }
    }

    /// A read-write session of its own (outside the pool, closed when dropped): only key
    /// generation writes to the token; every other operation uses the read-only pool.
    pub(crate) fn read_write_session(&self) -> Result<Session> {
        self.pkcs11.open_rw_session(self.id).map_err(|e| {
            Error::from(e).context(format!("read-write session on '{}'", self.label()))
        })
    }

    /// Copies a key object into a session object (`CKA_TOKEN = false`) on the slot's long-lived
    /// login session, where it lives until that session closes. Some tokens sign faster with a
    /// session copy (`pkcs11-module-cache-keys`).
    pub(crate) fn copy_to_session_object(&self, handle: ObjectHandle) -> Result<ObjectHandle> {
        self.with_login_session(|session| {
            Ok(session.copy_object(handle, &[Attribute::Token(false)])?)
        })
    }

    /// Runs `work` on the slot's long-lived login session (opened if there is none): session
    /// objects made there live until the login ends, not when a pooled session closes.
    pub(crate) fn with_login_session<T>(
        &self,
        work: impl FnOnce(&Session) -> Result<T>,
    ) -> Result<T> {
        let _call = TokenCall::enter();
        let mut reserved = self.pool.reserved()?;
        if reserved.is_none() {
            *reserved = Some(self.pool.open()?);
        }
        let session = reserved
            .as_ref()
            .ok_or_else(|| Error::Module("no login session".into()))?;
        work(session)
    }

    /// Destroys session objects made on the login session (an ephemeral key pair that is no
    /// longer used); failures are only logged.
    pub(crate) fn destroy_session_objects(&self, handles: &[ObjectHandle]) {
        let destroyed = self.with_login_session(|session| {
            for handle in handles {
                if let Err(e) = session.destroy_object(*handle) {
                    log::debug!("C_DestroyObject {handle} on '{}': {e}", self.label());
                }
            }
            Ok(())
        });
        if destroyed.is_ok() {
            log::debug!(
                "destroyed {} session objects of an ephemeral key on '{}'",
                handles.len(),
                self.label()
            );
        }
    }

    /// A session of the slot's pool; it goes back when dropped (see `SessionPool::session`).
    pub(crate) fn session(&self) -> Result<PooledSession<'_>> {
        self.pool.session()
    }

    /// Closes the idle sessions (after the token was reset or removed they are all invalid).
    pub(crate) fn close_idle_sessions(&self) {
        self.pool.close_idle_sessions();
    }

    /// Logs the user in unless already logged in (see `Login::login`).
    pub(crate) fn login(&self, request: PinRequest<'_, '_>) -> Result<()> {
        let _call = TokenCall::enter();
        self.login.login(&self.pool, request)
    }

    /// Logs in again with non-interactive PIN sources after the token forgot the login.
    pub(crate) fn relogin(&self) -> Result<()> {
        let _call = TokenCall::enter();
        self.login.relogin(&self.pool)
    }

    /// Whether reading `want_private` objects needs a login first.
    pub(crate) fn needs_login(&self, want_private: bool) -> bool {
        self.login.needs_login(want_private)
    }

    /// True when the token hides private objects behind a login this provider may not make.
    pub(crate) fn private_objects_hidden(&self) -> bool {
        self.login.private_objects_hidden()
    }

    /// The PIN of the last successful login, when one may be reused.
    pub(crate) fn cached_pin(&self) -> Option<Pin> {
        self.login.cached_pin()
    }
}
