//! Key-pair generation on a token (PKCS#11 3.0 §5.18 `C_GenerateKeyPair`; §4.8–4.9 key
//! attributes): the request, the choice of token, and the templates.
//!
//! The new private key is a token object that never leaves the token: `CKA_TOKEN`,
//! `CKA_PRIVATE`, `CKA_SENSITIVE` true and `CKA_EXTRACTABLE` false; its public key is a public
//! token object (readable without login) with the same `CKA_ID` and `CKA_LABEL`. Usage flags
//! follow latchset/pkcs11-provider: signing, decryption/encryption, derivation and
//! (un)wrapping as the key type allows, or exactly what `pkcs11_key_usage` names.
//!
//! Generation is the only operation that writes to a token, so it alone opens a read-write
//! session (its own, closed afterwards); everything else uses the read-only session pool. The
//! retry policy around it is in `op::generate`.
//!
//! A request that is not `persistent` (a key generated without `pkcs11_uri`, such as the key
//! share libssl makes for each ECDHE handshake under `-propquery '?provider=pkcs11'`) makes
//! an ephemeral pair of session objects on the slot's login session instead: nothing is
//! written to the token, and the objects are destroyed when OpenSSL frees the key.

use std::sync::Arc;

use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::Attribute;

use super::Tokens;
use super::login::{Pin, PinRequest};
use super::object::{self, KeyObj};
use super::slot::Slot;
use crate::asn1::Curve;
use crate::error::{Error, Result};
use crate::uri::Pkcs11Uri;

/// The kind of key pair to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum KeyGenKind {
    /// RSA with a modulus of `bits` and the public `exponent` (big-endian); `allowed`
    /// restricts the private key to those mechanisms (`CKA_ALLOWED_MECHANISMS`, RSA-PSS keys).
    Rsa {
        bits: u64,
        exponent: Vec<u8>,
        allowed: Option<Vec<MechanismType>>,
    },
    /// An EC key on a NIST curve, or an EdDSA key on an Edwards curve.
    Ec { curve: Curve },
}

/// X.509 key usage (ISO/IEC 9594-8) names `pkcs11_key_usage` takes, as latchset does: each
/// sets the PKCS#11 usage attributes of both keys (PKCS#11 3.1 table 25) it maps to, and the
/// others are set false.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct KeyUsage {
    /// `dataEncipherment`: `CKA_ENCRYPT`/`CKA_DECRYPT`.
    pub(crate) encipher: bool,
    /// `digitalSignature`: `CKA_VERIFY`/`CKA_SIGN`.
    pub(crate) sign: bool,
    /// `keyAgreement`: `CKA_DERIVE`.
    pub(crate) derive: bool,
    /// `keyEncipherment`: `CKA_WRAP`/`CKA_UNWRAP`.
    pub(crate) wrap: bool,
}

impl KeyUsage {
    /// The known names, for messages.
    pub(crate) const NAMES: &'static str =
        "dataEncipherment, digitalSignature, keyAgreement, keyEncipherment";

    /// Parses a space-separated list of key usage names.
    pub(crate) fn parse(text: &str) -> Result<KeyUsage> {
        let mut usage = KeyUsage::default();
        for word in text.split(' ').filter(|w| !w.is_empty()) {
            match word {
                "dataEncipherment" => usage.encipher = true,
                "digitalSignature" => usage.sign = true,
                "keyAgreement" => usage.derive = true,
                "keyEncipherment" => usage.wrap = true,
                other => {
                    return Err(Error::BadParam(format!(
                        "unknown key usage '{other}' in pkcs11_key_usage (known: {})",
                        Self::NAMES
                    )));
                }
            }
        }
        Ok(usage)
    }
}

/// One key generation, owned by whoever runs it.
pub(crate) struct KeyGenRequest {
    pub(crate) kind: KeyGenKind,
    /// Selects the token by its token and slot attributes (the object attributes are in `id`
    /// and `label`).
    pub(crate) uri: Pkcs11Uri,
    /// The PIN the URI gives (`pin-value`, `pin-source`), if any.
    pub(crate) uri_pin: Option<Pin>,
    /// `CKA_ID` of both keys (never empty: the caller picks a random one when the URI has
    /// none, so the key can be found again).
    pub(crate) id: Vec<u8>,
    /// `CKA_LABEL` of both keys.
    pub(crate) label: Option<String>,
    /// `None`: the default usage of the key type.
    pub(crate) usage: Option<KeyUsage>,
    /// Token objects (`CKA_TOKEN`), or an ephemeral pair of session objects.
    pub(crate) persistent: bool,
}

