//! The signature `AlgorithmIdentifier`s the provider returns as
//! `OSSL_SIGNATURE_PARAM_ALGORITHM_ID` for X.509, CMS and TLS: RSASSA-PKCS1-v1_5 and RSASSA-PSS
//! (RFC 4055, RFC 8017), ECDSA (RFC 5758, RFC 3279, NIST CSOR for SHA-3) and EdDSA (RFC 8410),
//! each byte for byte as OpenSSL 3.0 writes it; and the `AlgorithmIdentifier` builder the other
//! structures share.

use super::der::{
    CONTEXT_0, CONTEXT_1, CONTEXT_2, NULL, TAG_OID, TAG_SEQUENCE, der_element, unsigned_integer,
};
use super::{Curve, Digest};

/// 1.2.840.113549.1.1: the PKCS#1 arc; the algorithm number follows.
pub(super) const PKCS1_ARC: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
/// 2.16.840.1.101.3.4.3: NIST signature algorithms (sigAlgs); the algorithm number follows.
const NIST_SIG_ARC: [u8; 8] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];
/// 1.2.840.10045.4.1: ecdsa-with-SHA1 (RFC 3279 §2.2.3), contents octets.
const OID_ECDSA_WITH_SHA1: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
/// 1.2.840.10045.4.3: the ecdsa-with-SHA2 arc (RFC 5758 §3.2); the algorithm number follows.
const ECDSA_SHA2_ARC: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
/// id-RSASSA-PSS (PKCS#1 10) and id-mgf1 (PKCS#1 8).
pub(super) const PKCS1_RSASSA_PSS: u8 = 10;
const PKCS1_MGF1: u8 = 8;
/// RSASSA-PSS-params DEFAULT salt length (RFC 4055 §3.1).
const PSS_DEFAULT_SALT_LEN: usize = 20;

/// `AlgorithmIdentifier` for RSASSA-PKCS1-v1_5 with `digest` (RFC 4055 §5, RFC 8017 §A.2.4,
/// NIST CSOR for SHA-3), with the NULL parameters those definitions require.
pub(crate) fn rsa_pkcs1_algorithm_id(digest: Digest) -> Option<Vec<u8>> {
    let oid = match digest {
        Digest::Sha1 => arc_oid(&PKCS1_ARC, 5),
        Digest::Sha224 => arc_oid(&PKCS1_ARC, 14),
        Digest::Sha256 => arc_oid(&PKCS1_ARC, 11),
        Digest::Sha384 => arc_oid(&PKCS1_ARC, 12),
        Digest::Sha512 => arc_oid(&PKCS1_ARC, 13),
        Digest::Sha512_224 => arc_oid(&PKCS1_ARC, 15),
        Digest::Sha512_256 => arc_oid(&PKCS1_ARC, 16),
        Digest::Sha3_224 => arc_oid(&NIST_SIG_ARC, 13),
        Digest::Sha3_256 => arc_oid(&NIST_SIG_ARC, 14),
        Digest::Sha3_384 => arc_oid(&NIST_SIG_ARC, 15),
        Digest::Sha3_512 => arc_oid(&NIST_SIG_ARC, 16),
    };
    Some(algorithm_id(&oid, Some(&NULL)))
}

/// `AlgorithmIdentifier` for RSASSA-PSS (RFC 4055 §3.1) with MGF1 and trailer field 1. Fields
/// equal to their DEFAULT (SHA-1, MGF1 with SHA-1, salt length 20) are left out as DER demands;
/// hash `AlgorithmIdentifier`s carry NULL parameters as OpenSSL writes them. SHA-3 is refused:
/// RFC 8017 §A.2.3 does not list it for PSS and OpenSSL 3.0 cannot encode it either.
pub(crate) fn rsa_pss_algorithm_id(
    digest: Digest,
    mgf1_digest: Digest,
    salt_len: usize,
) -> Option<Vec<u8>> {
    if !digest.allowed_in_pss_params() || !mgf1_digest.allowed_in_pss_params() {
        return None;
    }
    let mut params = Vec::new();
    if digest != Digest::Sha1 {
        params.extend(der_element(CONTEXT_0, &digest.algorithm_id_with_null()));
    }
    if mgf1_digest != Digest::Sha1 {
        let mgf1 = algorithm_id(
            &arc_oid(&PKCS1_ARC, PKCS1_MGF1),
            Some(&mgf1_digest.algorithm_id_with_null()),
        );
        params.extend(der_element(CONTEXT_1, &mgf1));
    }
    if salt_len != PSS_DEFAULT_SALT_LEN {
        params.extend(der_element(
            CONTEXT_2,
            &unsigned_integer(&salt_len.to_be_bytes()),
        ));
    }
    Some(algorithm_id(
        &arc_oid(&PKCS1_ARC, PKCS1_RSASSA_PSS),
        Some(&der_element(TAG_SEQUENCE, &params)),
    ))
}

/// `AlgorithmIdentifier` for ECDSA with `digest` (RFC 5758 §3.2, RFC 3279 §2.2.3, NIST CSOR for
/// SHA-3), parameters absent. SHA-512/224 and SHA-512/256 have no ECDSA OID: `None`.
pub(crate) fn ecdsa_algorithm_id(digest: Digest) -> Option<Vec<u8>> {
    let oid = match digest {
        Digest::Sha1 => OID_ECDSA_WITH_SHA1.to_vec(),
        Digest::Sha224 => arc_oid(&ECDSA_SHA2_ARC, 1),
        Digest::Sha256 => arc_oid(&ECDSA_SHA2_ARC, 2),
        Digest::Sha384 => arc_oid(&ECDSA_SHA2_ARC, 3),
        Digest::Sha512 => arc_oid(&ECDSA_SHA2_ARC, 4),
        Digest::Sha512_224 | Digest::Sha512_256 => return None,
        Digest::Sha3_224 => arc_oid(&NIST_SIG_ARC, 9),
        Digest::Sha3_256 => arc_oid(&NIST_SIG_ARC, 10),
        Digest::Sha3_384 => arc_oid(&NIST_SIG_ARC, 11),
        Digest::Sha3_512 => arc_oid(&NIST_SIG_ARC, 12),
    };
    Some(algorithm_id(&oid, None))
}

/// `AlgorithmIdentifier` for PureEdDSA (RFC 8410 §3: id-Ed25519 / id-Ed448, parameters
/// absent). `None` for curves that are not Edwards curves.
pub(crate) fn eddsa_algorithm_id(curve: Curve) -> Option<Vec<u8>> {
    curve.is_edwards().then(|| algorithm_id(curve.oid(), None))
}

/// OID contents for `arc.number`, for the single-byte final arcs used here.
pub(super) fn arc_oid(arc: &[u8], number: u8) -> Vec<u8> {
    let mut oid = arc.to_vec();
    oid.push(number);
    oid
}

/// `AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }`
/// where `parameters` is already DER.
pub(super) fn algorithm_id(oid: &[u8], parameters: Option<&[u8]>) -> Vec<u8> {
    let mut content = der_element(TAG_OID, oid);
    if let Some(parameters) = parameters {
        content.extend_from_slice(parameters);
    }
    der_element(TAG_SEQUENCE, &content)
}
