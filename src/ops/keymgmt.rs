//! Key management (provider-keymgmt(7)) for RSA, RSA-PSS, EC, ED25519 and ED448 token keys.
//!
//! A token key reaches OpenSSL through the store: the store publishes the key under a short
//! opaque *reference* and OpenSSL hands that reference to `load` while the store's callback is
//! running. The reference is an id into [`PUBLISHED`], never a pointer, so a forged or stale
//! reference finds nothing instead of touching memory.
//!
//! Export gives only public parts (and refuses any selection including the private key), so
//! `openssl pkey -pubout`, verification and certificate matching run in the default provider
//! while OpenSSL's signature fetch falls back to this provider for the private-key operation.
//! Import accepts public keys only, for `match` against keys of other providers (e.g. the
//! certificate's key in `SSL_CTX_use_PrivateKey`) and for the peer key of a key exchange.
//!
//! An EC keydata may also hold only a curve (domain parameters): what EC parameter generation
//! and `EVP_PKEY_copy_parameters` make, and what a peer key starts as before
//! `EVP_PKEY_set1_encoded_public_key` gives it its point (CMS and TLS key agreement do this).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use once_cell::sync::Lazy;

use crate::asn1::Curve;
use crate::error::{Error, Result};
use crate::sys::abi;
use crate::sys::params::{ParamBuilder, Params, ParamsOut};
use crate::token::object::{KeyAlgorithm, KeyObj, PublicKey};

/// `OSSL_KEYMGMT_SELECT_*` bits (openssl/core_dispatch.h).
const SELECT_PRIVATE_KEY: i32 = abi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY;
const SELECT_PUBLIC_KEY: i32 = abi::OSSL_KEYMGMT_SELECT_PUBLIC_KEY;
const SELECT_DOMAIN_PARAMETERS: i32 = abi::OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS;

/// The keydata OpenSSL holds: the algorithm of the keymgmt that made it and, once loaded or
/// imported, the key.
pub(crate) struct KeyData {
    pub(crate) algorithm: KeyAlgorithm,
    pub(crate) key: Option<Arc<KeyObj>>,
    /// Domain parameters of an EC keydata without a key (see the module comment).
    pub(crate) group: Option<Curve>,
}

impl KeyData {
    /// Keydata without a key (keymgmt `new`).
    pub(crate) fn empty(algorithm: KeyAlgorithm) -> KeyData {
        KeyData {
            algorithm,
            key: None,
            group: None,
        }
    }

    /// Keydata holding `key`.
    pub(crate) fn with_key(algorithm: KeyAlgorithm, key: Arc<KeyObj>) -> KeyData {
        KeyData {
            algorithm,
            key: Some(key),
            group: None,
        }
    }

    /// EC keydata with a curve and no key.
    pub(crate) fn with_group(algorithm: KeyAlgorithm, curve: Curve) -> KeyData {
        KeyData {
            algorithm,
            key: None,
            group: Some(curve),
        }
    }

    /// The curve of an EC or EdDSA keydata, from its key or its domain parameters.
    pub(crate) fn curve(&self) -> Option<Curve> {
        match self.key.as_ref().map(|k| &k.public) {
            Some(PublicKey::Ec { curve, .. }) => Some(*curve),
            Some(PublicKey::Rsa { .. }) => None,
            None => self.group.or(match self.algorithm {
                KeyAlgorithm::Ed25519 => Some(Curve::Ed25519),
                KeyAlgorithm::Ed448 => Some(Curve::Ed448),
                _ => None,
            }),
        }
    }

    /// `OSSL_FUNC_keymgmt_dup`: the same token key for a selection with a key part; only the
    /// domain parameters (the curve) for a parameters-only selection.
    pub(crate) fn duplicate(&self, selection: i32) -> KeyData {
        if selection & (SELECT_PUBLIC_KEY | SELECT_PRIVATE_KEY) != 0 || selection == 0 {
            return KeyData {
                algorithm: self.algorithm,
                key: self.key.clone(),
                group: self.group,
            };
        }
        KeyData {
            algorithm: self.algorithm,
            key: None,
            group: match self.algorithm {
                KeyAlgorithm::Ec => self.curve(),
                _ => None,
            },
        }
    }

