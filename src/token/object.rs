//! Token objects the provider hands to OpenSSL: keys (a reference to the private key object plus
//! its public parts, never private values) and certificates (DER), found by the class, label and
//! id a `pkcs11:` URI gives (PKCS#11 3.0 §5.7 `C_FindObjects*`, §4.8–4.9 key attributes).
//!
//! Public parts come from the private key object where the token exposes them (RSA modulus and
//! exponent), else from the public key object with the same CKA_ID, else from the certificate
//! with the same CKA_ID, so a token with only a private key and its certificate still works.

use std::sync::{Arc, RwLock};

use once_cell::sync::OnceCell;

use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::Session;

use super::Tokens;
use super::login::PinRequest;
use super::metrics::Series;
use super::slot::{Slot, TokenIdentity};
use crate::asn1::Curve;
use crate::error::{Error, Result};
use crate::sys::atfork;
use crate::sys::libcrypto::{self, CertificateKey};

/// The public half of a key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum PublicKey {
    /// RSA modulus and public exponent, big-endian.
    Rsa { modulus: Vec<u8>, exponent: Vec<u8> },
    /// EC point (uncompressed/compressed SEC1 for P-curves, raw for Edwards curves).
    Ec { curve: Curve, point: Vec<u8> },
}

/// The OpenSSL key types the provider supports (keymgmt names).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyAlgorithm {
    Rsa,
    RsaPss,
    Ec,
    Ed25519,
    Ed448,
}

impl KeyAlgorithm {
    /// OpenSSL's name for the key type (`OSSL_OBJECT_PARAM_DATA_TYPE`).
    pub(crate) fn type_name(self) -> &'static std::ffi::CStr {
        match self {
            KeyAlgorithm::Rsa => c"RSA",
            KeyAlgorithm::RsaPss => c"RSA-PSS",
            KeyAlgorithm::Ec => c"EC",
            KeyAlgorithm::Ed25519 => c"ED25519",
            KeyAlgorithm::Ed448 => c"ED448",
        }
    }

    fn of(public: &PublicKey, pss_only: bool) -> KeyAlgorithm {
        match public {
            PublicKey::Rsa { .. } if pss_only => KeyAlgorithm::RsaPss,
            PublicKey::Rsa { .. } => KeyAlgorithm::Rsa,
            PublicKey::Ec {
                curve: Curve::Ed25519,
                ..
            } => KeyAlgorithm::Ed25519,
            PublicKey::Ec {
                curve: Curve::Ed448,
                ..
            } => KeyAlgorithm::Ed448,
            PublicKey::Ec { .. } => KeyAlgorithm::Ec,
        }
    }
}

/// Where a key lives on a token.
///
/// The (slot, handle) binding belongs to one process: after `fork()` it is found again on the
/// child's own module by class, CKA_ID and label (handles are not valid across processes).
/// With `pkcs11-module-cache-keys` the signing handle is a session-object copy of the key.
pub(crate) struct TokenKey {
    pub(crate) id: Vec<u8>,
    pub(crate) label: Option<String>,
    pub(crate) always_authenticate: bool,
    /// `CKA_ALLOWED_MECHANISMS` as plain numbers; `None`: no restriction known.
    pub(crate) allowed_mechanisms: Option<Vec<u64>>,
    private: bool,
    token: TokenIdentity,
    binding: RwLock<Binding>,
    /// An ephemeral key pair (session objects on the slot's login session, see
    /// `generate`): its public key object, destroyed with the private one when the key is
    /// dropped.
    ephemeral_public: Option<ObjectHandle>,
}

struct Binding {
    generation: u64,
    slot: Arc<Slot>,
    /// The token object.
    token_handle: ObjectHandle,
    /// What signing uses: the token object or its session copy.
    handle: ObjectHandle,
    copy_attempted: bool,
}

impl TokenKey {
    fn new(slot: &Arc<Slot>, handle: ObjectHandle, private: bool, attrs: KeyAttributes) -> Self {
        TokenKey {
            id: attrs.id,
            label: attrs.label,
            always_authenticate: attrs.always_authenticate,
            allowed_mechanisms: attrs.allowed_mechanisms,
            private,
            token: slot.identity().clone(),
            binding: RwLock::new(Binding {
                generation: atfork::generation(),
                slot: Arc::clone(slot),
                token_handle: handle,
                handle,
                copy_attempted: false,
            }),
            ephemeral_public: None,
        }
    }

