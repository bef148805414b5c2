//! DER encoding and algorithm identities for signatures and EC key parameters.
//!
//! This module owns every byte string the provider must produce or understand that is neither a
//! PKCS#11 call nor an OpenSSL parameter: the PKCS#1 v1.5 `DigestInfo` prefixes (RFC 8017 §9.2),
//! the `AlgorithmIdentifier`s returned as `OSSL_SIGNATURE_PARAM_ALGORITHM_ID` for X.509, CMS and
//! TLS (RFC 4055 for RSASSA-PSS, RFC 5758 and NIST CSOR for ECDSA, RFC 8410 for EdDSA), the
//! conversion between the PKCS#11 `CKM_ECDSA` output `r || s` and the DER `ECDSA-Sig-Value`
//! (RFC 5480 §2.2 / SEC 1), and the decoding of `CKA_EC_PARAMS` and `CKA_EC_POINT` (PKCS#11 3.0
//! current mechanisms, EC and Edwards key objects). It is pure: no token, no libcrypto. The DER
//! reader is strict (X.690 §10): indefinite lengths, non-minimal lengths and trailing bytes are
//! rejected, and malformed input gives `None`, never a panic.
//!
//! One file per concern: `digest` and `curve` (the registries), `ecdsa` (signature values),
//! `algid` (signature `AlgorithmIdentifier`s), `spki` (`SubjectPublicKeyInfo`), `pem_uri` (the
//! PEM-URI key file body) and `der` (the reader and writer they all use). Callers name
//! everything through the re-exports below, `crate::asn1::Digest` and so on.

mod algid;
mod curve;
mod der;
mod digest;
mod ecdsa;
mod pem_uri;
mod spki;

#[cfg(test)]
mod tests;

pub(crate) use algid::{
    ecdsa_algorithm_id, eddsa_algorithm_id, rsa_pkcs1_algorithm_id, rsa_pss_algorithm_id,
};
pub(crate) use curve::{Curve, unwrap_ec_point, unwrap_ec_point_short_length};
pub(crate) use digest::Digest;
#[cfg_attr(
    not(test),
    expect(unused_imports, reason = "used by the verify path; tested now")
)]
pub(crate) use ecdsa::der_to_ecdsa_signature;
pub(crate) use ecdsa::ecdsa_signature_to_der;
pub(crate) use pem_uri::{parse_pem_uri_body, pem_uri_body};
pub(crate) use spki::{ec_subject_public_key_info, rsa_subject_public_key_info};
