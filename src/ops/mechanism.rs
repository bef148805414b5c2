//! Which PKCS#11 mechanism a signature uses (PKCS#11 3.0 §2.1.5–2.1.14 RSA, §2.3.6–2.3.7
//! ECDSA): the raw one (`CKM_RSA_PKCS` over DigestInfo‖hash, `CKM_RSA_PKCS_PSS`, `CKM_ECDSA`
//! over a hash made in libcrypto) where the key and its token permit it, else the combined
//! hash-and-sign one (`CKM_SHA256_RSA_PKCS`, `CKM_SHA256_RSA_PKCS_PSS`, `CKM_ECDSA_SHA256`,
//! ...) that takes the message itself. A key permits what its `CKA_ALLOWED_MECHANISMS` lists
//! (all when it lists nothing); a token permits what `C_GetMechanismList` reports (all when it
//! reports nothing). When nothing fits, the error names what was needed and what is allowed.
//!
//! Pure: the lists come from the caller, so every rule is unit-tested here.

use cryptoki::mechanism::MechanismType;
use cryptoki::mechanism::rsa::PkcsMgfType;

use crate::asn1::Digest;
use crate::error::{Error, Result};
use crate::token::op::{Mech, TokenHash};

/// The signature asked for, with everything the mechanism depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scheme {
    /// RSA PKCS#1 v1.5; `digest: None` signs the input as it is (no DigestInfo).
    RsaPkcs1 { digest: Option<Digest> },
    /// RSA-PSS.
    RsaPss {
        digest: Digest,
        mgf1: Digest,
        salt_len: usize,
    },
    /// RSA without padding.
    RsaRaw,
    /// ECDSA; `digest: None` signs the input as a hash.
    Ecdsa { digest: Option<Digest> },
    /// EdDSA over the message.
    Eddsa,
}

/// What a key and its token permit.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Permitted<'a> {
    /// The key's `CKA_ALLOWED_MECHANISMS`; `None` or empty: every mechanism.
    pub(crate) allowed: Option<&'a [u64]>,
    /// The token's mechanism list; `None`: unknown, every mechanism.
    pub(crate) offered: Option<&'a [u64]>,
}

impl Permitted<'_> {
    fn key_allows(&self, mechanism: u64) -> bool {
        self.allowed
            .is_none_or(|list| list.is_empty() || list.contains(&mechanism))
    }

    fn token_offers(&self, mechanism: u64) -> bool {
        self.offered.is_none_or(|list| list.contains(&mechanism))
    }

    fn permits(&self, mechanism: u64) -> bool {
        self.key_allows(mechanism) && self.token_offers(mechanism)
    }
}

/// How the data goes to the token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Hash in libcrypto (when there is a digest) and sign the hash with this raw mechanism.
    Raw(Mech),
    /// Give the whole message to this combined mechanism; the token hashes it.
    Hashed(Mech),
}

/// Picks the mechanism for `scheme`. `message_available`: the caller has (or will have) the
/// message itself, not only its hash, so a combined mechanism can be used.
pub(crate) fn choose(
    scheme: Scheme,
    message_available: bool,
    permitted: &Permitted<'_>,
) -> Result<Plan> {
    let raw = raw_mechanism(scheme)?;
    if permitted.permits(raw.number()) {
        return Ok(Plan::Raw(raw));
    }
    let combined = combined_mechanism(scheme)?;
    if let Some(combined) = combined {
        if message_available && permitted.permits(combined.number()) {
            return Ok(Plan::Hashed(combined));
        }
    }
    Err(Error::Unsupported(no_mechanism_message(
        scheme,
        raw,
        combined,
        message_available,
        permitted,
    )))
}

/// The raw mechanism of `scheme`.
fn raw_mechanism(scheme: Scheme) -> Result<Mech> {
    Ok(match scheme {
        Scheme::RsaPkcs1 { .. } => Mech::RsaPkcs,
        Scheme::RsaPss {
            digest,
            mgf1,
            salt_len,
        } => Mech::RsaPss {
            hash: hash_mechanism(digest)?,
            mgf: mgf1_type(mgf1)?,
            salt_len: salt_len as u64,
        },
        Scheme::RsaRaw => Mech::RsaX509,
        Scheme::Ecdsa { .. } => Mech::Ecdsa,
        Scheme::Eddsa => Mech::Eddsa,
    })
}