    /// True for an ephemeral key pair: session objects that end with this key (or the
    /// process), never found again by a search.
    pub(crate) fn is_ephemeral(&self) -> bool {
        self.ephemeral_public.is_some()
    }

    /// True for a private key object.
    pub(crate) fn has_private(&self) -> bool {
        self.private
    }

    /// True when `handle` is the key's session copy, not its token object.
    pub(super) fn is_copy(&self, handle: ObjectHandle) -> bool {
        self.binding
            .read()
            .map(|b| b.token_handle != handle)
            .unwrap_or(false)
    }

    /// Label of the token holding the key.
    pub(crate) fn token_label(&self) -> &str {
        &self.token.label
    }

    /// The mechanisms the key's token offers, when it says (see `Slot::mechanisms`).
    pub(crate) fn token_mechanisms(&self) -> Option<Arc<[u64]>> {
        let slot = self.binding.read().ok().map(|b| Arc::clone(&b.slot))?;
        slot.mechanisms()
    }

    /// Whether the token's public keys may go to other providers (`allow-export`).
    pub(crate) fn allows_export(&self) -> bool {
        self.binding
            .read()
            .map(|b| b.slot.allows_export())
            .unwrap_or(false)
    }

    /// The slot and signing handle valid in this process: re-found after a fork or when asked
    /// (`rebind`), with the session copy made on first use when `pkcs11-module-cache-keys` is
    /// set.
    pub(super) fn bound(
        &self,
        tokens: &Tokens,
        rebind: Rebind,
    ) -> Result<(Arc<Slot>, ObjectHandle)> {
        let generation = atfork::generation();
        // An ephemeral key is a session object already.
        let copy = tokens.config().cache_keys && !self.is_ephemeral();
        if rebind == Rebind::No {
            let binding = self.binding.read().map_err(|_| poisoned())?;
            if binding.generation == generation && (binding.copy_attempted || !copy) {
                return Ok((Arc::clone(&binding.slot), binding.handle));
            }
        }
        let mut binding = self.binding.write().map_err(|_| poisoned())?;
        if binding.generation != generation || rebind == Rebind::FindAgain {
            let relogin = binding.generation == generation;
            let (slot, handle) = self.find_again(tokens, &binding.slot, relogin)?;
            *binding = Binding {
                generation,
                slot,
                token_handle: handle,
                handle,
                copy_attempted: false,
            };
        } else if rebind == Rebind::TokenObject {
            // The session copy (or its session) is gone: sign with the token object.
            binding.handle = binding.token_handle;
            binding.copy_attempted = true;
        }
        if copy && !binding.copy_attempted {
            binding.copy_attempted = true;
            match binding.slot.copy_to_session_object(binding.token_handle) {
                Ok(copy) => binding.handle = copy,
                Err(e) => log::debug!("key stays a token object (no session copy): {e}"),
            }
        }
        Ok((Arc::clone(&binding.slot), binding.handle))
    }

    /// The same private key on this process's module (after fork, or after the token lost its
    /// handles), logged in with the PIN used before when one was kept (never by prompting).
    /// `relogin`: the token may have forgotten the login (removed and inserted again) although
    /// this process still counts it as logged in.
    fn find_again(
        &self,
        tokens: &Tokens,
        old_slot: &Slot,
        relogin: bool,
    ) -> Result<(Arc<Slot>, ObjectHandle)> {
        let module = tokens.module()?;
        let slot = module
            .slots()?
            .into_iter()
            .find(|s| s.identity().is_same_token(&self.token))
            .ok_or_else(|| {
                Error::NotFound(format!("token '{}' is no longer present", self.token.label))
            })?;
        if relogin {
            slot.relogin()?;
        } else if slot.needs_login(true) {
            slot.login(PinRequest {
                uri_pin: old_slot.cached_pin(),
                prompt: None,
            })?;
        }
        let session = slot.session()?;
        let handle = find_handles(
            session.get()?,
            ObjectClass::PRIVATE_KEY,
            self.label.as_deref(),
            Some(&self.id).filter(|id| !id.is_empty()),
        )?
        .into_iter()
        .next()
        .ok_or_else(|| {
            Error::NotFound(format!(
                "key '{}' is no longer on token '{}'",
                self.label.as_deref().unwrap_or(""),
                self.token.label
            ))
        })?;
        drop(session);
        log::debug!("key '{}' found again", self.label.as_deref().unwrap_or(""));
        Ok((slot, handle))
    }
}

