//! Key generation on the token (provider-keymgmt(7) `gen_init`, `gen_set_params`, `gen`):
//! RSA, RSA-PSS, EC (P-256, P-384, P-521), Ed25519 and Ed448, with latchset/pkcs11-provider's
//! parameter names so its users' scripts work unchanged:
//!
//! | parameter | meaning |
//! |---|---|
//! | `pkcs11_uri` | where and what: the token attributes select the token, `object` is the new keys' `CKA_LABEL`, `id` their `CKA_ID` (random 16 bytes when absent; an id a private key on the token already has is refused), `pin-value`/`pin-source` the PIN |
//! | `pkcs11_key_usage` | space-separated X.509 key usage names: `digitalSignature`, `dataEncipherment`, `keyEncipherment`, `keyAgreement` |
//! | `bits` (`rsa_keygen_bits`), `e` (`rsa_keygen_pubexp`), `primes` (2 only) | RSA modulus size (default 2048) and public exponent (default 65537) |
//! | `digest` (`rsa_pss_keygen_md`) | RSA-PSS: allow only the PSS mechanism with this hash |
//! | `group` (`ec_paramgen_curve`), `encoding` (`named_curve` only) | EC curve (default P-256) |
//!
//! The names in parentheses are the `-pkeyopt` names OpenSSL translates; they are also taken
//! as they are from `EVP_PKEY_CTX_set_params`, as latchset's test programs pass them. Unknown
//! parameters are ignored (the provider-keymgmt(7) convention). An EC generation asked only
//! for domain parameters (`EVP_PKEY_paramgen`) makes a keydata with just the curve, and never
//! touches a token.
//!
//! Without `pkcs11_uri` the key pair is ephemeral: session objects that live as long as
//! OpenSSL keeps the key, and that cannot be written to a key file. That is what libssl asks
//! for its ECDHE key shares when a program runs with `-propquery '?provider=pkcs11'` (the
//! provider then offers the P-256/384/521 TLS groups): one key per handshake, none left on
//! the token. A key to keep needs a `pkcs11_uri`, if only `pkcs11:token=<label>`.

use std::ffi::CStr;
use std::sync::Arc;

use cryptoki::mechanism::MechanismType;

use crate::asn1::{Curve, Digest};
use crate::error::{Error, Result};
use crate::ops::keymgmt::KeyData;
use crate::ops::provider::ProvCtx;
use crate::ops::store::pin_from_uri;
use crate::sys::abi;
use crate::sys::params::Params;
use crate::sys::primitives;
use crate::token::generate::{KeyGenKind, KeyGenRequest, KeyUsage};
use crate::token::object::KeyAlgorithm;
use crate::token::op;
use crate::uri::Pkcs11Uri;

/// latchset's parameter naming the new key (`P11PROV_PARAM_URI`).
pub(crate) const PARAM_URI: &CStr = c"pkcs11_uri";
/// latchset's key usage parameter (`P11PROV_PARAM_KEY_USAGE`).
pub(crate) const PARAM_KEY_USAGE: &CStr = c"pkcs11_key_usage";
/// `-pkeyopt` names OpenSSL translates, taken as they are from `EVP_PKEY_CTX_set_params`.
const PARAM_RSA_KEYGEN_BITS: &CStr = c"rsa_keygen_bits";
const PARAM_RSA_KEYGEN_PUBEXP: &CStr = c"rsa_keygen_pubexp";
const PARAM_RSA_PSS_KEYGEN_MD: &CStr = c"rsa_pss_keygen_md";
const PARAM_EC_PARAMGEN_CURVE: &CStr = c"ec_paramgen_curve";
const PARAM_EC_PARAM_ENC: &CStr = c"ec_param_enc";

/// Length of the random `CKA_ID` of a key whose URI names no id (as latchset).
const RANDOM_ID_LEN: usize = 16;
/// RSA modulus sizes accepted before the token is asked (the token has the final word).
const RSA_BITS: std::ops::RangeInclusive<u64> = 1024..=16384;