impl KeyGenRequest {
    /// The key-pair generation mechanism.
    fn mechanism(&self) -> Mechanism<'static> {
        match &self.kind {
            KeyGenKind::Rsa { .. } => Mechanism::RsaPkcsKeyPairGen,
            KeyGenKind::Ec { curve } if curve.is_edwards() => Mechanism::EccEdwardsKeyPairGen,
            KeyGenKind::Ec { .. } => Mechanism::EccKeyPairGen,
        }
    }

    /// The mechanism's name, for messages and the log.
    pub(crate) fn mechanism_name(&self) -> &'static str {
        match self.mechanism() {
            Mechanism::RsaPkcsKeyPairGen => "CKM_RSA_PKCS_KEY_PAIR_GEN",
            Mechanism::EccEdwardsKeyPairGen => "CKM_EC_EDWARDS_KEY_PAIR_GEN",
            _ => "CKM_EC_KEY_PAIR_GEN",
        }
    }

    /// The public and private key templates.
    fn templates(&self) -> (Vec<Attribute>, Vec<Attribute>) {
        let mut public = vec![Attribute::Token(self.persistent), Attribute::Private(false)];
        let mut private = vec![
            Attribute::Token(self.persistent),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
        ];
        // Usage attributes of the key type with their default value, as latchset sets them.
        let (encipher, sign, derive, wrap) = match &self.kind {
            KeyGenKind::Rsa {
                bits,
                exponent,
                allowed,
            } => {
                public.push(Attribute::ModulusBits((*bits).into()));
                public.push(Attribute::PublicExponent(exponent.clone()));
                if let Some(allowed) = allowed {
                    private.push(Attribute::AllowedMechanisms(allowed.clone()));
                }
                (Some(true), Some(true), None, Some(true))
            }
            KeyGenKind::Ec { curve } => {
                public.push(Attribute::EcParams(curve.ec_params()));
                let derive = !curve.is_edwards();
                // EC keys cannot encrypt in PKCS#11, but tokens (SoftHSM2) default
                // CKA_ENCRYPT/CKA_DECRYPT to true: say false unless the usage names it.
                (Some(false), Some(true), Some(derive), Some(true))
            }
        };
        let usage = |default: bool, named: bool| match self.usage {
            Some(_) => named,
            None => default,
        };
        let named = self.usage.unwrap_or_default();
        if let Some(default) = encipher {
            public.push(Attribute::Encrypt(usage(default, named.encipher)));
            private.push(Attribute::Decrypt(usage(default, named.encipher)));
        }
        if let Some(default) = sign {
            public.push(Attribute::Verify(usage(default, named.sign)));
            private.push(Attribute::Sign(usage(default, named.sign)));
        }
        if let Some(default) = derive {
            public.push(Attribute::Derive(usage(default, named.derive)));
            private.push(Attribute::Derive(usage(default, named.derive)));
        }
        if let Some(default) = wrap {
            public.push(Attribute::Wrap(usage(default, named.wrap)));
            private.push(Attribute::Unwrap(usage(default, named.wrap)));
        }
        for template in [&mut public, &mut private] {
            template.push(Attribute::Id(self.id.clone()));
            if let Some(label) = &self.label {
                template.push(Attribute::Label(label.as_bytes().to_vec()));
            }
        }
        (public, private)
    }
}

/// The token to generate on: the first one the URI's token attributes match that can generate
/// this kind of key and is not write-protected, logged in (with the URI's PIN, the configured
/// PIN or a cached one; never a prompt, as key generation has no passphrase callback).
pub(crate) fn choose_slot(tokens: &Tokens, request: &KeyGenRequest) -> Result<Arc<Slot>> {
    let module = tokens.module()?;
    let matching: Vec<Arc<Slot>> = module
        .slots()?
        .into_iter()
        .filter(|s| s.identity().matches(&request.uri, s.id().id()))
        .collect();
    if matching.is_empty() {
        return Err(Error::NotFound(format!(
            "no token matches {} in module {}",
            request.uri,
            module.path()
        )));
    }
    let mechanism = request.mechanism().mechanism_type();
    let slot = matching
        .into_iter()
        .find(|s| s.can_generate(mechanism))
        .ok_or_else(|| {
            Error::Unsupported(format!(
                "no token matching {} can generate key pairs with {} (or every such token is \
                 write-protected)",
                request.uri,
                request.mechanism_name()
            ))
        })?;
    if slot.needs_login(true) {
        slot.login(PinRequest {
            uri_pin: request.uri_pin.clone(),
            prompt: None,
        })?;
    }
    log::debug!(
        "generating a key pair with {} on token '{}'",
        request.mechanism_name(),
        slot.label()
    );
    Ok(slot)
}