impl Drop for TokenKey {
    /// An ephemeral key pair's session objects go with the key (a TLS server makes one per
    /// handshake with `?provider=pkcs11`); in a forked child they belong to the parent.
    fn drop(&mut self) {
        let Some(public) = self.ephemeral_public else {
            return;
        };
        let Ok(binding) = self.binding.get_mut() else {
            return;
        };
        if binding.generation != atfork::generation() {
            return;
        }
        let mut handles = vec![binding.token_handle, public];
        if binding.handle != binding.token_handle {
            handles.push(binding.handle);
        }
        binding.slot.destroy_session_objects(&handles);
    }
}

fn poisoned() -> Error {
    Error::Module("key binding lock poisoned".into())
}

/// Attributes of a key object that the provider keeps.
struct KeyAttributes {
    id: Vec<u8>,
    label: Option<String>,
    always_authenticate: bool,
    allowed_mechanisms: Option<Vec<u64>>,
}

/// A key as OpenSSL's keydata: public parts, and the token reference when it is a token key
/// (a key imported from another provider for comparison has none).
pub(crate) struct KeyObj {
    pub(crate) algorithm: KeyAlgorithm,
    pub(crate) public: PublicKey,
    pub(crate) token: Option<TokenKey>,
    /// Sign-duration series per mechanism family (see `op`), looked up on first use.
    metrics: [OnceCell<Arc<Series>>; 4],
}

impl KeyObj {
    /// A public key imported from OpenSSL parameters.
    pub(crate) fn imported(algorithm: KeyAlgorithm, public: PublicKey) -> KeyObj {
        KeyObj {
            algorithm,
            public,
            token: None,
            metrics: Default::default(),
        }
    }

    /// True when the private key is on a token.
    pub(crate) fn has_private(&self) -> bool {
        self.token.as_ref().is_some_and(TokenKey::has_private)
    }

    /// The metrics series of mechanism family `family` (0..4), made by `make` on first use.
    pub(crate) fn metrics_series(
        &self,
        family: usize,
        make: impl FnOnce() -> Arc<Series>,
    ) -> Arc<Series> {
        match self.metrics.get(family) {
            Some(cell) => Arc::clone(cell.get_or_init(make)),
            None => make(),
        }
    }

    /// The session limit of the token holding the key (`ulMaxSessionCount`), when it has one.
    pub(crate) fn session_limit(&self) -> Option<usize> {
        let token = self.token.as_ref()?;
        let binding = token.binding.read().ok()?;
        binding.slot.session_limit()
    }

    /// Key size in bits.
    pub(crate) fn bits(&self) -> usize {
        match &self.public {
            PublicKey::Rsa { modulus, .. } => significant_bits(modulus),
            PublicKey::Ec { curve, .. } => curve.bits(),
        }
    }

    /// Security strength in bits (SP 800-57 Part 1 Table 2 for RSA).
    pub(crate) fn security_bits(&self) -> usize {
        match &self.public {
            PublicKey::Rsa { .. } => match self.bits() {
                b if b >= 15360 => 256,
                b if b >= 7680 => 192,
                b if b >= 3072 => 128,
                b if b >= 2048 => 112,
                b if b >= 1024 => 80,
                _ => 0,
            },
            PublicKey::Ec { curve, .. } => curve.security_bits(),
        }
    }

    /// Largest signature this key makes, in bytes.
    pub(crate) fn max_signature_size(&self) -> usize {
        match &self.public {
            PublicKey::Rsa { modulus, .. } => significant_bits(modulus).div_ceil(8),
            PublicKey::Ec { curve, .. } => curve.max_signature_size(),
        }
    }

    /// Length of the token's raw signatures: the modulus for RSA, r || s for ECDSA and the
    /// R || S pair for EdDSA (before any DER encoding).
    pub(crate) fn raw_signature_size(&self) -> usize {
        match &self.public {
            PublicKey::Rsa { modulus, .. } => significant_bits(modulus).div_ceil(8),
            PublicKey::Ec { curve, .. } => 2 * curve.field_bytes(),
        }
    }
}

/// How `TokenKey::bound` finds the signing handle again after the token rejected it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Rebind {
    /// Use the handle as it is.
    No,
    /// The session copy is gone: use the token object.
    TokenObject,
    /// Search the token for the key again (handles are per session state on some tokens, and
    /// all are gone after the token was removed and inserted again).
    FindAgain,
}