/// One key generation (`genctx`).
pub(crate) struct GenCtx {
    prov: Arc<ProvCtx>,
    algorithm: KeyAlgorithm,
    /// Only domain parameters were asked for (`EVP_PKEY_paramgen`).
    parameters_only: bool,
    uri: Option<Pkcs11Uri>,
    key_usage: Option<String>,
    rsa_bits: u64,
    rsa_exponent: Vec<u8>,
    pss_digest: Option<Digest>,
    curve: Curve,
}

impl GenCtx {
    /// `gen_init` with the `selection` OpenSSL asks for and the first parameters.
    pub(crate) fn new(
        prov: Arc<ProvCtx>,
        algorithm: KeyAlgorithm,
        selection: i32,
        params: Params<'_>,
    ) -> Result<GenCtx> {
        let key_pair = abi::OSSL_KEYMGMT_SELECT_PRIVATE_KEY | abi::OSSL_KEYMGMT_SELECT_PUBLIC_KEY;
        let parameters_only = selection & key_pair == 0;
        if parameters_only
            && (algorithm != KeyAlgorithm::Ec
                || selection & abi::OSSL_KEYMGMT_SELECT_DOMAIN_PARAMETERS == 0)
        {
            return Err(Error::Unsupported(format!(
                "{} key generation needs a key-pair selection",
                algorithm.type_name().to_string_lossy()
            )));
        }
        let curve = match algorithm {
            KeyAlgorithm::Ed25519 => Curve::Ed25519,
            KeyAlgorithm::Ed448 => Curve::Ed448,
            _ => Curve::P256,
        };
        let mut ctx = GenCtx {
            prov,
            algorithm,
            parameters_only,
            uri: None,
            key_usage: None,
            rsa_bits: 2048,
            rsa_exponent: vec![0x01, 0x00, 0x01],
            pss_digest: None,
            curve,
        };
        ctx.set_params(params)?;
        Ok(ctx)
    }

    /// `gen_set_params`.
    pub(crate) fn set_params(&mut self, params: Params<'_>) -> Result<()> {
        if let Some(p) = params.find(PARAM_URI) {
            let text = escape_unsafe_characters(p.utf8()?);
            let options = self.prov.config().uri_unknown_attributes.into();
            let uri = Pkcs11Uri::parse_with(text.as_bytes(), options)
                .map_err(|e| Error::Uri(format!("pkcs11_uri: {e}")))?;
            self.uri = Some(uri);
        }
        if let Some(p) = params.find(PARAM_KEY_USAGE) {
            // Checked when the key is made, as latchset does (its tests set an unknown usage
            // and expect the generation, not the parameter, to fail).
            self.key_usage = Some(p.utf8()?.to_owned());
        }
        match self.algorithm {
            KeyAlgorithm::Rsa | KeyAlgorithm::RsaPss => self.set_rsa_params(params)?,
            KeyAlgorithm::Ec => self.set_ec_params(params)?,
            KeyAlgorithm::Ed25519 | KeyAlgorithm::Ed448 => {}
        }
        Ok(())
    }

