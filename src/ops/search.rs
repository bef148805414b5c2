//! Search criteria of the `pkcs11:` store: what `OSSL_STORE_find` passes to `set_ctx_params`
//! (provider-storemgmt(7): `subject`, `name` + `serial`, `digest` + `fingerprint`, `alias`),
//! and so what `openssl storeutl -subject`, `-issuer -serial`, `-fingerprint` and `-alias` do.
//!
//! OpenSSL 3.0 only asks whether a store supports a criterion (the settable parameters) and
//! then lists whatever the store returns, so the store filters itself. Subject, and issuer
//! and serial, select certificates; alias compares `CKA_LABEL` of any object. Names compare as
//! OpenSSL compares them (`X509_NAME_cmp`), the subject taken from `CKA_SUBJECT` when the token
//! keeps it, else from the certificate. A fingerprint (storeutl: "public key fingerprint")
//! matches a key or certificate whose DER `SubjectPublicKeyInfo` has that digest, and also a
//! certificate whose whole DER has it (what `openssl x509 -fingerprint` prints).

use std::sync::Arc;

use crate::asn1::{self, Digest};
use crate::error::{Error, Result};
use crate::ops::provider::ProvCtx;
use crate::sys::libcrypto::{DigestCtx, Md};
use crate::sys::x509::{self, CertificateFields};
use crate::token::object::{Found, KeyAlgorithm, KeyObj, PublicKey};

/// The criteria set on one store context; all that are set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Search {
    /// DER `Name` the subject must equal.
    pub(crate) subject: Option<Vec<u8>>,
    /// DER `Name` the issuer must equal.
    pub(crate) issuer: Option<Vec<u8>>,
    /// Serial number, big-endian magnitude.
    pub(crate) serial: Option<Vec<u8>>,
    /// Name of the fingerprint's digest.
    pub(crate) digest: Option<String>,
    /// Digest of the DER certificate.
    pub(crate) fingerprint: Option<Vec<u8>>,
    /// `CKA_LABEL` of the object.
    pub(crate) alias: Option<String>,
}

impl Search {
    /// True when no criterion is set.
    pub(crate) fn is_empty(&self) -> bool {
        *self == Search::default()
    }

    /// True when only certificates can match.
    pub(crate) fn certificates_only(&self) -> bool {
        self.subject.is_some() || self.issuer.is_some() || self.serial.is_some()
    }

    /// The criteria with the serial number's leading zero bytes removed; a fingerprint without
    /// its digest is refused (OpenSSL always passes both).
    pub(crate) fn normalised(mut self) -> Result<Search> {
        if let Some(serial) = &mut self.serial {
            let zeros = serial.iter().take_while(|b| **b == 0).count();
            serial.drain(..zeros);
        }
        if self.fingerprint.is_some() && self.digest.is_none() {
            return Err(Error::BadParam(
                "a fingerprint search needs the digest (OSSL_STORE_PARAM_DIGEST)".into(),
            ));
        }
        Ok(self)
    }

    /// True when `found` meets every criterion.
    pub(crate) fn matches(&self, prov: &ProvCtx, found: &Found) -> Result<bool> {
        let label = match found {
            Found::Key(key) => key.token.as_ref().and_then(|t| t.label.as_deref()),
            Found::Certificate { label, .. } => label.as_deref(),
        };
        if let Some(alias) = &self.alias {
            if label != Some(alias.as_str()) {
                return Ok(false);
            }
        }
        match found {
            Found::Key(key) => {
                if self.certificates_only() {
                    return Ok(false);
                }
                self.fingerprint_matches(prov, &[&public_key_info(key)])
            }
            Found::Certificate { der, subject, .. } => {
                if !self.certificates_only() && self.fingerprint.is_none() {
                    return Ok(true);
                }
                let fields = match x509::certificate_fields(der) {
                    Ok(fields) => fields,
                    Err(e) => {
                        let label = label.unwrap_or("");
                        log::debug!("certificate '{label}' skipped in a search: {e}");
                        return Ok(false);
                    }
                };
                Ok(self.names_match(&fields, subject.as_deref())
                    && self.fingerprint_matches(prov, &[der, &fields.public_key_info])?)
            }
        }
    }

    fn names_match(&self, names: &CertificateFields, token_subject: Option<&[u8]>) -> bool {
        if let Some(wanted) = &self.subject {
            let subject = token_subject.unwrap_or(&names.subject);
            // CKA_SUBJECT is written by whoever stored the certificate: if it disagrees,
            // the certificate's own subject still counts.
            if !x509::names_equal(wanted, subject) && !x509::names_equal(wanted, &names.subject) {
                return false;
            }
        }
        if let Some(issuer) = &self.issuer {
            if !x509::names_equal(issuer, &names.issuer) {
                return false;
            }
        }
        if let Some(serial) = &self.serial {
            if *serial != names.serial {
                return false;
            }
        }
        true
    }

    /// True when no fingerprint is asked for, or one of `candidates` has it.
    fn fingerprint_matches(&self, prov: &ProvCtx, candidates: &[&[u8]]) -> Result<bool> {
        let (Some(fingerprint), Some(name)) = (&self.fingerprint, &self.digest) else {
            return Ok(true);
        };
        let md = match Digest::from_name(name) {
            Some(digest) => prov.md(digest)?,
            None => Arc::new(Md::fetch(prov.libctx(), name)?),
        };
        for candidate in candidates.iter().filter(|c| !c.is_empty()) {
            let mut ctx = DigestCtx::new(&md)?;
            ctx.update(candidate)?;
            if ctx.finish()? == *fingerprint {
                return Ok(true);
            }
        }
        Ok(false)
    }
}

/// DER `SubjectPublicKeyInfo` of a token key, as `openssl pkey -pubout` writes it.
fn public_key_info(key: &KeyObj) -> Vec<u8> {
    match &key.public {
        PublicKey::Rsa { modulus, exponent } => asn1::rsa_subject_public_key_info(
            modulus,
            exponent,
            key.algorithm == KeyAlgorithm::RsaPss,
        ),
        PublicKey::Ec { curve, point } => asn1::ec_subject_public_key_info(*curve, point),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_numbers_lose_leading_zeros_and_fingerprints_need_a_digest() {
        let search = Search {
            serial: Some(vec![0, 0, 0x12, 0x00]),
            ..Search::default()
        };
        assert_eq!(search.normalised().unwrap().serial, Some(vec![0x12, 0x00]));
        let search = Search {
            fingerprint: Some(vec![1; 20]),
            ..Search::default()
        };
        assert!(search.normalised().is_err());
    }

    #[test]
    fn only_name_serial_and_fingerprint_searches_are_certificate_only() {
        let alias = Search {
            alias: Some("web".into()),
            ..Search::default()
        };
        assert!(!alias.certificates_only() && !alias.is_empty());
        let subject = Search {
            subject: Some(vec![0x30, 0x00]),
            ..Search::default()
        };
        assert!(subject.certificates_only());
        assert!(Search::default().is_empty());
    }
}