fn significant_bits(big_endian: &[u8]) -> usize {
    let mut bytes = big_endian.iter().skip_while(|b| **b == 0);
    match bytes.next() {
        None => 0,
        Some(first) => (8 - first.leading_zeros() as usize) + 8 * bytes.count(),
    }
}

/// What to look for on one token.
#[derive(Clone, Debug, Default)]
pub(crate) struct ObjectFilter {
    pub(crate) private_keys: bool,
    pub(crate) public_keys: bool,
    pub(crate) certificates: bool,
    pub(crate) label: Option<String>,
    pub(crate) id: Option<Vec<u8>>,
}

/// An object found on a token.
pub(crate) enum Found {
    Key(Arc<KeyObj>),
    Certificate {
        der: Vec<u8>,
        label: Option<String>,
        /// `CKA_SUBJECT` (DER), when the token keeps it.
        subject: Option<Vec<u8>>,
    },
}

/// Finds the objects on `slot` that `filter` selects, private keys first.
pub(crate) fn find(slot: &Arc<Slot>, filter: &ObjectFilter) -> Result<Vec<Found>> {
    let session = slot.session()?;
    let session = session.get()?;
    let mut found = Vec::new();
    let classes = [
        (filter.private_keys, ObjectClass::PRIVATE_KEY),
        (filter.public_keys, ObjectClass::PUBLIC_KEY),
        (filter.certificates, ObjectClass::CERTIFICATE),
    ];
    for (wanted, class) in classes {
        if !wanted {
            continue;
        }
        for handle in find_handles(session, class, filter.label.as_deref(), filter.id.as_ref())? {
            let item = if class == ObjectClass::CERTIFICATE {
                certificate(session, handle)
            } else {
                key(slot, session, handle, class == ObjectClass::PRIVATE_KEY)
            };
            match item {
                Ok(Some(item)) => found.push(item),
                Ok(None) => {}
                // One unreadable object must not hide the others.
                Err(e) => log::debug!("skipping object {handle} on '{}': {e}", slot.label()),
            }
        }
    }
    Ok(found)
}