    fn set_rsa_params(&mut self, params: Params<'_>) -> Result<()> {
        for key in [abi::OSSL_PKEY_PARAM_RSA_BITS, PARAM_RSA_KEYGEN_BITS] {
            if let Some(p) = params.find(key) {
                let bits = p.size()? as u64;
                if !RSA_BITS.contains(&bits) {
                    return Err(Error::BadParam(format!(
                        "RSA key size {bits} is outside {}..={} bits",
                        RSA_BITS.start(),
                        RSA_BITS.end()
                    )));
                }
                self.rsa_bits = bits;
            }
        }
        if let Some(p) = params.find(abi::OSSL_PKEY_PARAM_RSA_PRIMES) {
            if p.size()? != 2 {
                return Err(Error::Unsupported(
                    "multi-prime RSA keys cannot be generated on a PKCS#11 token".into(),
                ));
            }
        }
        for key in [abi::OSSL_PKEY_PARAM_RSA_E, PARAM_RSA_KEYGEN_PUBEXP] {
            if let Some(p) = params.find(key) {
                let exponent = p.big_number()?;
                let odd = exponent.last().is_some_and(|b| b & 1 == 1);
                let big_enough = exponent.iter().any(|b| *b > 1)
                    || exponent.iter().filter(|b| **b != 0).count() > 1;
                if !odd || !big_enough {
                    return Err(Error::BadParam(
                        "the RSA public exponent must be odd and at least 3".into(),
                    ));
                }
                self.rsa_exponent = exponent;
            }
        }
        if self.algorithm == KeyAlgorithm::RsaPss {
            for key in [abi::OSSL_PKEY_PARAM_RSA_DIGEST, PARAM_RSA_PSS_KEYGEN_MD] {
                if let Some(p) = params.find(key) {
                    let name = p.utf8()?;
                    let digest = Digest::from_name(name)
                        .ok_or_else(|| Error::Unsupported(format!("RSA-PSS digest '{name}'")))?;
                    pss_mechanism(digest)?;
                    self.pss_digest = Some(digest);
                }
            }
        }
        Ok(())
    }

    fn set_ec_params(&mut self, params: Params<'_>) -> Result<()> {
        for key in [abi::OSSL_PKEY_PARAM_GROUP_NAME, PARAM_EC_PARAMGEN_CURVE] {
            if let Some(p) = params.find(key) {
                let name = p.utf8()?;
                self.curve = Curve::from_group_name(name)
                    .filter(|c| !c.is_edwards())
                    .ok_or_else(|| {
                        Error::Unsupported(format!(
                            "EC curve '{name}' (P-256, P-384 and P-521 can be generated)"
                        ))
                    })?;
            }
        }
        for key in [abi::OSSL_PKEY_PARAM_EC_ENCODING, PARAM_EC_PARAM_ENC] {
            if let Some(p) = params.find(key) {
                let encoding = p.utf8()?;
                if encoding != "named_curve" {
                    return Err(Error::Unsupported(format!(
                        "EC parameter encoding '{encoding}' (only named_curve)"
                    )));
                }
            }
        }
        Ok(())
    }

    /// `gen_set_template`: the curve of the template key (libssl generates its ECDHE key share
    /// "like" the peer's key).
    pub(crate) fn set_template(&mut self, template: &KeyData) -> Result<()> {
        if self.algorithm == KeyAlgorithm::Ec {
            if let Some(curve) = template.curve().filter(|c| !c.is_edwards()) {
                self.curve = curve;
            }
        }
        Ok(())
    }

    /// `gen`: the key pair made on the token, or (parameter generation) the curve alone.
    pub(crate) fn generate(&self) -> Result<KeyData> {
        if self.parameters_only {
            return Ok(KeyData::with_group(self.algorithm, self.curve));
        }
        let usage = self.key_usage.as_deref().map(KeyUsage::parse).transpose()?;
        let persistent = self.uri.is_some();
        let uri = self.uri.clone().unwrap_or_default();
        let id = match uri.id.clone().filter(|id| !id.is_empty()) {
            Some(id) => id,
            None => {
                let mut id = vec![0u8; RANDOM_ID_LEN];
                primitives::random_bytes(self.prov.libctx(), &mut id)?;
                id
            }
        };
        let kind = match self.algorithm {
            KeyAlgorithm::Rsa | KeyAlgorithm::RsaPss => KeyGenKind::Rsa {
                bits: self.rsa_bits,
                exponent: self.rsa_exponent.clone(),
                allowed: match (self.algorithm, self.pss_digest) {
                    (KeyAlgorithm::RsaPss, Some(digest)) => Some(vec![pss_mechanism(digest)?]),
                    (KeyAlgorithm::RsaPss, None) => Some(PSS_MECHANISMS.to_vec()),
                    _ => None,
                },
            },
            KeyAlgorithm::Ec | KeyAlgorithm::Ed25519 | KeyAlgorithm::Ed448 => {
                KeyGenKind::Ec { curve: self.curve }
            }
        };
        let request = KeyGenRequest {
            kind,
            uri_pin: pin_from_uri(&uri)?,
            label: uri.object.clone(),
            id,
            usage,
            persistent,
            uri: token_part(uri),
        };
        let key = op::generate(&self.prov.tokens, request)?;
        Ok(KeyData::with_key(self.algorithm, key))
    }
}