/// One `C_GenerateKeyPair` on `slot`, in a read-write session of its own (an ephemeral pair:
/// on the login session); the new key as OpenSSL's keydata.
pub(crate) fn generate_on(slot: &Arc<Slot>, request: &KeyGenRequest) -> Result<Arc<KeyObj>> {
    if !request.persistent {
        return slot.with_login_session(|session| {
            let (public, private) = request.templates();
            let (public_handle, private_handle) = crate::sys::libcrypto::discarding_errors(|| {
                session.generate_key_pair(&request.mechanism(), &public, &private)
            })?;
            object::ephemeral_key(slot, session, private_handle, public_handle).inspect_err(|_| {
                let _ = session.destroy_object(private_handle);
                let _ = session.destroy_object(public_handle);
            })
        });
    }
    let session = slot.read_write_session()?;
    // A second key with the same CKA_ID could not be told apart from the first by any URI (an
    // id is what key files and fork recovery find keys by). Labels may repeat, as with
    // latchset/pkcs11-provider (its tests make two keys with one label); a URI naming such a
    // label alone is then refused as ambiguous when it is used.
    if object::private_key_exists(&session, None, Some(&request.id))? {
        return Err(Error::Ambiguous(format!(
            "token '{}' already has a private key with id {}; choose another id",
            slot.label(),
            hex(&request.id)
        )));
    }
    let (public, private) = request.templates();
    // Modules that use OpenSSL themselves (SoftHSM2) may leave their own errors behind.
    let (_public_handle, private_handle) = crate::sys::libcrypto::discarding_errors(|| {
        session.generate_key_pair(&request.mechanism(), &public, &private)
    })?;
    object::private_key(slot, &session, private_handle)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("%{b:02X}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: KeyGenKind, usage: Option<KeyUsage>) -> KeyGenRequest {
        KeyGenRequest {
            kind,
            uri: Pkcs11Uri::default(),
            uri_pin: None,
            id: vec![1],
            label: Some("k".into()),
            usage,
            persistent: true,
        }
    }

    #[test]
    fn key_usage_names_map_to_flags_and_unknown_ones_fail() {
        let usage = KeyUsage::parse("digitalSignature  keyAgreement").unwrap();
        assert!(usage.sign && usage.derive && !usage.encipher && !usage.wrap);
        assert_eq!(KeyUsage::parse("").unwrap(), KeyUsage::default());
        assert!(KeyUsage::parse("dataEncipherment gibberish").is_err());
    }

    #[test]
    fn private_keys_are_sensitive_token_objects_that_never_leave() {
        let ec = request(KeyGenKind::Ec { curve: Curve::P256 }, None);
        let (public, private) = ec.templates();
        for wanted in [
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Sign(true),
            Attribute::Derive(true),
            Attribute::Id(vec![1]),
        ] {
            assert!(private.contains(&wanted), "{wanted:?} missing");
        }
        assert!(private.contains(&Attribute::Decrypt(false)));
        let ephemeral = KeyGenRequest {
            persistent: false,
            ..ec
        };
        assert!(ephemeral.templates().1.contains(&Attribute::Token(false)));
        assert!(public.contains(&Attribute::Private(false)));
        assert!(public.contains(&Attribute::EcParams(Curve::P256.ec_params())));
    }

    #[test]
    fn key_usage_replaces_the_defaults() {
        let rsa = KeyGenKind::Rsa {
            bits: 2048,
            exponent: vec![1, 0, 1],
            allowed: None,
        };
        let usage = KeyUsage::parse("dataEncipherment keyEncipherment").unwrap();
        let (_, private) = request(rsa, Some(usage)).templates();
        assert!(private.contains(&Attribute::Sign(false)));
        assert!(private.contains(&Attribute::Decrypt(true)));
        assert!(private.contains(&Attribute::Unwrap(true)));
        let ed = request(
            KeyGenKind::Ec {
                curve: Curve::Ed25519,
            },
            None,
        );
        assert_eq!(ed.mechanism_name(), "CKM_EC_EDWARDS_KEY_PAIR_GEN");
        assert!(ed.templates().1.contains(&Attribute::Derive(false)));
    }
}