/// Handles of the token objects of `class` with the given label and id (each optional).
///
/// Session objects are left out: URIs name what is stored on the token, and the session copies
/// `pkcs11-module-cache-keys` makes carry the same label and id as their originals, so counting
/// them would make a second load of the same URI ambiguous.
fn find_handles(
    session: &Session,
    class: ObjectClass,
    label: Option<&str>,
    id: Option<&Vec<u8>>,
) -> Result<Vec<ObjectHandle>> {
    let mut template = vec![Attribute::Class(class), Attribute::Token(true)];
    if let Some(label) = label {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = id {
        template.push(Attribute::Id(id.clone()));
    }
    Ok(session.find_objects(&template)?)
}

/// The key whose private key object is `handle` (e.g. one just generated), read as `find`
/// reads keys.
pub(crate) fn private_key(
    slot: &Arc<Slot>,
    session: &Session,
    handle: ObjectHandle,
) -> Result<Arc<KeyObj>> {
    match key(slot, session, handle, true)? {
        Some(Found::Key(key)) => Ok(key),
        _ => Err(Error::NotFound(format!(
            "the private key object {handle} on token '{}' is not a key this provider offers",
            slot.label()
        ))),
    }
}

/// An ephemeral key pair made on `session` (the slot's login session): the key as
/// [`private_key`] reads it, destroyed when dropped.
pub(crate) fn ephemeral_key(
    slot: &Arc<Slot>,
    session: &Session,
    private: ObjectHandle,
    public: ObjectHandle,
) -> Result<Arc<KeyObj>> {
    let mut key = private_key(slot, session, private)?;
    let token = Arc::get_mut(&mut key)
        .and_then(|k| k.token.as_mut())
        .ok_or_else(|| Error::Module("a new key is already shared".into()))?;
    token.ephemeral_public = Some(public);
    Ok(key)
}

/// True when a private key with `label` or with `id` (each optional) is already on the token.
pub(crate) fn private_key_exists(
    session: &Session,
    label: Option<&str>,
    id: Option<&Vec<u8>>,
) -> Result<bool> {
    if label.is_some() && !find_handles(session, ObjectClass::PRIVATE_KEY, label, None)?.is_empty()
    {
        return Ok(true);
    }
    Ok(id.is_some() && !find_handles(session, ObjectClass::PRIVATE_KEY, None, id)?.is_empty())
}

fn text(bytes: Vec<u8>) -> Option<String> {
    String::from_utf8(bytes).ok()
}

fn certificate(session: &Session, handle: ObjectHandle) -> Result<Option<Found>> {
    let attrs = session.get_attributes(
        handle,
        &[
            AttributeType::Value,
            AttributeType::Label,
            AttributeType::Subject,
        ],
    )?;
    let (mut der, mut label, mut subject) = (None, None, None);
    for attr in attrs {
        match attr {
            Attribute::Value(v) => der = Some(v),
            Attribute::Label(l) => label = text(l),
            Attribute::Subject(v) if !v.is_empty() => subject = Some(v),
            _ => {}
        }
    }
    Ok(der.map(|der| Found::Certificate {
        der,
        label,
        subject,
    }))
}

fn key(
    slot: &Arc<Slot>,
    session: &Session,
    handle: ObjectHandle,
    private: bool,
) -> Result<Option<Found>> {
    let attrs = session.get_attributes(
        handle,
        &[
            AttributeType::KeyType,
            AttributeType::Id,
            AttributeType::Label,
            AttributeType::AlwaysAuthenticate,
            AttributeType::Modulus,
            AttributeType::PublicExponent,
            AttributeType::EcParams,
            AttributeType::EcPoint,
        ],
    )?;
    let mut key_type = None;
    let mut id = Vec::new();
    let mut label = None;
    let mut always_authenticate = false;
    let (mut modulus, mut exponent, mut ec_params, mut ec_point) = (None, None, None, None);
    for attr in attrs {
        match attr {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::Id(v) => id = v,
            Attribute::Label(v) => label = text(v),
            Attribute::AlwaysAuthenticate(b) => always_authenticate = b,
            Attribute::Modulus(v) if !v.is_empty() => modulus = Some(v),
            Attribute::PublicExponent(v) if !v.is_empty() => exponent = Some(v),
            Attribute::EcParams(v) if !v.is_empty() => ec_params = Some(v),
            Attribute::EcPoint(v) if !v.is_empty() => ec_point = Some(v),
            _ => {}
        }
    }
    let public = match key_type {
        Some(KeyType::RSA) => match (modulus, exponent) {
            (Some(modulus), Some(exponent)) => Some(PublicKey::Rsa { modulus, exponent }),
            _ => None,
        },
        Some(KeyType::EC) | Some(KeyType::EC_EDWARDS) => {
            let curve = ec_params
                .as_deref()
                .and_then(Curve::from_ec_params)
                .ok_or_else(|| Error::Unsupported("key on an unsupported curve".into()))?;
            ec_point
                .as_deref()
                .and_then(|p| public_point(p, curve, slot.ec_point_short_length()))
                .map(|point| PublicKey::Ec { curve, point })
        }
        // Other key types (DSA, secret keys, ...) are not offered to OpenSSL.
        _ => return Ok(None),
    };
    let public = match public {
        Some(p) => p,
        None => companion_public_key(session, &id, label.as_deref(), slot.ec_point_short_length())?
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "no public key or certificate on token '{}' for key '{}'",
                    slot.label(),
                    label.as_deref().unwrap_or("")
                ))
            })?,
    };
    // Read apart from the others: its values may be mechanisms cryptoki has no name for.
    let allowed_mechanisms = slot
        .allowed_mechanisms(session, handle)
        .unwrap_or_else(|e| {
            log::debug!("CKA_ALLOWED_MECHANISMS of object {handle} unreadable: {e}");
            None
        });
    let pss_only = allowed_mechanisms.as_deref().is_some_and(allows_only_pss);
    // Read the token's mechanism list now, once per slot, so signing (possibly inside an ASYNC
    // job, on its small stack) finds it cached.
    let _ = slot.mechanisms();
    let attributes = KeyAttributes {
        id,
        label,
        always_authenticate,
        allowed_mechanisms,
    };
    Ok(Some(Found::Key(Arc::new(KeyObj {
        algorithm: KeyAlgorithm::of(&public, pss_only),
        public,
        token: Some(TokenKey::new(slot, handle, private, attributes)),
        metrics: Default::default(),
    }))))
}