/// `text` with the characters no URI may hold as they are (spaces, controls, non-ASCII, and
/// `"<>\^`{|}`) percent-encoded: latchset takes `pkcs11:object=My Key` for a new key, and its
/// users' scripts (and test programs) write labels that way. Everything else is parsed as
/// strictly as any other URI.
fn escape_unsafe_characters(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte <= b' ' || byte >= 0x7f || b"\"<>\\^`{|}".contains(&byte) {
            out.push_str(&format!("%{byte:02X}"));
        } else {
            out.push(char::from(byte));
        }
    }
    out
}

/// The URI's token and slot attributes only: what selects the token to generate on.
fn token_part(uri: Pkcs11Uri) -> Pkcs11Uri {
    Pkcs11Uri {
        object: None,
        id: None,
        object_type: None,
        pin_value: None,
        pin_source: None,
        ..uri
    }
}

/// The mechanisms an RSA-PSS key is restricted to (latchset's list, as far as the PKCS#11
/// library names them).
const PSS_MECHANISMS: [MechanismType; 5] = [
    MechanismType::RSA_PKCS_PSS,
    MechanismType::SHA1_RSA_PKCS_PSS,
    MechanismType::SHA256_RSA_PKCS_PSS,
    MechanismType::SHA384_RSA_PKCS_PSS,
    MechanismType::SHA512_RSA_PKCS_PSS,
];

/// The hash-and-sign PSS mechanism an RSA-PSS key restricted to `digest` allows.
fn pss_mechanism(digest: Digest) -> Result<MechanismType> {
    Ok(match digest {
        Digest::Sha1 => MechanismType::SHA1_RSA_PKCS_PSS,
        Digest::Sha256 => MechanismType::SHA256_RSA_PKCS_PSS,
        Digest::Sha384 => MechanismType::SHA384_RSA_PKCS_PSS,
        Digest::Sha512 => MechanismType::SHA512_RSA_PKCS_PSS,
        other => {
            return Err(Error::Unsupported(format!(
                "RSA-PSS keys restricted to {} cannot be generated",
                other.name()
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_is_chosen_by_token_attributes_only() {
        let uri = Pkcs11Uri::parse_with(
            b"pkcs11:token=t;object=k;id=%01;type=private?pin-value=1234",
            Default::default(),
        )
        .unwrap();
        let token = token_part(uri);
        assert_eq!(token.token.as_deref(), Some("t"));
        assert!(token.object.is_none() && token.id.is_none() && token.pin_value.is_none());
    }

    #[test]
    fn spaces_in_a_new_key_label_are_taken() {
        let text = escape_unsafe_characters("pkcs11:object=RSA Pkey Test;id=%01");
        assert_eq!(text, "pkcs11:object=RSA%20Pkey%20Test;id=%01");
        let uri = Pkcs11Uri::parse_with(text.as_bytes(), Default::default()).unwrap();
        assert_eq!(uri.object.as_deref(), Some("RSA Pkey Test"));
        assert_eq!(escape_unsafe_characters("a\u{e9}"), "a%C3%A9");
    }

    #[test]
    fn pss_restrictions_name_hash_and_sign_mechanisms() {
        assert_eq!(
            pss_mechanism(Digest::Sha256).unwrap(),
            MechanismType::SHA256_RSA_PKCS_PSS
        );
        assert!(pss_mechanism(Digest::Sha224).is_err());
    }
}
