//! `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7) of token public keys, for the encoder that writes
//! `openssl pkey -pubout` output without handing the key to another provider: RSA (RFC 8017
//! §A.1, RFC 4055 §1.2 for PSS-only keys), EC (RFC 5480 §2) and EdDSA (RFC 8410 §4).

use super::Curve;
use super::algid::{PKCS1_ARC, PKCS1_RSASSA_PSS, algorithm_id, arc_oid};
use super::der::{TAG_BIT_STRING, TAG_NULL, TAG_OID, TAG_SEQUENCE, der_element, unsigned_integer};

/// rsaEncryption (PKCS#1 1).
const PKCS1_RSA_ENCRYPTION: u8 = 1;
/// id-ecPublicKey, 1.2.840.10045.2.1 (RFC 5480 §2.1.1), contents octets.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];

/// `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7) of an RSA key: rsaEncryption with NULL
/// parameters (RFC 8017 §A.1), or id-RSASSA-PSS with parameters absent for a key restricted to
/// PSS (RFC 4055 §1.2), and the `RSAPublicKey` in the BIT STRING.
pub(crate) fn rsa_subject_public_key_info(modulus: &[u8], exponent: &[u8], pss: bool) -> Vec<u8> {
    let algorithm = if pss {
        algorithm_id(&arc_oid(&PKCS1_ARC, PKCS1_RSASSA_PSS), None)
    } else {
        algorithm_id(
            &arc_oid(&PKCS1_ARC, PKCS1_RSA_ENCRYPTION),
            Some(&der_element(TAG_NULL, &[])),
        )
    };
    let mut key = unsigned_integer(modulus);
    key.extend_from_slice(&unsigned_integer(exponent));
    subject_public_key_info(&algorithm, &der_element(TAG_SEQUENCE, &key))
}

/// `SubjectPublicKeyInfo` of an EC key: id-ecPublicKey with the named curve and the SEC1 point
/// (RFC 5480 §2), or id-Ed25519/id-Ed448 with the raw public key (RFC 8410 §4).
pub(crate) fn ec_subject_public_key_info(curve: Curve, point: &[u8]) -> Vec<u8> {
    let algorithm = if curve.is_edwards() {
        algorithm_id(curve.oid(), None)
    } else {
        algorithm_id(OID_EC_PUBLIC_KEY, Some(&der_element(TAG_OID, curve.oid())))
    };
    subject_public_key_info(&algorithm, point)
}

fn subject_public_key_info(algorithm: &[u8], key: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(key.len() + 1);
    bits.push(0); // no unused bits
    bits.extend_from_slice(key);
    let mut content = algorithm.to_vec();
    content.extend_from_slice(&der_element(TAG_BIT_STRING, &bits));
    der_element(TAG_SEQUENCE, &content)
}