/// True when every allowed mechanism is an RSA-PSS one: the key is then an RSA-PSS key for
/// OpenSSL (as latchset/pkcs11-provider decides it).
fn allows_only_pss(mechanisms: &[u64]) -> bool {
    use cryptoki_sys::*;
    let pss = [
        CKM_RSA_PKCS_PSS,
        CKM_SHA1_RSA_PKCS_PSS,
        CKM_SHA224_RSA_PKCS_PSS,
        CKM_SHA256_RSA_PKCS_PSS,
        CKM_SHA384_RSA_PKCS_PSS,
        CKM_SHA512_RSA_PKCS_PSS,
        CKM_SHA3_224_RSA_PKCS_PSS,
        CKM_SHA3_256_RSA_PKCS_PSS,
        CKM_SHA3_384_RSA_PKCS_PSS,
        CKM_SHA3_512_RSA_PKCS_PSS,
    ];
    !mechanisms.is_empty() && mechanisms.iter().all(|m| pss.contains(m))
}

/// The public key of a private key without readable public attributes: the public key object,
/// else the certificate, with the same CKA_ID (or the same label when the id is empty).
fn companion_public_key(
    session: &Session,
    id: &[u8],
    label: Option<&str>,
    ec_point_short_length: bool,
) -> Result<Option<PublicKey>> {
    let link = if !id.is_empty() {
        Attribute::Id(id.to_vec())
    } else if let Some(label) = label {
        Attribute::Label(label.as_bytes().to_vec())
    } else {
        return Ok(None);
    };
    for handle in
        session.find_objects(&[Attribute::Class(ObjectClass::PUBLIC_KEY), link.clone()])?
    {
        let attrs = session.get_attributes(
            handle,
            &[
                AttributeType::Modulus,
                AttributeType::PublicExponent,
                AttributeType::EcParams,
                AttributeType::EcPoint,
            ],
        )?;
        let (mut modulus, mut exponent, mut params, mut point) = (None, None, None, None);
        for attr in attrs {
            match attr {
                Attribute::Modulus(v) => modulus = Some(v),
                Attribute::PublicExponent(v) => exponent = Some(v),
                Attribute::EcParams(v) => params = Some(v),
                Attribute::EcPoint(v) => point = Some(v),
                _ => {}
            }
        }
        if let (Some(modulus), Some(exponent)) = (modulus, exponent) {
            return Ok(Some(PublicKey::Rsa { modulus, exponent }));
        }
        if let Some(curve) = params.as_deref().and_then(Curve::from_ec_params) {
            if let Some(point) = point
                .as_deref()
                .and_then(|p| public_point(p, curve, ec_point_short_length))
            {
                return Ok(Some(PublicKey::Ec { curve, point }));
            }
        }
    }
    for handle in session.find_objects(&[Attribute::Class(ObjectClass::CERTIFICATE), link])? {
        if let Some(Found::Certificate { der, .. }) = certificate(session, handle)? {
            return public_key_of_certificate(&der).map(Some);
        }
    }
    Ok(None)
}

/// The public key in a DER certificate, read by libcrypto.
/// The public point in `CKA_EC_POINT`; with the quirk `ec-point-short-length` also from an
/// OCTET STRING whose length of 128 to 255 is given in one byte.
fn public_point(attr: &[u8], curve: Curve, short_length_quirk: bool) -> Option<Vec<u8>> {
    crate::asn1::unwrap_ec_point(attr, curve).or_else(|| {
        short_length_quirk
            .then(|| crate::asn1::unwrap_ec_point_short_length(attr, curve))
            .flatten()
    })
}

fn public_key_of_certificate(der: &[u8]) -> Result<PublicKey> {
    Ok(match libcrypto::certificate_public_key(der)? {
        CertificateKey::Rsa { modulus, exponent } => PublicKey::Rsa { modulus, exponent },
        CertificateKey::Ec { group, point } => PublicKey::Ec {
            curve: Curve::from_group_name(&group).ok_or_else(|| {
                Error::Unsupported(format!("certificate key on unsupported curve {group}"))
            })?,
            point,
        },
        CertificateKey::Ed25519(point) => PublicKey::Ec {
            curve: Curve::Ed25519,
            point,
        },
        CertificateKey::Ed448(point) => PublicKey::Ec {
            curve: Curve::Ed448,
            point,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_ignore_leading_zero_bytes() {
        assert_eq!(significant_bits(&[0x00, 0x80, 0x00]), 16);
        assert_eq!(significant_bits(&[0x01]), 1);
        assert_eq!(significant_bits(&[]), 0);
        let mut modulus = vec![0xc3u8];
        modulus.extend([0u8; 255]);
        assert_eq!(significant_bits(&modulus), 2048);
    }
}