/// The combined hash-and-sign mechanism of `scheme`, when there is one cryptoki can pass.
fn combined_mechanism(scheme: Scheme) -> Result<Option<Mech>> {
    Ok(match scheme {
        Scheme::RsaPkcs1 {
            digest: Some(digest),
        } => token_hash(digest).map(Mech::RsaPkcsHashed),
        Scheme::RsaPss {
            digest,
            mgf1,
            salt_len,
        } => match token_hash(digest) {
            Some(hash) => Some(Mech::RsaPssHashed {
                hash,
                mgf: mgf1_type(mgf1)?,
                salt_len: salt_len as u64,
            }),
            None => None,
        },
        Scheme::Ecdsa {
            digest: Some(digest),
        } => token_hash(digest).map(Mech::EcdsaHashed),
        _ => None,
    })
}

fn token_hash(digest: Digest) -> Option<TokenHash> {
    match digest {
        Digest::Sha1 => Some(TokenHash::Sha1),
        Digest::Sha256 => Some(TokenHash::Sha256),
        Digest::Sha384 => Some(TokenHash::Sha384),
        Digest::Sha512 => Some(TokenHash::Sha512),
        _ => None,
    }
}

fn no_mechanism_message(
    scheme: Scheme,
    raw: Mech,
    combined: Option<Mech>,
    message_available: bool,
    permitted: &Permitted<'_>,
) -> String {
    let wanted = describe(scheme);
    let mut text = match combined {
        Some(combined) => format!("{wanted} needs {raw} or {combined}"),
        None => format!("{wanted} needs {raw}"),
    };
    if let Some(allowed) = permitted.allowed.filter(|list| !list.is_empty()) {
        let names: Vec<String> = allowed.iter().map(|m| mechanism_name(*m)).collect();
        text.push_str(&format!(
            ", but the key allows only {} (CKA_ALLOWED_MECHANISMS)",
            names.join(", ")
        ));
    }
    let unoffered: Vec<String> = [Some(raw), combined]
        .into_iter()
        .flatten()
        .filter(|m| !permitted.token_offers(m.number()))
        .map(|m| m.to_string())
        .collect();
    if !unoffered.is_empty() {
        text.push_str(&format!(
            "; the token does not offer {}",
            unoffered.join(" or ")
        ));
    }
    if let Some(combined) = combined {
        if !message_available && permitted.permits(combined.number()) {
            text.push_str(&format!(
                "; {combined} hashes the message on the token, so sign the message \
                 (EVP_DigestSign, pkeyutl -rawin, dgst -sign), not a precomputed hash"
            ));
        }
    }
    text
}

fn describe(scheme: Scheme) -> String {
    match scheme {
        Scheme::RsaPkcs1 { digest: Some(d) } => format!("RSA PKCS#1 v1.5 with {}", d.name()),
        Scheme::RsaPkcs1 { digest: None } => "RSA PKCS#1 v1.5".to_owned(),
        Scheme::RsaPss { digest, mgf1, .. } if digest == mgf1 => {
            format!("RSA-PSS with {}", digest.name())
        }
        Scheme::RsaPss { digest, mgf1, .. } => {
            format!("RSA-PSS with {} and MGF1 {}", digest.name(), mgf1.name())
        }
        Scheme::RsaRaw => "raw RSA".to_owned(),
        Scheme::Ecdsa { digest: Some(d) } => format!("ECDSA with {}", d.name()),
        Scheme::Ecdsa { digest: None } => "ECDSA".to_owned(),
        Scheme::Eddsa => "EdDSA".to_owned(),
    }
}