    /// The key, or an error for an empty keydata.
    pub(crate) fn key(&self) -> Result<&Arc<KeyObj>> {
        self.key
            .as_ref()
            .ok_or_else(|| Error::BadParam("the key object holds no key".into()))
    }
}

static PUBLISHED: Lazy<Mutex<HashMap<u64, Arc<KeyObj>>>> = Lazy::new(|| Mutex::new(HashMap::new()));
static NEXT_REFERENCE: AtomicU64 = AtomicU64::new(1);
const REFERENCE_MAGIC: &[u8; 8] = b"p11ossl1";

/// A key published for `load`; unpublished when dropped.
pub(crate) struct Published {
    id: u64,
    bytes: [u8; 16],
}

impl Published {
    /// The reference bytes to give OpenSSL (`OSSL_OBJECT_PARAM_REFERENCE`).
    pub(crate) fn reference(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for Published {
    fn drop(&mut self) {
        if let Ok(mut map) = PUBLISHED.lock() {
            map.remove(&self.id);
        }
    }
}

/// Publishes `key` so that `load` can find it through the returned reference.
pub(crate) fn publish(key: Arc<KeyObj>) -> Result<Published> {
    let id = NEXT_REFERENCE.fetch_add(1, Ordering::Relaxed);
    PUBLISHED
        .lock()
        .map_err(|_| Error::Module("key registry lock poisoned".into()))?
        .insert(id, key);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(REFERENCE_MAGIC);
    bytes[8..].copy_from_slice(&id.to_le_bytes());
    Ok(Published { id, bytes })
}

/// `OSSL_FUNC_keymgmt_load`: the key behind a reference from this provider's store.
pub(crate) fn load(algorithm: KeyAlgorithm, reference: &[u8]) -> Result<KeyData> {
    let id = match reference {
        [magic @ .., a, b, c, d, e, f, g, h] if magic == REFERENCE_MAGIC => {
            u64::from_le_bytes([*a, *b, *c, *d, *e, *f, *g, *h])
        }
        _ => {
            return Err(Error::BadParam(
                "not a pkcs11 provider key reference".into(),
            ));
        }
    };
    let key = PUBLISHED
        .lock()
        .map_err(|_| Error::Module("key registry lock poisoned".into()))?
        .get(&id)
        .cloned()
        .ok_or_else(|| Error::NotFound("stale pkcs11 key reference".into()))?;
    if !compatible(algorithm, key.algorithm) {
        return Err(Error::BadParam(format!(
            "key is {:?}, not {:?}",
            key.algorithm, algorithm
        )));
    }
    Ok(KeyData::with_key(algorithm, key))
}

fn compatible(keymgmt: KeyAlgorithm, key: KeyAlgorithm) -> bool {
    keymgmt == key || (keymgmt == KeyAlgorithm::Rsa && key == KeyAlgorithm::RsaPss)
}

/// `OSSL_FUNC_keymgmt_has`.
pub(crate) fn has(data: &KeyData, selection: i32) -> bool {
    let Some(key) = &data.key else {
        // Domain parameters alone: an EC keydata with a curve has them.
        return selection & (SELECT_PUBLIC_KEY | SELECT_PRIVATE_KEY) == 0
            && (selection & SELECT_DOMAIN_PARAMETERS == 0 || data.group.is_some());
    };
    selection & SELECT_PRIVATE_KEY == 0 || key.has_private()
}

/// `OSSL_FUNC_keymgmt_match`: same public key (and curve).
pub(crate) fn matches(a: &KeyData, b: &KeyData, selection: i32) -> bool {
    let (Some(a), Some(b)) = (&a.key, &b.key) else {
        // Without keys only the domain parameters can be compared.
        return selection & (SELECT_PUBLIC_KEY | SELECT_PRIVATE_KEY) == 0
            && a.curve().is_some()
            && a.curve() == b.curve();
    };
    if selection & (SELECT_PUBLIC_KEY | SELECT_PRIVATE_KEY) != 0 {
        return same_public(&a.public, &b.public);
    }
    match (&a.public, &b.public) {
        (PublicKey::Ec { curve: ca, .. }, PublicKey::Ec { curve: cb, .. }) => ca == cb,
        (PublicKey::Rsa { .. }, PublicKey::Rsa { .. }) => true,
        _ => false,
    }
}

fn same_public(a: &PublicKey, b: &PublicKey) -> bool {
    fn trim(v: &[u8]) -> &[u8] {
        let start = v.iter().position(|b| *b != 0).unwrap_or(v.len());
        &v[start..]
    }
    match (a, b) {
        (
            PublicKey::Rsa {
                modulus: ma,
                exponent: ea,
            },
            PublicKey::Rsa {
                modulus: mb,
                exponent: eb,
            },
        ) => trim(ma) == trim(mb) && trim(ea) == trim(eb),
        (
            PublicKey::Ec {
                curve: ca,
                point: pa,
            },
            PublicKey::Ec {
                curve: cb,
                point: pb,
            },
        ) => ca == cb && pa == pb,
        _ => false,
    }
}

/// Name of the default digest for signing with this key type (`default-digest`).
fn default_digest(algorithm: KeyAlgorithm) -> Option<&'static str> {
    match algorithm {
        KeyAlgorithm::Ed25519 | KeyAlgorithm::Ed448 => None,
        _ => Some("SHA256"),
    }
}

/// `OSSL_FUNC_keymgmt_get_params`.
pub(crate) fn get_params(data: &KeyData, out: &mut ParamsOut<'_>) -> Result<()> {
    if let (None, Some(curve)) = (&data.key, data.group) {
        // Domain parameters only: what `EVP_PKEY_get_bits` and group queries need.
        out.set_int(abi::OSSL_PKEY_PARAM_BITS, to_int(curve.bits())?)?;
        out.set_int(
            abi::OSSL_PKEY_PARAM_SECURITY_BITS,
            to_int(curve.security_bits())?,
        )?;
        out.set_int(
            abi::OSSL_PKEY_PARAM_MAX_SIZE,
            to_int(curve.max_signature_size())?,
        )?;
        out.set_utf8(abi::OSSL_PKEY_PARAM_GROUP_NAME, curve.group_name())?;
        return Ok(());
    }
    let key = data.key()?;
    out.set_int(abi::OSSL_PKEY_PARAM_BITS, to_int(key.bits())?)?;
    out.set_int(
        abi::OSSL_PKEY_PARAM_SECURITY_BITS,
        to_int(key.security_bits())?,
    )?;
    out.set_int(
        abi::OSSL_PKEY_PARAM_MAX_SIZE,
        to_int(key.max_signature_size())?,
    )?;
    match default_digest(key.algorithm) {
        Some(name) => out.set_utf8(abi::OSSL_PKEY_PARAM_DEFAULT_DIGEST, name)?,
        // EdDSA signs the message itself: tell X.509/CMS code to pass no digest.
        None => out.set_utf8(abi::OSSL_PKEY_PARAM_MANDATORY_DIGEST, "")?,
    }
    match &key.public {
        PublicKey::Rsa { modulus, exponent } => {
            out.set_bn(abi::OSSL_PKEY_PARAM_RSA_N, modulus)?;
            out.set_bn(abi::OSSL_PKEY_PARAM_RSA_E, exponent)?;
        }
        PublicKey::Ec { curve, point } => {
            if !curve.is_edwards() {
                out.set_utf8(abi::OSSL_PKEY_PARAM_GROUP_NAME, curve.group_name())?;
                out.set_utf8(
                    abi::OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
                    if point.first() == Some(&4) {
                        "uncompressed"
                    } else {
                        "compressed"
                    },
                )?;
                out.set_utf8(abi::OSSL_PKEY_PARAM_EC_ENCODING, "named_curve")?;
                if let Some((x, y)) = affine_coordinates(point, *curve) {
                    out.set_bn(abi::OSSL_PKEY_PARAM_EC_PUB_X, x)?;
                    out.set_bn(abi::OSSL_PKEY_PARAM_EC_PUB_Y, y)?;
                }
            }
            out.set_octets(abi::OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point)?;
            out.set_octets(abi::OSSL_PKEY_PARAM_PUB_KEY, point)?;
        }
    }
    Ok(())
}

/// The x and y coordinates of an uncompressed SEC1 point (`04 || x || y`).
fn affine_coordinates(point: &[u8], curve: Curve) -> Option<(&[u8], &[u8])> {
    let size = curve.field_bytes();
    match point.split_first() {
        Some((4, xy)) if xy.len() == 2 * size => Some(xy.split_at(size)),
        _ => None,
    }
}

/// `OSSL_FUNC_keymgmt_set_params`: the encoded public key (`encoded-pub-key`) of an EC or EdDSA
/// keydata that has no token key, which `EVP_PKEY_set1_encoded_public_key` sets on a peer key
/// made from domain parameters. A token key's public key is the token's and cannot change.
pub(crate) fn set_params(data: &mut KeyData, params: Params<'_>) -> Result<()> {
    let Some(encoded) = params.find(abi::OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY) else {
        return Ok(());
    };
    if data.key.as_ref().is_some_and(|k| k.token.is_some()) {
        return Err(Error::Unsupported(
            "the public key of a PKCS#11 token key cannot be replaced".into(),
        ));
    }
    let curve = data.curve().ok_or_else(|| {
        Error::Unsupported(format!(
            "an encoded public key for a {} key without domain parameters",
            data.algorithm.type_name().to_string_lossy()
        ))
    })?;
    let point = encoded.octets()?.to_vec();
    if point.is_empty() {
        return Err(Error::BadParam("empty encoded public key".into()));
    }
    let public = PublicKey::Ec { curve, point };
    data.key = Some(Arc::new(KeyObj::imported(data.algorithm, public)));
    Ok(())
}

fn to_int(value: usize) -> Result<i32> {
    i32::try_from(value).map_err(|_| Error::BadParam("value out of range".into()))
}

/// `OSSL_FUNC_keymgmt_export`: public parts only. Returns `Ok(false)` (no error raised) when
/// the private key of a token key pair is asked for, so OpenSSL looks for the operation in this
/// provider instead.
pub(crate) fn export(
    data: &KeyData,
    selection: i32,
    callback: impl FnOnce(*const abi::OSSL_PARAM) -> bool,
) -> Result<bool> {
    let key = data.key()?;
    // A selection with the private key is refused only for keys that have one: OpenSSL 3.0
    // always asks for everything when moving a key, and a public-only key may move whole (so
    // verification with a token public key object runs in the default provider).
    if selection & SELECT_PRIVATE_KEY != 0 && key.has_private() {
        return Ok(false);
    }
    if key.token.as_ref().is_some_and(|t| !t.allows_export()) {
        return Err(Error::Unsupported(
            "exporting token public keys to other providers is disabled by \
             pkcs11-module-allow-export = 1"
                .into(),
        ));
    }
    let mut params = public_params(&key.public, selection);
    Ok(callback(params.finish()))
}

/// The OpenSSL parameters describing `public` (what `selection` asks for): RSA n and e, or the
/// EC group and point, or the EdDSA public key.
pub(crate) fn public_params(public: &PublicKey, selection: i32) -> ParamBuilder<'_> {
    let mut params = ParamBuilder::new();
    match public {
        PublicKey::Rsa { modulus, exponent } => {
            if selection & SELECT_PUBLIC_KEY != 0 {
                params
                    .big_number(abi::OSSL_PKEY_PARAM_RSA_N, modulus)
                    .big_number(abi::OSSL_PKEY_PARAM_RSA_E, exponent);
            }
        }
        PublicKey::Ec { curve, point } => {
            let wants_group = selection & (SELECT_DOMAIN_PARAMETERS | SELECT_PUBLIC_KEY) != 0;
            if let (true, Some(group)) = (wants_group, group_name(*curve)) {
                params.utf8(abi::OSSL_PKEY_PARAM_GROUP_NAME, group);
            }
            if selection & SELECT_PUBLIC_KEY != 0 {
                params.octets(abi::OSSL_PKEY_PARAM_PUB_KEY, point);
            }
        }
    }
    params
}

