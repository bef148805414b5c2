//! The elliptic curves the provider signs with (NIST P-curves for ECDSA, Edwards curves for
//! EdDSA): their OpenSSL names and sizes, and the decoding of the PKCS#11 key attributes
//! `CKA_EC_PARAMS` and `CKA_EC_POINT` (PKCS#11 3.0, EC and Edwards key objects; RFC 5480,
//! RFC 8410).

use super::der::{
    TAG_OCTET_STRING, TAG_OID, TAG_PRINTABLE_STRING, der_element, der_element_len, parse_single,
    parse_single_element,
};

/// An elliptic curve the provider can sign with: NIST prime curves for ECDSA, Edwards curves
/// for EdDSA.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Curve {
    P256,
    P384,
    P521,
    Ed25519,
    Ed448,
}

/// Contents octets of the curve OIDs (RFC 5480 §2.1.1.1, RFC 8410 §3).
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]; // 1.2.840.10045.3.1.7
const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22]; // 1.3.132.0.34
const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23]; // 1.3.132.0.35
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70]; // 1.3.101.112
const OID_ED448: &[u8] = &[0x2b, 0x65, 0x71]; // 1.3.101.113
/// 1.3.6.1.4.1.11591.15.1: GnuPG's Ed25519 OID, which older tokens and tools put in
/// `CKA_EC_PARAMS` before PKCS#11 3.0 fixed the encoding.
const OID_ED25519_GNUPG: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0xda, 0x47, 0x0f, 0x01];