/// `CKM_*` name of a mechanism number, also for those cryptoki has no name for.
pub(crate) fn mechanism_name(mechanism: u64) -> String {
    use cryptoki_sys::*;
    const UNNAMED_BY_CRYPTOKI: &[(u64, &str)] = &[
        (CKM_SHA224_RSA_PKCS, "CKM_SHA224_RSA_PKCS"),
        (CKM_SHA224_RSA_PKCS_PSS, "CKM_SHA224_RSA_PKCS_PSS"),
        (CKM_ECDSA_SHA224, "CKM_ECDSA_SHA224"),
        (CKM_SHA3_224_RSA_PKCS, "CKM_SHA3_224_RSA_PKCS"),
        (CKM_SHA3_256_RSA_PKCS, "CKM_SHA3_256_RSA_PKCS"),
        (CKM_SHA3_384_RSA_PKCS, "CKM_SHA3_384_RSA_PKCS"),
        (CKM_SHA3_512_RSA_PKCS, "CKM_SHA3_512_RSA_PKCS"),
        (CKM_SHA3_224_RSA_PKCS_PSS, "CKM_SHA3_224_RSA_PKCS_PSS"),
        (CKM_SHA3_256_RSA_PKCS_PSS, "CKM_SHA3_256_RSA_PKCS_PSS"),
        (CKM_SHA3_384_RSA_PKCS_PSS, "CKM_SHA3_384_RSA_PKCS_PSS"),
        (CKM_SHA3_512_RSA_PKCS_PSS, "CKM_SHA3_512_RSA_PKCS_PSS"),
        (CKM_ECDSA_SHA3_224, "CKM_ECDSA_SHA3_224"),
        (CKM_ECDSA_SHA3_256, "CKM_ECDSA_SHA3_256"),
        (CKM_ECDSA_SHA3_384, "CKM_ECDSA_SHA3_384"),
        (CKM_ECDSA_SHA3_512, "CKM_ECDSA_SHA3_512"),
    ];
    if let Some((_, name)) = UNNAMED_BY_CRYPTOKI.iter().find(|(m, _)| *m == mechanism) {
        return (*name).to_owned();
    }
    match MechanismType::try_from(mechanism) {
        Ok(known) if mechanism < CKM_VENDOR_DEFINED => known.to_string(),
        _ => format!("mechanism {mechanism:#x}"),
    }
}

/// The digest mechanism PSS parameters name.
fn hash_mechanism(digest: Digest) -> Result<MechanismType> {
    Ok(match digest {
        Digest::Sha1 => MechanismType::SHA1,
        Digest::Sha224 => MechanismType::SHA224,
        Digest::Sha256 => MechanismType::SHA256,
        Digest::Sha384 => MechanismType::SHA384,
        Digest::Sha512 => MechanismType::SHA512,
        other => {
            return Err(Error::Unsupported(format!(
                "RSA-PSS with {} is not supported",
                other.name()
            )));
        }
    })
}