/// OpenSSL group name of a short-Weierstrass curve (Edwards curves have none).
fn group_name(curve: Curve) -> Option<&'static std::ffi::CStr> {
    match curve {
        Curve::P256 => Some(c"prime256v1"),
        Curve::P384 => Some(c"secp384r1"),
        Curve::P521 => Some(c"secp521r1"),
        Curve::Ed25519 | Curve::Ed448 => None,
    }
}

/// `OSSL_FUNC_keymgmt_import`: a public key from OpenSSL parameters. OpenSSL 3.0 always asks
/// for every part (`SELECT_ALL`) when moving a key between providers, so the selection alone
/// says nothing; parameters that carry a private value are refused with `Ok(false)` and no
/// error, which makes OpenSSL keep a software private key in its own provider.
pub(crate) fn import(data: &mut KeyData, selection: i32, params: Params<'_>) -> Result<bool> {
    if selection & (SELECT_PUBLIC_KEY | SELECT_PRIVATE_KEY) == 0 {
        // Domain parameters only: the curve of an EC key (EVP_PKEY_copy_parameters).
        let group = params.find(abi::OSSL_PKEY_PARAM_GROUP_NAME);
        if let (KeyAlgorithm::Ec, true, Some(group)) = (
            data.algorithm,
            selection & SELECT_DOMAIN_PARAMETERS != 0,
            group,
        ) {
            let name = group.utf8()?;
            let curve = Curve::from_group_name(name)
                .filter(|c| !c.is_edwards())
                .ok_or_else(|| Error::Unsupported(format!("EC group {name}")))?;
            data.group = Some(curve);
            return Ok(true);
        }
        return Ok(false);
    }
    let carries_private = params.find(abi::OSSL_PKEY_PARAM_RSA_D).is_some()
        || params.find(abi::OSSL_PKEY_PARAM_PRIV_KEY).is_some();
    if carries_private {
        return Ok(false);
    }
    let public = match data.algorithm {
        KeyAlgorithm::Rsa | KeyAlgorithm::RsaPss => PublicKey::Rsa {
            modulus: required(params, abi::OSSL_PKEY_PARAM_RSA_N)?.big_number()?,
            exponent: required(params, abi::OSSL_PKEY_PARAM_RSA_E)?.big_number()?,
        },
        KeyAlgorithm::Ec => {
            let group = required(params, abi::OSSL_PKEY_PARAM_GROUP_NAME)?.utf8()?;
            let curve = Curve::from_group_name(group)
                .ok_or_else(|| Error::Unsupported(format!("EC group {group}")))?;
            PublicKey::Ec {
                curve,
                point: required(params, abi::OSSL_PKEY_PARAM_PUB_KEY)?
                    .octets()?
                    .to_vec(),
            }
        }
        KeyAlgorithm::Ed25519 | KeyAlgorithm::Ed448 => PublicKey::Ec {
            curve: if data.algorithm == KeyAlgorithm::Ed25519 {
                Curve::Ed25519
            } else {
                Curve::Ed448
            },
            point: required(params, abi::OSSL_PKEY_PARAM_PUB_KEY)?
                .octets()?
                .to_vec(),
        },
    };
    data.key = Some(Arc::new(KeyObj::imported(data.algorithm, public)));
    Ok(true)
}