impl Curve {
    /// Every curve, in declaration order.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "for tests and key-creation code")
    )]
    pub(crate) const ALL: [Curve; 5] = [
        Curve::P256,
        Curve::P384,
        Curve::P521,
        Curve::Ed25519,
        Curve::Ed448,
    ];

    /// Decodes `CKA_EC_PARAMS`: a DER OBJECT IDENTIFIER naming the curve (RFC 5480 named curves,
    /// RFC 8410 or GnuPG OIDs for Edwards curves) or, for Edwards curves, the DER
    /// PrintableString curve name PKCS#11 3.0 added for them ("edwards25519", "edwards448"; the
    /// RFC 8410 names "Ed25519"/"Ed448" are taken too, as some HSMs document them). Explicit
    /// curve parameters and `implicitlyCA` (NULL) give `None`: we only offer named curves.
    pub(crate) fn from_ec_params(der: &[u8]) -> Option<Curve> {
        let element = parse_single_element(der)?;
        match element.tag {
            TAG_OID => match element.content {
                OID_P256 => Some(Curve::P256),
                OID_P384 => Some(Curve::P384),
                OID_P521 => Some(Curve::P521),
                OID_ED25519 | OID_ED25519_GNUPG => Some(Curve::Ed25519),
                OID_ED448 => Some(Curve::Ed448),
                _ => None,
            },
            TAG_PRINTABLE_STRING => {
                let name = element.content;
                if name.eq_ignore_ascii_case(b"edwards25519")
                    || name.eq_ignore_ascii_case(b"Ed25519")
                {
                    Some(Curve::Ed25519)
                } else if name.eq_ignore_ascii_case(b"edwards448")
                    || name.eq_ignore_ascii_case(b"Ed448")
                {
                    Some(Curve::Ed448)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// Looks a curve up by an OpenSSL group or key type name (`OSSL_PKEY_PARAM_GROUP_NAME`, or
    /// the NIST and SEC names OpenSSL accepts as aliases), ignoring ASCII case.
    pub(crate) fn from_group_name(name: &str) -> Option<Curve> {
        let aliases: &[(&str, Curve)] = &[
            ("prime256v1", Curve::P256),
            ("P-256", Curve::P256),
            ("secp256r1", Curve::P256),
            ("secp384r1", Curve::P384),
            ("P-384", Curve::P384),
            ("secp521r1", Curve::P521),
            ("P-521", Curve::P521),
            ("ED25519", Curve::Ed25519),
            ("ED448", Curve::Ed448),
        ];
        aliases
            .iter()
            .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
            .map(|&(_, curve)| curve)
    }

    /// The DER OBJECT IDENTIFIER of the curve as it goes into `CKA_EC_PARAMS` and into a
    /// SubjectPublicKeyInfo (RFC 8410 OIDs for the Edwards curves).
    pub(crate) fn ec_params(self) -> Vec<u8> {
        der_element(TAG_OID, self.oid())
    }

    /// OpenSSL's group name for P-curves, key type name for Edwards curves.
    pub(crate) fn group_name(self) -> &'static str {
        match self {
            Curve::P256 => "prime256v1",
            Curve::P384 => "secp384r1",
            Curve::P521 => "secp521r1",
            Curve::Ed25519 => "ED25519",
            Curve::Ed448 => "ED448",
        }
    }

    /// Key size in bits as `EVP_PKEY_get_bits()` reports it (OpenSSL uses 253 and 456 for the
    /// Edwards curves).
    pub(crate) fn bits(self) -> usize {
        match self {
            Curve::P256 => 256,
            Curve::P384 => 384,
            Curve::P521 => 521,
            Curve::Ed25519 => 253,
            Curve::Ed448 => 456,
        }
    }

    /// Security strength in bits as `EVP_PKEY_get_security_bits()` reports it.
    pub(crate) fn security_bits(self) -> usize {
        match self {
            Curve::P256 | Curve::Ed25519 => 128,
            Curve::P384 => 192,
            Curve::P521 => 256,
            Curve::Ed448 => 224,
        }
    }

    /// Bytes per field element: the length of each half of a `CKM_ECDSA` signature and of X
    /// and Y in a P-curve point, or the length of an Edwards public key.
    pub(crate) fn field_bytes(self) -> usize {
        match self {
            Curve::P256 | Curve::Ed25519 => 32,
            Curve::P384 => 48,
            Curve::P521 => 66,
            Curve::Ed448 => 57,
        }
    }

    /// Largest signature, as `EVP_PKEY_get_size()` reports it: DER `ECDSA-Sig-Value` with both
    /// INTEGERs as long as the group order allows, or the fixed EdDSA length (RFC 8032).
    pub(crate) fn max_signature_size(self) -> usize {
        match self {
            // Order top bit set: each INTEGER gets a 0x00 pad, 2 + 33 bytes.
            Curve::P256 => der_element_len(2 * der_element_len(33)),
            Curve::P384 => der_element_len(2 * der_element_len(49)),
            // Order starts 0x01: 66 bytes, no pad; the SEQUENCE needs a two-byte length.
            Curve::P521 => der_element_len(2 * der_element_len(66)),
            Curve::Ed25519 => 64,
            Curve::Ed448 => 114,
        }
    }

    /// Whether this is an EdDSA curve (`CKK_EC_EDWARDS`, `CKM_EDDSA`).
    pub(crate) fn is_edwards(self) -> bool {
        matches!(self, Curve::Ed25519 | Curve::Ed448)
    }

    /// The contents octets of the curve's OBJECT IDENTIFIER.
    pub(super) fn oid(self) -> &'static [u8] {
        match self {
            Curve::P256 => OID_P256,
            Curve::P384 => OID_P384,
            Curve::P521 => OID_P521,
            Curve::Ed25519 => OID_ED25519,
            Curve::Ed448 => OID_ED448,
        }
    }

    /// Whether `point` has the shape of a public key on this curve: for P-curves an
    /// uncompressed (0x04 || X || Y) or compressed (0x02/0x03 || X) SEC 1 point, for Edwards
    /// curves the RFC 8032 encoding. Whether it is on the curve is left to libcrypto.
    fn is_point_shaped(self, point: &[u8]) -> bool {
        let n = self.field_bytes();
        if self.is_edwards() {
            return point.len() == n;
        }
        match point.first() {
            Some(0x04) => point.len() == 1 + 2 * n,
            Some(0x02 | 0x03) => point.len() == 1 + n,
            _ => false,
        }
    }
}

/// Extracts the public point from `CKA_EC_POINT`. PKCS#11 says the attribute is a DER OCTET
/// STRING wrapping the point (SoftHSM2 does so for every curve), but some tokens store the bare
/// point; both are accepted. The two forms cannot be confused: a wrapped point is always longer
/// than a bare one of the same curve, by at least two bytes, and never of a valid bare length.
pub(crate) fn unwrap_ec_point(attr: &[u8], curve: Curve) -> Option<Vec<u8>> {
    let wrapped = parse_single(attr, TAG_OCTET_STRING).filter(|point| curve.is_point_shaped(point));
    let point = wrapped.or_else(|| curve.is_point_shaped(attr).then_some(attr))?;
    Some(point.to_vec())
}

/// The point in a `CKA_EC_POINT` that is an OCTET STRING whose length, 128 to 255, is given in
/// one byte (`04 85 04 ...`): not DER (which writes `04 81 85 04 ...`), but what tpm2-pkcs11 1.9
/// stores for P-521 keys. Used only with the quirk `ec-point-short-length`.
pub(crate) fn unwrap_ec_point_short_length(attr: &[u8], curve: Curve) -> Option<Vec<u8>> {
    match attr {
        [TAG_OCTET_STRING, len, point @ ..]
            if *len >= 0x80 && usize::from(*len) == point.len() && curve.is_point_shaped(point) =>
        {
            Some(point.to_vec())
        }
        _ => None,
    }
}