fn mgf1_type(digest: Digest) -> Result<PkcsMgfType> {
    Ok(match digest {
        Digest::Sha1 => PkcsMgfType::MGF1_SHA1,
        Digest::Sha224 => PkcsMgfType::MGF1_SHA224,
        Digest::Sha256 => PkcsMgfType::MGF1_SHA256,
        Digest::Sha384 => PkcsMgfType::MGF1_SHA384,
        Digest::Sha512 => PkcsMgfType::MGF1_SHA512,
        other => {
            return Err(Error::Unsupported(format!(
                "MGF1 with {} is not supported",
                other.name()
            )));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptoki_sys::*;

    const PSS_SHA256: Scheme = Scheme::RsaPss {
        digest: Digest::Sha256,
        mgf1: Digest::Sha256,
        salt_len: 32,
    };

    fn with(allowed: &[u64]) -> Permitted<'_> {
        Permitted {
            allowed: Some(allowed),
            offered: None,
        }
    }

    #[test]
    fn unrestricted_keys_use_the_raw_mechanism() {
        let plan = choose(PSS_SHA256, true, &Permitted::default()).unwrap();
        assert!(matches!(plan, Plan::Raw(Mech::RsaPss { salt_len: 32, .. })));
        let empty = with(&[]);
        let plan = choose(Scheme::Ecdsa { digest: None }, false, &empty).unwrap();
        assert_eq!(plan, Plan::Raw(Mech::Ecdsa));
    }

    #[test]
    fn a_key_allowed_only_a_combined_mechanism_gets_it_for_messages() {
        let allowed = [CKM_SHA256_RSA_PKCS_PSS];
        let plan = choose(PSS_SHA256, true, &with(&allowed)).unwrap();
        match plan {
            Plan::Hashed(mech) => {
                assert_eq!(mech.number(), CKM_SHA256_RSA_PKCS_PSS);
                assert_eq!(mech.to_string(), "CKM_SHA256_RSA_PKCS_PSS");
            }
            other => panic!("{other:?}"),
        }
        let allowed = [CKM_ECDSA_SHA384];
        let scheme = Scheme::Ecdsa {
            digest: Some(Digest::Sha384),
        };
        let plan = choose(scheme, true, &with(&allowed)).unwrap();
        assert_eq!(plan, Plan::Hashed(Mech::EcdsaHashed(TokenHash::Sha384)));
        let allowed = [CKM_SHA512_RSA_PKCS];
        let scheme = Scheme::RsaPkcs1 {
            digest: Some(Digest::Sha512),
        };
        let plan = choose(scheme, true, &with(&allowed)).unwrap();
        assert_eq!(plan, Plan::Hashed(Mech::RsaPkcsHashed(TokenHash::Sha512)));
    }

    #[test]
    fn a_token_offering_only_combined_mechanisms_gets_them() {
        let offered = [CKM_SHA256_RSA_PKCS, CKM_RSA_PKCS_KEY_PAIR_GEN];
        let permitted = Permitted {
            allowed: None,
            offered: Some(&offered),
        };
        let scheme = Scheme::RsaPkcs1 {
            digest: Some(Digest::Sha256),
        };
        let plan = choose(scheme, true, &permitted).unwrap();
        assert_eq!(plan, Plan::Hashed(Mech::RsaPkcsHashed(TokenHash::Sha256)));
        let err = choose(scheme, false, &permitted).unwrap_err().to_string();
        assert!(err.contains("does not offer CKM_RSA_PKCS"), "{err}");
        assert!(err.contains("not a precomputed hash"), "{err}");
    }

    #[test]
    fn a_disallowed_digest_or_padding_names_the_mechanisms() {
        let allowed = [CKM_SHA256_RSA_PKCS_PSS];
        let scheme = Scheme::RsaPss {
            digest: Digest::Sha384,
            mgf1: Digest::Sha384,
            salt_len: 48,
        };
        let err = choose(scheme, true, &with(&allowed))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("RSA-PSS with SHA2-384 needs CKM_RSA_PKCS_PSS or CKM_SHA384_RSA_PKCS_PSS"),
            "{err}"
        );
        assert!(err.contains("allows only CKM_SHA256_RSA_PKCS_PSS"), "{err}");
        let pss_only = [CKM_RSA_PKCS_PSS, CKM_SHA224_RSA_PKCS_PSS];
        let scheme = Scheme::RsaPkcs1 {
            digest: Some(Digest::Sha256),
        };
        let err = choose(scheme, true, &with(&pss_only))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("allows only CKM_RSA_PKCS_PSS, CKM_SHA224_RSA_PKCS_PSS"),
            "{err}"
        );
    }

    #[test]
    fn digests_without_a_combined_mechanism_need_the_raw_one() {
        let allowed = [CKM_SHA224_RSA_PKCS_PSS];
        let scheme = Scheme::RsaPss {
            digest: Digest::Sha224,
            mgf1: Digest::Sha224,
            salt_len: 28,
        };
        let err = choose(scheme, true, &with(&allowed))
            .unwrap_err()
            .to_string();
        assert!(err.contains("needs CKM_RSA_PKCS_PSS,"), "{err}");
        let scheme = Scheme::Ecdsa {
            digest: Some(Digest::Sha3_256),
        };
        assert!(choose(scheme, true, &with(&[CKM_ECDSA_SHA3_256])).is_err());
        assert!(choose(Scheme::Eddsa, true, &with(&[CKM_EDDSA])).is_ok());
        assert!(choose(Scheme::RsaRaw, true, &with(&[CKM_RSA_PKCS])).is_err());
    }

    #[test]
    fn mechanism_names_cover_numbers_cryptoki_cannot_name() {
        assert_eq!(
            mechanism_name(CKM_SHA224_RSA_PKCS_PSS),
            "CKM_SHA224_RSA_PKCS_PSS"
        );
        assert_eq!(mechanism_name(CKM_RSA_PKCS), "CKM_RSA_PKCS");
        assert_eq!(mechanism_name(CKM_ECDSA_SHA3_512), "CKM_ECDSA_SHA3_512");
        assert_eq!(mechanism_name(0x8000_1234), "mechanism 0x80001234");
    }
}