fn required<'a>(params: Params<'a>, key: &std::ffi::CStr) -> Result<crate::sys::params::Param<'a>> {
    params.find(key).ok_or_else(|| {
        Error::BadParam(format!("missing key parameter '{}'", key.to_string_lossy()))
    })
}

/// `OSSL_FUNC_keymgmt_query_operation_name`: the signature algorithm name for EC keys, the key
/// exchange (ECDH) and asymmetric cipher (RSA) names.
pub(crate) fn operation_name(
    algorithm: KeyAlgorithm,
    operation: i32,
) -> Option<&'static std::ffi::CStr> {
    match (operation, algorithm) {
        (abi::OSSL_OP_KEYEXCH, KeyAlgorithm::Ec) => return Some(c"ECDH"),
        (abi::OSSL_OP_ASYM_CIPHER, KeyAlgorithm::Rsa) => return Some(c"RSA"),
        (abi::OSSL_OP_SIGNATURE, _) => {}
        _ => return None,
    }
    match algorithm {
        KeyAlgorithm::Ec => Some(c"ECDSA"),
        KeyAlgorithm::Rsa | KeyAlgorithm::RsaPss => Some(c"RSA"),
        KeyAlgorithm::Ed25519 => Some(c"ED25519"),
        KeyAlgorithm::Ed448 => Some(c"ED448"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rsa(modulus: &[u8]) -> KeyData {
        KeyData::with_key(
            KeyAlgorithm::Rsa,
            Arc::new(KeyObj::imported(
                KeyAlgorithm::Rsa,
                PublicKey::Rsa {
                    modulus: modulus.to_vec(),
                    exponent: vec![1, 0, 1],
                },
            )),
        )
    }

    #[test]
    fn references_resolve_only_while_published() {
        let key = rsa(&[0xc1, 2, 3]).key.unwrap();
        let published = publish(key).unwrap();
        let reference = published.reference().to_vec();
        assert!(load(KeyAlgorithm::Rsa, &reference).is_ok());
        assert!(load(KeyAlgorithm::Ec, &reference).is_err());
        drop(published);
        assert!(load(KeyAlgorithm::Rsa, &reference).is_err());
        assert!(load(KeyAlgorithm::Rsa, b"garbage").is_err());
        assert!(load(KeyAlgorithm::Rsa, &[]).is_err());
    }

    #[test]
    fn match_compares_public_parts_ignoring_leading_zeros() {
        let a = rsa(&[0xc1, 2, 3]);
        let b = rsa(&[0, 0xc1, 2, 3]);
        let c = rsa(&[0xc1, 2, 4]);
        assert!(matches(&a, &b, SELECT_PUBLIC_KEY));
        assert!(!matches(&a, &c, SELECT_PUBLIC_KEY));
    }

    #[test]
    fn parameters_only_keydata_has_a_curve_and_no_key() {
        let point = {
            let mut p = vec![4u8];
            p.extend([7u8; 64]);
            p
        };
        let key = Arc::new(KeyObj::imported(
            KeyAlgorithm::Ec,
            PublicKey::Ec {
                curve: Curve::P256,
                point: point.clone(),
            },
        ));
        let full = KeyData::with_key(KeyAlgorithm::Ec, key);
        let params = full.duplicate(SELECT_DOMAIN_PARAMETERS);
        assert!(params.key.is_none());
        assert_eq!(params.curve(), Some(Curve::P256));
        assert!(has(&params, SELECT_DOMAIN_PARAMETERS));
        assert!(!has(&params, SELECT_PUBLIC_KEY));
        assert!(matches(&params, &full, SELECT_DOMAIN_PARAMETERS));
        assert!(full.duplicate(SELECT_PUBLIC_KEY).key.is_some());
        let (x, y) = affine_coordinates(&point, Curve::P256).unwrap();
        assert_eq!((x.len(), y.len()), (32, 32));
        assert!(affine_coordinates(&point[..10], Curve::P256).is_none());
    }

    #[test]
    fn imported_keys_have_no_private_part() {
        let a = rsa(&[0xc1]);
        assert!(has(&a, SELECT_PUBLIC_KEY));
        assert!(!has(&a, SELECT_PRIVATE_KEY));
    }
}
