//! DER encoding and algorithm identities for signatures and EC key parameters.
//!
//! This module owns every byte string the provider must produce or understand that is neither a
//! PKCS#11 call nor an OpenSSL parameter: the PKCS#1 v1.5 `DigestInfo` prefixes (RFC 8017 §9.2),
//! the `AlgorithmIdentifier`s returned as `OSSL_SIGNATURE_PARAM_ALGORITHM_ID` for X.509, CMS and
//! TLS (RFC 4055 for RSASSA-PSS, RFC 5758 and NIST CSOR for ECDSA, RFC 8410 for EdDSA), the
//! conversion between the PKCS#11 `CKM_ECDSA` output `r || s` and the DER `ECDSA-Sig-Value`
//! (RFC 5480 §2.2 / SEC 1), and the decoding of `CKA_EC_PARAMS` and `CKA_EC_POINT` (PKCS#11 3.0
//! current mechanisms, EC and Edwards key objects). It is pure: no token, no libcrypto. The DER reader is strict (X.690 §10):
//! indefinite lengths, non-minimal lengths and trailing bytes are rejected, and malformed input
//! gives `None`, never a panic.

// ---------------------------------------------------------------------------------------------
// Digests
// ---------------------------------------------------------------------------------------------

/// A message digest the provider can sign with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Digest {
    Sha1,
    Sha224,
    Sha256,
    Sha384,
    Sha512,
    Sha512_224,
    Sha512_256,
    Sha3_224,
    Sha3_256,
    Sha3_384,
    Sha3_512,
}

impl Digest {
    /// Every digest, in declaration order.
    pub(crate) const ALL: [Digest; 11] = [
        Digest::Sha1,
        Digest::Sha224,
        Digest::Sha256,
        Digest::Sha384,
        Digest::Sha512,
        Digest::Sha512_224,
        Digest::Sha512_256,
        Digest::Sha3_224,
        Digest::Sha3_256,
        Digest::Sha3_384,
        Digest::Sha3_512,
    ];

    /// Looks a digest up by any name or OID text OpenSSL 3 knows it by (`openssl list
    /// -digest-algorithms`), ignoring ASCII case: a caller may hand us the user's `-sha256`, the
    /// provider name `SHA2-256` or `EVP_MD_get0_name()` output.
    pub(crate) fn from_name(name: &str) -> Option<Digest> {
        Digest::ALL.into_iter().find(|digest| {
            digest
                .aliases()
                .iter()
                .any(|alias| alias.eq_ignore_ascii_case(name))
        })
    }

    /// The name OpenSSL's default provider registers first, i.e. the one to fetch by.
    pub(crate) fn name(self) -> &'static str {
        self.aliases()[0]
    }

    /// Output length in bytes.
    pub(crate) fn size(self) -> usize {
        match self {
            Digest::Sha1 => 20,
            Digest::Sha224 | Digest::Sha512_224 | Digest::Sha3_224 => 28,
            Digest::Sha256 | Digest::Sha512_256 | Digest::Sha3_256 => 32,
            Digest::Sha384 | Digest::Sha3_384 => 48,
            Digest::Sha512 | Digest::Sha3_512 => 64,
        }
    }

    /// The DER `DigestInfo` (RFC 8017 §9.2, note 1) up to and including the OCTET STRING
    /// header, so that `prefix || hash` is the input for `CKM_RSA_PKCS`. The parameters of the
    /// hash `AlgorithmIdentifier` are NULL, as RFC 8017 prints them and OpenSSL writes them.
    pub(crate) fn digest_info_prefix(self) -> &'static [u8] {
        // Constants because the result must be 'static; the unit tests rebuild each one with
        // the DER writer and compare it with what OpenSSL put inside real signatures.
        match self {
            Digest::Sha1 => &[
                0x30, 0x21, 0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e, 0x03, 0x02, 0x1a, 0x05, 0x00, 0x04,
                0x14,
            ],
            Digest::Sha224 => &DIGEST_INFO_PREFIX_SHA224,
            Digest::Sha256 => &DIGEST_INFO_PREFIX_SHA256,
            Digest::Sha384 => &DIGEST_INFO_PREFIX_SHA384,
            Digest::Sha512 => &DIGEST_INFO_PREFIX_SHA512,
            Digest::Sha512_224 => &DIGEST_INFO_PREFIX_SHA512_224,
            Digest::Sha512_256 => &DIGEST_INFO_PREFIX_SHA512_256,
            Digest::Sha3_224 => &DIGEST_INFO_PREFIX_SHA3_224,
            Digest::Sha3_256 => &DIGEST_INFO_PREFIX_SHA3_256,
            Digest::Sha3_384 => &DIGEST_INFO_PREFIX_SHA3_384,
            Digest::Sha3_512 => &DIGEST_INFO_PREFIX_SHA3_512,
        }
    }

    /// Guesses the SHA-2 digest from a hash length, for raw (pre-hashed) signing where the
    /// caller set no digest but PKCS#1 v1.5 still needs a `DigestInfo`.
    pub(crate) fn from_size(len: usize) -> Option<Digest> {
        match len {
            20 => Some(Digest::Sha1),
            28 => Some(Digest::Sha224),
            32 => Some(Digest::Sha256),
            48 => Some(Digest::Sha384),
            64 => Some(Digest::Sha512),
            _ => None,
        }
    }

    /// The contents octets of the digest's OBJECT IDENTIFIER.
    pub(crate) fn oid(self) -> &'static [u8] {
        match self {
            Digest::Sha1 => OID_SHA1,
            Digest::Sha224 => &OID_SHA224,
            Digest::Sha256 => &OID_SHA256,
            Digest::Sha384 => &OID_SHA384,
            Digest::Sha512 => &OID_SHA512,
            Digest::Sha512_224 => &OID_SHA512_224,
            Digest::Sha512_256 => &OID_SHA512_256,
            Digest::Sha3_224 => &OID_SHA3_224,
            Digest::Sha3_256 => &OID_SHA3_256,
            Digest::Sha3_384 => &OID_SHA3_384,
            Digest::Sha3_512 => &OID_SHA3_512,
        }
    }

    /// Names and OID text OpenSSL 3.0's default provider registers for the digest, canonical
    /// fetch name first, plus the legacy `SSL3-SHA1`.
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Digest::Sha1 => &["SHA1", "SHA-1", "SSL3-SHA1", "1.3.14.3.2.26"],
            Digest::Sha224 => &["SHA2-224", "SHA-224", "SHA224", "2.16.840.1.101.3.4.2.4"],
            Digest::Sha256 => &["SHA2-256", "SHA-256", "SHA256", "2.16.840.1.101.3.4.2.1"],
            Digest::Sha384 => &["SHA2-384", "SHA-384", "SHA384", "2.16.840.1.101.3.4.2.2"],
            Digest::Sha512 => &["SHA2-512", "SHA-512", "SHA512", "2.16.840.1.101.3.4.2.3"],
            Digest::Sha512_224 => &[
                "SHA2-512/224",
                "SHA-512/224",
                "SHA512-224",
                "2.16.840.1.101.3.4.2.5",
            ],
            Digest::Sha512_256 => &[
                "SHA2-512/256",
                "SHA-512/256",
                "SHA512-256",
                "2.16.840.1.101.3.4.2.6",
            ],
            Digest::Sha3_224 => &["SHA3-224", "2.16.840.1.101.3.4.2.7"],
            Digest::Sha3_256 => &["SHA3-256", "2.16.840.1.101.3.4.2.8"],
            Digest::Sha3_384 => &["SHA3-384", "2.16.840.1.101.3.4.2.9"],
            Digest::Sha3_512 => &["SHA3-512", "2.16.840.1.101.3.4.2.10"],
        }
    }

    /// Whether the digest is one of those RFC 8017 §A.2.3 allows inside RSASSA-PSS parameters
    /// (SHA-1 and SHA-2). OpenSSL 3.0 refuses to write PSS parameters for the others too.
    fn allowed_in_pss_params(self) -> bool {
        !matches!(
            self,
            Digest::Sha3_224 | Digest::Sha3_256 | Digest::Sha3_384 | Digest::Sha3_512
        )
    }

    /// The hash `AlgorithmIdentifier` with explicit NULL parameters, as OpenSSL writes it inside
    /// RSASSA-PSS parameters (RFC 4055 §2.1 allows either form; we match OpenSSL byte for byte).
    fn algorithm_id_with_null(self) -> Vec<u8> {
        algorithm_id(self.oid(), Some(&NULL))
    }
}

/// 1.3.14.3.2.26 (OIW secsig), contents octets.
const OID_SHA1: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];

/// Contents octets of 2.16.840.1.101.3.4.2.`number`, NIST's hashAlgs arc (CSOR).
const fn nist_hash_oid(number: u8) -> [u8; 9] {
    [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, number]
}

const OID_SHA256: [u8; 9] = nist_hash_oid(1);
const OID_SHA384: [u8; 9] = nist_hash_oid(2);
const OID_SHA512: [u8; 9] = nist_hash_oid(3);
const OID_SHA224: [u8; 9] = nist_hash_oid(4);
const OID_SHA512_224: [u8; 9] = nist_hash_oid(5);
const OID_SHA512_256: [u8; 9] = nist_hash_oid(6);
const OID_SHA3_224: [u8; 9] = nist_hash_oid(7);
const OID_SHA3_256: [u8; 9] = nist_hash_oid(8);
const OID_SHA3_384: [u8; 9] = nist_hash_oid(9);
const OID_SHA3_512: [u8; 9] = nist_hash_oid(10);

/// `SEQUENCE { SEQUENCE { OID, NULL }, OCTET STRING }` headers for a NIST hash, built at compile
/// time so that `digest_info_prefix` can hand out `'static` bytes; all hashes here are shorter
/// than 128 bytes, so every length is one octet.
const fn nist_digest_info_prefix(oid: [u8; 9], size: u8) -> [u8; 19] {
    let mut prefix = [0; 19];
    // DigestInfo length: AlgorithmIdentifier (2 + 2 + 9 + 2) + OCTET STRING (2 + size).
    let header = [0x30, 0x11 + size, 0x30, 0x0d, 0x06, 0x09];
    let mut i = 0;
    while i < header.len() {
        prefix[i] = header[i];
        i += 1;
    }
    let mut j = 0;
    while j < oid.len() {
        prefix[header.len() + j] = oid[j];
        j += 1;
    }
    prefix[15] = 0x05; // NULL parameters
    prefix[16] = 0x00;
    prefix[17] = 0x04; // OCTET STRING header for the hash
    prefix[18] = size;
    prefix
}

const DIGEST_INFO_PREFIX_SHA224: [u8; 19] = nist_digest_info_prefix(OID_SHA224, 28);
const DIGEST_INFO_PREFIX_SHA256: [u8; 19] = nist_digest_info_prefix(OID_SHA256, 32);
const DIGEST_INFO_PREFIX_SHA384: [u8; 19] = nist_digest_info_prefix(OID_SHA384, 48);
const DIGEST_INFO_PREFIX_SHA512: [u8; 19] = nist_digest_info_prefix(OID_SHA512, 64);
const DIGEST_INFO_PREFIX_SHA512_224: [u8; 19] = nist_digest_info_prefix(OID_SHA512_224, 28);
const DIGEST_INFO_PREFIX_SHA512_256: [u8; 19] = nist_digest_info_prefix(OID_SHA512_256, 32);
const DIGEST_INFO_PREFIX_SHA3_224: [u8; 19] = nist_digest_info_prefix(OID_SHA3_224, 28);
const DIGEST_INFO_PREFIX_SHA3_256: [u8; 19] = nist_digest_info_prefix(OID_SHA3_256, 32);
const DIGEST_INFO_PREFIX_SHA3_384: [u8; 19] = nist_digest_info_prefix(OID_SHA3_384, 48);
const DIGEST_INFO_PREFIX_SHA3_512: [u8; 19] = nist_digest_info_prefix(OID_SHA3_512, 64);

// ---------------------------------------------------------------------------------------------
// Curves
// ---------------------------------------------------------------------------------------------

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
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "for tests and key-creation code")
    )]
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

    fn oid(self) -> &'static [u8] {
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

// ---------------------------------------------------------------------------------------------
// ECDSA signature encoding
// ---------------------------------------------------------------------------------------------

/// Turns `CKM_ECDSA` output `r || s` into the DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER,
/// s INTEGER }` that OpenSSL callers expect. PKCS#11 ("EC signatures") makes the halves equal
/// big-endian strings of at most the order's length, so any even length is accepted.
pub(crate) fn ecdsa_signature_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || raw.len() % 2 == 1 {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut content = unsigned_integer(r);
    content.extend_from_slice(&unsigned_integer(s));
    Some(der_element(TAG_SEQUENCE, &content))
}

/// Turns a DER `ECDSA-Sig-Value` back into `r || s`, each half left-padded to `field_bytes`
/// (the form `C_Verify` with `CKM_ECDSA` wants). Negative or non-minimal INTEGERs, values wider
/// than `field_bytes` and trailing bytes give `None`.
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "used by the verify path; tested now")
)]
pub(crate) fn der_to_ecdsa_signature(der: &[u8], field_bytes: usize) -> Option<Vec<u8>> {
    if field_bytes == 0 || field_bytes > MAX_FIELD_BYTES {
        return None;
    }
    let mut fields = DerReader::new(parse_single(der, TAG_SEQUENCE)?);
    let r = parse_unsigned_integer(fields.read_expected(TAG_INTEGER)?)?;
    let s = parse_unsigned_integer(fields.read_expected(TAG_INTEGER)?)?;
    if !fields.is_empty() || r.len() > field_bytes || s.len() > field_bytes {
        return None;
    }
    let mut raw = vec![0; 2 * field_bytes];
    raw[field_bytes - r.len()..field_bytes].copy_from_slice(r);
    raw[2 * field_bytes - s.len()..].copy_from_slice(s);
    Some(raw)
}

/// Bound on `field_bytes` so that a bogus caller value cannot ask for a huge allocation; far
/// above any curve in use (P-521: 66).
const MAX_FIELD_BYTES: usize = 1024;

// ---------------------------------------------------------------------------------------------
// Signature AlgorithmIdentifiers
// ---------------------------------------------------------------------------------------------

/// 1.2.840.113549.1.1: the PKCS#1 arc; the algorithm number follows.
const PKCS1_ARC: [u8; 8] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01];
/// 2.16.840.1.101.3.4.3: NIST signature algorithms (sigAlgs); the algorithm number follows.
const NIST_SIG_ARC: [u8; 8] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x03];
/// 1.2.840.10045.4.1: ecdsa-with-SHA1 (RFC 3279 §2.2.3), contents octets.
const OID_ECDSA_WITH_SHA1: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x01];
/// 1.2.840.10045.4.3: the ecdsa-with-SHA2 arc (RFC 5758 §3.2); the algorithm number follows.
const ECDSA_SHA2_ARC: [u8; 7] = [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03];
/// id-RSASSA-PSS (PKCS#1 10) and id-mgf1 (PKCS#1 8).
const PKCS1_RSASSA_PSS: u8 = 10;
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

// ---------------------------------------------------------------------------------------------
// SubjectPublicKeyInfo
// ---------------------------------------------------------------------------------------------

/// rsaEncryption (PKCS#1 1).
const PKCS1_RSA_ENCRYPTION: u8 = 1;
/// id-ecPublicKey, 1.2.840.10045.2.1 (RFC 5480 §2.1.1), contents octets.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
const TAG_NULL: u8 = 0x05;
const TAG_BIT_STRING: u8 = 0x03;

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

/// OID contents for `arc.number`, for the single-byte final arcs used here.
/// DER body of a PEM-URI key file: `SEQUENCE { desc VisibleString, uri UTF8String }`.
pub(crate) fn pem_uri_body(description: &str, uri: &str) -> Vec<u8> {
    let mut content = der_element(TAG_VISIBLE_STRING, description.as_bytes());
    content.extend(der_element(TAG_UTF8_STRING, uri.as_bytes()));
    der_element(TAG_SEQUENCE, &content)
}

/// Description and URI of a PEM-URI body; `None` unless it is exactly that DER structure with a
/// printable-ASCII description and a UTF-8 URI.
pub(crate) fn parse_pem_uri_body(der: &[u8]) -> Option<(&str, &str)> {
    let mut fields = DerReader::new(parse_single(der, TAG_SEQUENCE)?);
    let description = fields.read_expected(TAG_VISIBLE_STRING)?;
    let uri = fields.read_expected(TAG_UTF8_STRING)?;
    if !fields.is_empty() || !description.iter().all(|b| (0x20..0x7f).contains(b)) {
        return None;
    }
    Some((
        std::str::from_utf8(description).ok()?,
        std::str::from_utf8(uri).ok()?,
    ))
}

fn arc_oid(arc: &[u8], number: u8) -> Vec<u8> {
    let mut oid = arc.to_vec();
    oid.push(number);
    oid
}

/// `AlgorithmIdentifier ::= SEQUENCE { algorithm OBJECT IDENTIFIER, parameters ANY OPTIONAL }`
/// where `parameters` is already DER.
fn algorithm_id(oid: &[u8], parameters: Option<&[u8]>) -> Vec<u8> {
    let mut content = der_element(TAG_OID, oid);
    if let Some(parameters) = parameters {
        content.extend_from_slice(parameters);
    }
    der_element(TAG_SEQUENCE, &content)
}

// ---------------------------------------------------------------------------------------------
// Minimal DER reader and writer (X.690 §8, §10)
// ---------------------------------------------------------------------------------------------

const TAG_INTEGER: u8 = 0x02;
const TAG_OCTET_STRING: u8 = 0x04;
const TAG_OID: u8 = 0x06;
const TAG_PRINTABLE_STRING: u8 = 0x13;
const TAG_UTF8_STRING: u8 = 0x0c;
const TAG_VISIBLE_STRING: u8 = 0x1a;
const TAG_SEQUENCE: u8 = 0x30;
/// `[0]`, `[1]`, `[2]` EXPLICIT: context-specific, constructed.
const CONTEXT_0: u8 = 0xa0;
const CONTEXT_1: u8 = 0xa1;
const CONTEXT_2: u8 = 0xa2;
/// A complete DER NULL.
const NULL: [u8; 2] = [0x05, 0x00];

/// One DER element: identifier octet and contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Element<'a> {
    tag: u8,
    content: &'a [u8],
}

/// Reads consecutive DER elements from a byte string, refusing anything BER allows but DER
/// does not.
struct DerReader<'a> {
    rest: &'a [u8],
}

impl<'a> DerReader<'a> {
    fn new(input: &'a [u8]) -> DerReader<'a> {
        DerReader { rest: input }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, or `None` if the input is exhausted or malformed (in which case the
    /// reader is left where it was).
    fn read(&mut self) -> Option<Element<'a>> {
        let (&tag, after_tag) = self.rest.split_first()?;
        // High tag numbers (0x1f) span several octets; nothing we parse uses them.
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, after_first) = after_tag.split_first()?;
        let (len, after_len) = if first < 0x80 {
            (usize::from(first), after_first)
        } else {
            // 0x80 is BER's indefinite length; more octets than a usize holds cannot fit in
            // memory anyway (and 0xff, reserved by X.690, lands here as 127 octets).
            let count = usize::from(first & 0x7f);
            if count == 0 || count > size_of::<usize>() {
                return None;
            }
            let (len_octets, after_len) = after_first.split_at_checked(count)?;
            // DER: the fewest octets, so no leading zero and no long form below 128.
            if len_octets.first() == Some(&0) {
                return None;
            }
            let len = len_octets
                .iter()
                .fold(0usize, |acc, &octet| (acc << 8) | usize::from(octet));
            if len < 0x80 {
                return None;
            }
            (len, after_len)
        };
        let (content, rest) = after_len.split_at_checked(len)?;
        self.rest = rest;
        Some(Element { tag, content })
    }

    /// Contents of the next element if it has tag `tag`.
    fn read_expected(&mut self, tag: u8) -> Option<&'a [u8]> {
        let element = self.read()?;
        (element.tag == tag).then_some(element.content)
    }
}

/// The single element that makes up all of `input`; trailing bytes give `None`.
fn parse_single_element(input: &[u8]) -> Option<Element<'_>> {
    let mut reader = DerReader::new(input);
    let element = reader.read()?;
    reader.is_empty().then_some(element)
}

/// Contents of the single element with tag `tag` that makes up all of `input`.
fn parse_single(input: &[u8], tag: u8) -> Option<&[u8]> {
    parse_single_element(input)
        .filter(|element| element.tag == tag)
        .map(|element| element.content)
}

/// Magnitude of a non-negative, minimally encoded INTEGER's contents, without leading zeros
/// (empty for zero).
fn parse_unsigned_integer(content: &[u8]) -> Option<&[u8]> {
    match content {
        [] => None,
        [first, ..] if first & 0x80 != 0 => None,
        [0, second, ..] if second & 0x80 == 0 => None,
        [0, rest @ ..] => Some(rest),
        _ => Some(content),
    }
}

/// Length of an element with `content_len` content octets.
const fn der_element_len(content_len: usize) -> usize {
    let mut len_octets = 1;
    if content_len >= 0x80 {
        let mut remaining = content_len;
        while remaining > 0 {
            len_octets += 1;
            remaining >>= 8;
        }
    }
    1 + len_octets + content_len
}

/// A complete element: tag, minimal length, contents.
fn der_element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(der_element_len(content.len()));
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets = len.to_be_bytes();
        let significant = &octets[(len.leading_zeros() / 8) as usize..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// A complete INTEGER element for the unsigned big-endian `magnitude`: leading zeros dropped,
/// one 0x00 added when the top bit would otherwise make it negative.
fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let first_nonzero = magnitude
        .iter()
        .position(|&octet| octet != 0)
        .unwrap_or(magnitude.len());
    let significant = &magnitude[first_nonzero..];
    let mut content = Vec::with_capacity(significant.len() + 1);
    if significant.first().is_none_or(|&octet| octet & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(significant);
    der_element(TAG_INTEGER, &content)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hex string to bytes; test vectors are kept as printed by `xxd -p` / pkcs11-tool.
    fn hex(text: &str) -> Vec<u8> {
        let digits: Vec<u8> = text.bytes().filter(|c| !c.is_ascii_whitespace()).collect();
        assert_eq!(digits.len() % 2, 0, "odd hex length");
        digits
            .chunks(2)
            .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    /// Runs `parse` on every truncation and every single-byte corruption of `input`: it must
    /// never panic, and a strict prefix must never parse (DER is not self-delimiting otherwise).
    fn assert_robust<T>(input: &[u8], parse: impl Fn(&[u8]) -> Option<T>) {
        for cut in 0..input.len() {
            assert!(
                parse(&input[..cut]).is_none(),
                "prefix of {cut} bytes parsed"
            );
        }
        let mut longer = input.to_vec();
        longer.push(0);
        assert!(parse(&longer).is_none(), "trailing byte accepted");
        for index in 0..input.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut corrupt = input.to_vec();
                corrupt[index] ^= flip;
                let _ = parse(&corrupt);
            }
        }
    }

    // --- Digest -------------------------------------------------------------------------------

    #[test]
    fn digest_from_name_accepts_openssl_names_and_oids() {
        // From `openssl list -digest-algorithms` (OpenSSL 3.0.19, default provider).
        let cases = [
            ("SHA1", Digest::Sha1),
            ("sha1", Digest::Sha1),
            ("SHA-1", Digest::Sha1),
            ("ssl3-sha1", Digest::Sha1),
            ("1.3.14.3.2.26", Digest::Sha1),
            ("SHA224", Digest::Sha224),
            ("SHA2-224", Digest::Sha224),
            ("sha-224", Digest::Sha224),
            ("2.16.840.1.101.3.4.2.4", Digest::Sha224),
            ("SHA256", Digest::Sha256),
            ("SHA2-256", Digest::Sha256),
            ("SHA-256", Digest::Sha256),
            ("sha256", Digest::Sha256),
            ("2.16.840.1.101.3.4.2.1", Digest::Sha256),
            ("SHA384", Digest::Sha384),
            ("sha2-384", Digest::Sha384),
            ("2.16.840.1.101.3.4.2.2", Digest::Sha384),
            ("SHA512", Digest::Sha512),
            ("SHA-512", Digest::Sha512),
            ("2.16.840.1.101.3.4.2.3", Digest::Sha512),
            ("SHA512-224", Digest::Sha512_224),
            ("SHA2-512/224", Digest::Sha512_224),
            ("sha-512/224", Digest::Sha512_224),
            ("2.16.840.1.101.3.4.2.5", Digest::Sha512_224),
            ("SHA512-256", Digest::Sha512_256),
            ("SHA2-512/256", Digest::Sha512_256),
            ("SHA-512/256", Digest::Sha512_256),
            ("2.16.840.1.101.3.4.2.6", Digest::Sha512_256),
            ("SHA3-224", Digest::Sha3_224),
            ("sha3-256", Digest::Sha3_256),
            ("SHA3-384", Digest::Sha3_384),
            ("SHA3-512", Digest::Sha3_512),
            ("2.16.840.1.101.3.4.2.7", Digest::Sha3_224),
            ("2.16.840.1.101.3.4.2.8", Digest::Sha3_256),
            ("2.16.840.1.101.3.4.2.9", Digest::Sha3_384),
            ("2.16.840.1.101.3.4.2.10", Digest::Sha3_512),
        ];
        for (name, digest) in cases {
            assert_eq!(Digest::from_name(name), Some(digest), "{name}");
        }
        for bad in [
            "",
            "MD5",
            "SHA",
            "SHA-2",
            "SHA3",
            "SHAKE256",
            "SHA256 ",
            "2.16.840.1.101.3.4.2.11",
        ] {
            assert_eq!(Digest::from_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn digest_names_sizes_and_size_guess() {
        let expected = [
            (Digest::Sha1, "SHA1", 20),
            (Digest::Sha224, "SHA2-224", 28),
            (Digest::Sha256, "SHA2-256", 32),
            (Digest::Sha384, "SHA2-384", 48),
            (Digest::Sha512, "SHA2-512", 64),
            (Digest::Sha512_224, "SHA2-512/224", 28),
            (Digest::Sha512_256, "SHA2-512/256", 32),
            (Digest::Sha3_224, "SHA3-224", 28),
            (Digest::Sha3_256, "SHA3-256", 32),
            (Digest::Sha3_384, "SHA3-384", 48),
            (Digest::Sha3_512, "SHA3-512", 64),
        ];
        assert_eq!(expected.len(), Digest::ALL.len());
        for (digest, name, size) in expected {
            assert_eq!(digest.name(), name);
            assert_eq!(digest.size(), size);
            assert_eq!(Digest::from_name(digest.name()), Some(digest));
        }
        assert_eq!(Digest::from_size(20), Some(Digest::Sha1));
        assert_eq!(Digest::from_size(28), Some(Digest::Sha224));
        assert_eq!(Digest::from_size(32), Some(Digest::Sha256));
        assert_eq!(Digest::from_size(48), Some(Digest::Sha384));
        assert_eq!(Digest::from_size(64), Some(Digest::Sha512));
        for len in [0, 16, 19, 21, 36, 65, usize::MAX] {
            assert_eq!(Digest::from_size(len), None);
        }
    }

    #[test]
    fn digest_info_prefixes_match_openssl() {
        // Obtained with OpenSSL 3.0.19: `openssl dgst -<md> -sign rsa.pem -out sig msg`, then
        // `openssl pkeyutl -verifyrecover -pubin -inkey rsapub.pem -in sig
        // -pkeyopt rsa_padding_mode:pkcs1` and stripping the trailing hash
        // (`openssl dgst -<md> -binary msg`) from the recovered DigestInfo.
        let expected = [
            (Digest::Sha1, "3021300906052b0e03021a05000414"),
            (Digest::Sha224, "302d300d06096086480165030402040500041c"),
            (Digest::Sha256, "3031300d060960864801650304020105000420"),
            (Digest::Sha384, "3041300d060960864801650304020205000430"),
            (Digest::Sha512, "3051300d060960864801650304020305000440"),
            (Digest::Sha512_224, "302d300d06096086480165030402050500041c"),
            (Digest::Sha512_256, "3031300d060960864801650304020605000420"),
            (Digest::Sha3_224, "302d300d06096086480165030402070500041c"),
            (Digest::Sha3_256, "3031300d060960864801650304020805000420"),
            (Digest::Sha3_384, "3041300d060960864801650304020905000430"),
            (Digest::Sha3_512, "3051300d060960864801650304020a05000440"),
        ];
        for (digest, prefix) in expected {
            assert_eq!(digest.digest_info_prefix(), hex(prefix), "{digest:?}");
            // The static table agrees with the DER writer: DigestInfo over a zero hash.
            let digest_info = der_element(
                TAG_SEQUENCE,
                &[
                    digest.algorithm_id_with_null(),
                    der_element(TAG_OCTET_STRING, &vec![0; digest.size()]),
                ]
                .concat(),
            );
            assert_eq!(
                &digest_info[..digest_info.len() - digest.size()],
                digest.digest_info_prefix()
            );
        }
    }

    // --- Curve --------------------------------------------------------------------------------

    /// CKA_EC_PARAMS / CKA_EC_POINT as SoftHSM 2.6.1 stored them on this machine.
    ///
    /// P-256, P-384, P-521 and the PrintableString Ed25519 key: `pkcs11-tool --module
    /// /usr/lib/softhsm/libsofthsm2.so --login --pin 1234 --keypairgen --key-type
    /// EC:prime256v1` (secp384r1, secp521r1, edwards25519), read back with `pkcs11-tool -O`.
    /// OpenSC 0.23's pkcs11-tool knows no `edwards448`, so the Ed448 keys and the OID-form
    /// Ed25519 key came from `C_GenerateKeyPair(CKM_EC_EDWARDS_KEY_PAIR_GEN)` through cryptoki
    /// with the CKA_EC_PARAMS shown, read back with `C_GetAttributeValue`. SoftHSM keeps
    /// CKA_EC_PARAMS exactly as given and always wraps CKA_EC_POINT in an OCTET STRING.
    const SOFTHSM_KEYS: [(Curve, &str, &str); 7] = [
        (
            Curve::P256,
            "06082a8648ce3d030107",
            "044104723c1fd36f6bad62f983c24a1f941a673cf55f168f35b98f1d9c1a6be2c351f29189e7c90e5b\
             c5af66ab37c5180ff1a67e63bfcd4c4250c6e8665cbc42f041ae",
        ),
        (
            Curve::P384,
            "06052b81040022",
            "0461042f9f01b6c72da049f7e26928005c47e1cf7220b0a99224bf6ffdccf1cde05bbc5c4048fdb3e8\
             b067f551c44c7506e94e7f084a6f51950fd72d5072407fced6d4c4b413b215edf9f03d8559fd6aa2e3\
             40a9f8afd6a0e380644babed2caa41fc0c",
        ),
        (
            Curve::P521,
            "06052b81040023",
            "048185040097d03bd13b880be60eb9f3c0501279e654808f58dce11086c2bb4417c6279d0e56082d8a\
             55866f8996bd6d85e694e2dfe82d1f01d188d1724999173c1f9250a01601ae390e0029948cb001ebf7\
             c44ec7674d4f1cdc80131305e39c0588d860b604d03f4d18f017fe92670708df38555fa797777e4304\
             c4aab475068588663e6eea6db9",
        ),
        (
            // PrintableString "edwards25519" (pkcs11-tool EC:edwards25519)
            Curve::Ed25519,
            "130c656477617264733235353139",
            "0420b20e33d62f725641bca656b4e512ef6f19b6ea2d9c27cfddb7ec12d3a0814315",
        ),
        (
            // OID 1.3.101.112
            Curve::Ed25519,
            "06032b6570",
            "0420fa964d55a6363f545d34baa1537b626d446461b503265c4eceeee3a88a7fe7dd",
        ),
        (
            // PrintableString "edwards448"
            Curve::Ed448,
            "130a65647761726473343438",
            "04395b41db6f296787c8b9df3cf82da701da245607df52258a9d65a65dadd7c42ee0c0a33d02e39129\
             9f7bad50a57962e97b6134762d255ed75780",
        ),
        (
            // OID 1.3.101.113
            Curve::Ed448,
            "06032b6571",
            "0439f26231a8b1cb5472286bb437d52027189e5a4afab7f8bb0ad55191d76133d06294af22ad53a821\
             64a926104e306ccf07fdc143ab8dee0dd500",
        ),
    ];

    #[test]
    fn curve_from_softhsm_ec_params() {
        for (curve, params, _) in SOFTHSM_KEYS {
            assert_eq!(Curve::from_ec_params(&hex(params)), Some(curve), "{params}");
            assert_robust(&hex(params), Curve::from_ec_params);
        }
    }

    #[test]
    fn curve_from_other_ec_params() {
        // GnuPG's Ed25519 OID 1.3.6.1.4.1.11591.15.1 (SoftHSM refuses to generate with it, but
        // older tokens report it).
        assert_eq!(
            Curve::from_ec_params(&hex("06092b06010401da470f01")),
            Some(Curve::Ed25519)
        );
        assert_eq!(
            Curve::from_ec_params(b"\x13\x0cEDWARDS25519"),
            Some(Curve::Ed25519)
        );
        assert_eq!(
            Curve::from_ec_params(b"\x13\x07Ed25519"),
            Some(Curve::Ed25519)
        );
        assert_eq!(Curve::from_ec_params(b"\x13\x05Ed448"), Some(Curve::Ed448));
        let unsupported = [
            "06082a8648ce3d030101",         // prime192v1
            "06052b8104000a",               // secp256k1
            "06032b656e",                   // X25519
            "06032b656f",                   // X448
            "130a63757276653235353139",     // "curve25519" (Montgomery)
            "0c0c656477617264733235353139", // UTF8String "edwards25519": not what PKCS#11 says
            "0500",                         // implicitlyCA
            "3000",                         // explicit parameters (truncated, but a SEQUENCE)
            "",
            "06",
            "0600",
            "06092a8648ce3d030107",     // length longer than the contents
            "06082a8648ce3d03010700",   // trailing byte
            "0681082a8648ce3d030107",   // long-form length below 128
            "06802a8648ce3d0301070000", // indefinite length
            "1f06082a8648ce3d030107",   // high tag number form
        ];
        for params in unsupported {
            assert_eq!(Curve::from_ec_params(&hex(params)), None, "{params}");
        }
    }

    #[test]
    fn curve_from_ec_params_refuses_explicit_parameters() {
        // `openssl ecparam -name prime256v1 -param_enc explicit -outform DER` (OpenSSL 3.0.19).
        let explicit = hex(
            "3081f7020101302c06072a8648ce3d0101022100ffffffff00000001000000000000000000000000\
             ffffffffffffffffffffffff305b0420ffffffff00000001000000000000000000000000ffffffff\
             fffffffffffffffc04205ac635d8aa3a93e7b3ebbd55769886bc651d06b0cc53b0f63bce3c3e27d2\
             604b031500c49d360886e704936a6678e1139d26b7819f7e900441046b17d1f2e12c4247f8bce6e5\
             63a440f277037d812deb33a0f4a13945d898c2964fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce3357\
             6b315ececbb6406837bf51f5022100ffffffff00000000ffffffffffffffffbce6faada7179e84f3\
             b9cac2fc632551020101",
        );
        assert_eq!(
            parse_single(&explicit, TAG_SEQUENCE).map(<[u8]>::len),
            Some(247)
        );
        assert_eq!(Curve::from_ec_params(&explicit), None);
    }

    #[test]
    fn curve_properties() {
        // bits/security bits: what `openssl pkey -text_pub` and EVP_PKEY_get_bits /
        // get_security_bits report for these key types in OpenSSL 3.0.
        let expected = [
            (
                Curve::P256,
                "prime256v1",
                256,
                128,
                32,
                72,
                false,
                "06082a8648ce3d030107",
            ),
            (
                Curve::P384,
                "secp384r1",
                384,
                192,
                48,
                104,
                false,
                "06052b81040022",
            ),
            (
                Curve::P521,
                "secp521r1",
                521,
                256,
                66,
                139,
                false,
                "06052b81040023",
            ),
            (
                Curve::Ed25519,
                "ED25519",
                253,
                128,
                32,
                64,
                true,
                "06032b6570",
            ),
            (Curve::Ed448, "ED448", 456, 224, 57, 114, true, "06032b6571"),
        ];
        assert_eq!(expected.len(), Curve::ALL.len());
        for (curve, group, bits, security, field, max_sig, edwards, params) in expected {
            assert_eq!(curve.group_name(), group);
            assert_eq!(curve.bits(), bits);
            assert_eq!(curve.security_bits(), security);
            assert_eq!(curve.field_bytes(), field);
            assert_eq!(curve.max_signature_size(), max_sig);
            assert_eq!(curve.is_edwards(), edwards);
            assert_eq!(curve.ec_params(), hex(params));
            assert_eq!(Curve::from_ec_params(&curve.ec_params()), Some(curve));
            assert_eq!(Curve::from_group_name(group), Some(curve));
        }
        // The ECDSA maximum is the DER of r = s = all-ones at the widest INTEGER.
        for curve in [Curve::P256, Curve::P384] {
            let widest = vec![0xff; 2 * curve.field_bytes()];
            let der = ecdsa_signature_to_der(&widest).unwrap();
            assert_eq!(der.len(), curve.max_signature_size());
        }
        let mut widest_p521 = vec![0xff; 132];
        widest_p521[0] = 0x01;
        widest_p521[66] = 0x01;
        assert_eq!(
            ecdsa_signature_to_der(&widest_p521).unwrap().len(),
            Curve::P521.max_signature_size()
        );
        for (name, curve) in [
            ("P-256", Curve::P256),
            ("SECP256R1", Curve::P256),
            ("p-384", Curve::P384),
            ("P-521", Curve::P521),
            ("ed25519", Curve::Ed25519),
            ("Ed448", Curve::Ed448),
        ] {
            assert_eq!(Curve::from_group_name(name), Some(curve));
        }
        assert_eq!(Curve::from_group_name("secp256k1"), None);
        assert_eq!(Curve::from_group_name("X25519"), None);
    }

    // --- CKA_EC_POINT -------------------------------------------------------------------------

    #[test]
    fn unwrap_softhsm_ec_points() {
        for (curve, _, point) in SOFTHSM_KEYS {
            let attr = hex(point);
            let raw = unwrap_ec_point(&attr, curve).unwrap();
            let header = if curve == Curve::P521 { 3 } else { 2 };
            assert_eq!(raw, attr[header..], "{curve:?}");
            let expected_len = if curve.is_edwards() {
                curve.field_bytes()
            } else {
                1 + 2 * curve.field_bytes()
            };
            assert_eq!(raw.len(), expected_len);
            // Tokens that store the bare point.
            assert_eq!(unwrap_ec_point(&raw, curve), Some(raw.clone()));
            // Wrong curve for the length.
            for other in Curve::ALL.into_iter().filter(|&other| other != curve) {
                assert_eq!(
                    unwrap_ec_point(&attr, other),
                    None,
                    "{curve:?} as {other:?}"
                );
            }
            assert_robust(&attr, |input| {
                unwrap_ec_point(input, curve).filter(|p| *p == raw)
            });
        }
    }

    #[test]
    fn unwrap_compressed_and_malformed_points() {
        // Compressed P-256 point, wrapped and bare.
        let mut compressed = vec![0x03];
        compressed.extend_from_slice(&[0x11; 32]);
        let wrapped = der_element(TAG_OCTET_STRING, &compressed);
        assert_eq!(
            unwrap_ec_point(&wrapped, Curve::P256),
            Some(compressed.clone())
        );
        assert_eq!(
            unwrap_ec_point(&compressed, Curve::P256),
            Some(compressed.clone())
        );
        assert_eq!(unwrap_ec_point(&compressed, Curve::P384), None);
        compressed.push(0x11);
        assert_eq!(unwrap_ec_point(&compressed, Curve::P256), None);
        // Wrong point-format byte, hybrid form (0x06) included.
        for format in [0x00, 0x05, 0x06, 0x07] {
            let mut point = vec![format];
            point.extend_from_slice(&[0x11; 64]);
            assert_eq!(unwrap_ec_point(&point, Curve::P256), None);
            let wrapped = der_element(TAG_OCTET_STRING, &point);
            assert_eq!(unwrap_ec_point(&wrapped, Curve::P256), None);
        }
        // BIT STRING instead of OCTET STRING, and an empty attribute.
        let mut bit_string = vec![0x03, 0x21, 0x00];
        bit_string.extend_from_slice(&[0x22; 32]);
        assert_eq!(unwrap_ec_point(&bit_string, Curve::Ed25519), None);
        assert_eq!(unwrap_ec_point(&[], Curve::Ed25519), None);
        assert_eq!(unwrap_ec_point(&[0x04, 0x00], Curve::Ed25519), None);
        // P-521 with a non-minimal long length (0x82 0x00 0x85).
        let (_, _, p521) = SOFTHSM_KEYS[2];
        let p521 = hex(p521);
        let mut overlong = vec![0x04, 0x82, 0x00, 0x85];
        overlong.extend_from_slice(&p521[3..]);
        assert_eq!(unwrap_ec_point(&overlong, Curve::P521), None);
    }

    // --- ECDSA-Sig-Value ----------------------------------------------------------------------

    /// (field bytes, r || s, DER). The first three are real signatures: `openssl dgst -sha256
    /// -sign <P-256|P-384|P-521>.pem`, r and s read with `openssl asn1parse -inform DER`. The
    /// next two are raw `C_Sign(CKM_ECDSA)` output from SoftHSM 2.6.1 with the P-256 and P-521
    /// keys of `SOFTHSM_KEYS` over SHA-256("abc"); `openssl pkeyutl -verify` with the token's
    /// public key accepted the DER forms (the P-521 r has a 0x00 first byte to strip and then
    /// needs a 0x00 pad). The rest are made by hand to reach edge cases, checked with `openssl
    /// asn1parse`.
    const ECDSA_VECTORS: [(usize, &str, &str); 10] = [
        (
            32,
            "e4328dfbfc9805773976a92c5c1207132027b1cc5343cb11078b4b7a5a4c8f27\
             9e15fbf60f15133ef115faa243a30bcc8de47a32b4d7d1ade812c766e451e269",
            "3046022100e4328dfbfc9805773976a92c5c1207132027b1cc5343cb11078b4b7a5a4c8f27022100\
             9e15fbf60f15133ef115faa243a30bcc8de47a32b4d7d1ade812c766e451e269",
        ),
        (
            48,
            "b6da81eecc7c577ea7a50e48cbbbf7be5bcd328b2334c42a90a4e85471df834d7e4c74fdf33538ec\
             cb0ee1dc40bcc720\
             2c3fb8e6993f755d9f51bfc335c23cda7c0f9aac63d7a7fa37a7fcbd2ccf972504e0652d83c38b20\
             c82eda8a06fc2caa",
            "3065023100b6da81eecc7c577ea7a50e48cbbbf7be5bcd328b2334c42a90a4e85471df834d7e4c74\
             fdf33538eccb0ee1dc40bcc72002302c3fb8e6993f755d9f51bfc335c23cda7c0f9aac63d7a7fa37\
             a7fcbd2ccf972504e0652d83c38b20c82eda8a06fc2caa",
        ),
        (
            66,
            "01eeb73362e6868177f6abdf7808a0457f84a4ad321a560b7906c888281a1721052e83e66ead6eb2\
             dc0d5059d0c2db36c7ede8a66bd8f7bb6fa0773f228ac17514bc\
             01402d07f2c3eda1c70c9c0759ac4494ba55f4e00dd5ccb97e25313109b952c04b6ecec40684641f\
             db5c54507f9ba9a222232afaa9f8d1f0e62c6994664c524fe35d",
            "308188024201eeb73362e6868177f6abdf7808a0457f84a4ad321a560b7906c888281a1721052e83\
             e66ead6eb2dc0d5059d0c2db36c7ede8a66bd8f7bb6fa0773f228ac17514bc024201402d07f2c3ed\
             a1c70c9c0759ac4494ba55f4e00dd5ccb97e25313109b952c04b6ecec40684641fdb5c54507f9ba9\
             a222232afaa9f8d1f0e62c6994664c524fe35d",
        ),
        (
            32,
            "7ca36178e48f9219015fbf85b4e4cb1f3f769a0dd0339aa2ee34d02abe056deb\
             38f790ebf6e5e51528a1862c8683fd30b0104a85400b820568e7e8dd07b9aac8",
            "304402207ca36178e48f9219015fbf85b4e4cb1f3f769a0dd0339aa2ee34d02abe056deb0220\
             38f790ebf6e5e51528a1862c8683fd30b0104a85400b820568e7e8dd07b9aac8",
        ),
        (
            66,
            "00e99a987142373edc374784dc9382736884caf7028084072cc94965c2189efbefa02dbd5d1c0fe7\
             8021323e391aed37228f3cfd638534b4036d44d0948099ef3fd7\
             017ffceb170c10a97578a416f0750c8c3b8aa260aa9493e370378a0e50b8fea03ad294ca261dda70\
             2ef078ee037f70cdc9df2e4481833a4adb63fd0cda724d25d45c",
            "308188024200e99a987142373edc374784dc9382736884caf7028084072cc94965c2189efbefa02d\
             bd5d1c0fe78021323e391aed37228f3cfd638534b4036d44d0948099ef3fd70242017ffceb170c10\
             a97578a416f0750c8c3b8aa260aa9493e370378a0e50b8fea03ad294ca261dda702ef078ee037f70\
             cdc9df2e4481833a4adb63fd0cda724d25d45c",
        ),
        // r with leading zero bytes and then the top bit set, s likewise after one zero byte.
        (
            32,
            "00000000000000000000000000000000000000000000000000000000000000ff\
             0080000000000000000000000000000000000000000000000000000000000001",
            "3026020200ff02200080000000000000000000000000000000000000000000000000000000000001",
        ),
        // r = 0, s = 1.
        (4, "00000000 00000001", "3006020100020101"),
        // r has a zero first byte and a 0x7f second: stays unpadded; s gets a pad.
        (4, "007fffff 80000000", "300c02037fffff02050080000000"),
        // All-ones halves: the widest P-256 encoding.
        (
            32,
            "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\
             ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
            "3046022100ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff022100\
             ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
        ),
        // One-byte halves.
        (1, "7f80", "300702017f02020080"),
    ];

    #[test]
    fn ecdsa_signature_known_answers() {
        for (field, raw, der) in ECDSA_VECTORS {
            let (raw, der) = (hex(raw), hex(der));
            assert_eq!(raw.len(), 2 * field);
            assert_eq!(
                ecdsa_signature_to_der(&raw),
                Some(der.clone()),
                "{raw:02x?}"
            );
            assert_eq!(der_to_ecdsa_signature(&der, field), Some(raw.clone()));
            // A wider field pads; a narrower one refuses values that do not fit.
            let wider = der_to_ecdsa_signature(&der, field + 3).unwrap();
            assert_eq!(wider[3..field + 3], raw[..field]);
            assert_eq!(wider[field + 6..], raw[field..]);
            assert_robust(&der, |input| der_to_ecdsa_signature(input, field));
        }
    }

    #[test]
    fn ecdsa_raw_input_must_have_two_equal_halves() {
        assert_eq!(ecdsa_signature_to_der(&[]), None);
        assert_eq!(ecdsa_signature_to_der(&[1, 2, 3]), None);
        assert_eq!(ecdsa_signature_to_der(&[0; 65]), None);
        assert_eq!(
            ecdsa_signature_to_der(&[0, 0]),
            Some(hex("3006020100020100"))
        );
    }

    #[test]
    fn ecdsa_der_rejects_malformed() {
        let bad = [
            "",
            "3000",                   // no INTEGERs
            "3003020101",             // only r
            "3006020101020101 00",    // trailing byte after the SEQUENCE
            "3009020101020101020101", // a third INTEGER
            "3006020101040101",       // s is an OCTET STRING
            "3106020101020101",       // SET, not SEQUENCE
            "30050200020101",         // empty INTEGER
            "3006020180020101",       // negative r
            "300702020001020101",     // r = 0x0001: non-minimal
            "3007020101020200 7f",    // s = 0x007f: non-minimal
            "30800201010201010000",   // indefinite length
            "308106020101020101",     // long form for a length below 128
            "30820006020101020101",   // long form with a leading zero octet
            "3007020101020101",       // SEQUENCE length runs past the end
            "30060201010202 01",      // INTEGER length runs past the end
            "30ff",                   // reserved length octet
            "3089ffffffffffffffffff", // length wider than usize
        ];
        for der in bad {
            assert_eq!(der_to_ecdsa_signature(&hex(der), 32), None, "{der}");
        }
        // r wider than the field.
        let too_wide = hex("300702020100020101");
        assert_eq!(der_to_ecdsa_signature(&too_wide, 1), None);
        assert_eq!(der_to_ecdsa_signature(&too_wide, 2), Some(hex("01000001")));
        assert_eq!(der_to_ecdsa_signature(&hex("3006020101020101"), 0), None);
        assert_eq!(
            der_to_ecdsa_signature(&hex("3006020101020101"), usize::MAX),
            None
        );
    }

    // --- AlgorithmIdentifiers -----------------------------------------------------------------

    // All expected AlgorithmIdentifiers below are the signatureAlgorithm field of certificates
    // made with OpenSSL 3.0.19: `openssl req -new -x509 -key <key> -subj /CN=x -<md> -outform
    // DER [-sigopt ...]`, the second element of the Certificate SEQUENCE cut out by offsets
    // from `openssl asn1parse -inform DER` (it equals the copy inside TBSCertificate).

    #[test]
    fn rsa_pkcs1_algorithm_ids_match_openssl() {
        let expected = [
            (Digest::Sha1, "300d06092a864886f70d0101050500"),
            (Digest::Sha224, "300d06092a864886f70d01010e0500"),
            (Digest::Sha256, "300d06092a864886f70d01010b0500"),
            (Digest::Sha384, "300d06092a864886f70d01010c0500"),
            (Digest::Sha512, "300d06092a864886f70d01010d0500"),
            (Digest::Sha512_224, "300d06092a864886f70d01010f0500"),
            (Digest::Sha512_256, "300d06092a864886f70d0101100500"),
            (Digest::Sha3_224, "300d060960864801650304030d0500"),
            (Digest::Sha3_256, "300d060960864801650304030e0500"),
            (Digest::Sha3_384, "300d060960864801650304030f0500"),
            (Digest::Sha3_512, "300d06096086480165030403100500"),
        ];
        assert_eq!(expected.len(), Digest::ALL.len());
        for (digest, aid) in expected {
            assert_eq!(rsa_pkcs1_algorithm_id(digest), Some(hex(aid)), "{digest:?}");
        }
    }

    #[test]
    fn rsa_pss_algorithm_ids_match_openssl() {
        // `-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:<n> [-sigopt rsa_mgf1_md:<md>]`
        // with a 2048-bit key.
        let expected = [
            // sha1, mgf1 sha1, salt 20: every field DEFAULT, empty parameters.
            (
                Digest::Sha1,
                Digest::Sha1,
                20,
                "300d06092a864886f70d01010a3000",
            ),
            // sha1 with OpenSSL's default salt (the maximum, 234 for 2048 bits).
            (
                Digest::Sha1,
                Digest::Sha1,
                234,
                "301306092a864886f70d01010a3006a204020200ea",
            ),
            (
                Digest::Sha256,
                Digest::Sha256,
                32,
                "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a\
                 864886f70d010108300d06096086480165030402010500a203020120",
            ),
            (
                Digest::Sha256,
                Digest::Sha256,
                222,
                "304206092a864886f70d01010a3035a00f300d06096086480165030402010500a11c301a06092a\
                 864886f70d010108300d06096086480165030402010500a204020200de",
            ),
            (
                Digest::Sha256,
                Digest::Sha256,
                0,
                "304106092a864886f70d01010a3034a00f300d06096086480165030402010500a11c301a06092a\
                 864886f70d010108300d06096086480165030402010500a203020100",
            ),
            (
                Digest::Sha256,
                Digest::Sha256,
                20,
                "303c06092a864886f70d01010a302fa00f300d06096086480165030402010500a11c301a06092a\
                 864886f70d010108300d06096086480165030402010500",
            ),
            (
                Digest::Sha256,
                Digest::Sha256,
                200,
                "304206092a864886f70d01010a3035a00f300d06096086480165030402010500a11c301a06092a\
                 864886f70d010108300d06096086480165030402010500a204020200c8",
            ),
            (
                Digest::Sha256,
                Digest::Sha1,
                32,
                "302306092a864886f70d01010a3016a00f300d06096086480165030402010500a203020120",
            ),
            (
                Digest::Sha1,
                Digest::Sha256,
                20,
                "302b06092a864886f70d01010a301ea11c301a06092a864886f70d010108300d060960864801650304\
                 02010500",
            ),
            (
                Digest::Sha224,
                Digest::Sha224,
                28,
                "304106092a864886f70d01010a3034a00f300d06096086480165030402040500a11c301a06092a\
                 864886f70d010108300d06096086480165030402040500a20302011c",
            ),
            (
                Digest::Sha384,
                Digest::Sha384,
                48,
                "304106092a864886f70d01010a3034a00f300d06096086480165030402020500a11c301a06092a\
                 864886f70d010108300d06096086480165030402020500a203020130",
            ),
            (
                Digest::Sha512,
                Digest::Sha512,
                64,
                "304106092a864886f70d01010a3034a00f300d06096086480165030402030500a11c301a06092a\
                 864886f70d010108300d06096086480165030402030500a203020140",
            ),
            (
                Digest::Sha512_256,
                Digest::Sha512_256,
                32,
                "304106092a864886f70d01010a3034a00f300d06096086480165030402060500a11c301a06092a\
                 864886f70d010108300d06096086480165030402060500a203020120",
            ),
        ];
        for (digest, mgf1, salt, aid) in expected {
            assert_eq!(
                rsa_pss_algorithm_id(digest, mgf1, salt),
                Some(hex(aid)),
                "{digest:?} {mgf1:?} {salt}"
            );
        }
        // OpenSSL 3.0 fails `openssl req -sha3-256 -sigopt rsa_padding_mode:pss` with
        // "rsa_generate_signature_aid:internal error"; RFC 8017 lists no SHA-3 for PSS.
        for sha3 in [
            Digest::Sha3_224,
            Digest::Sha3_256,
            Digest::Sha3_384,
            Digest::Sha3_512,
        ] {
            assert_eq!(rsa_pss_algorithm_id(sha3, sha3, 32), None);
            assert_eq!(rsa_pss_algorithm_id(Digest::Sha256, sha3, 32), None);
            assert_eq!(rsa_pss_algorithm_id(sha3, Digest::Sha256, 32), None);
        }
        // A salt length too large for one length octet still encodes minimally.
        let huge = rsa_pss_algorithm_id(Digest::Sha1, Digest::Sha1, 0x0102_0304).unwrap();
        assert_eq!(huge, hex("301506092a864886f70d01010a3008a206020401020304"));
    }

    #[test]
    fn ecdsa_algorithm_ids_match_openssl() {
        let expected = [
            (Digest::Sha1, Some("300906072a8648ce3d0401")),
            (Digest::Sha224, Some("300a06082a8648ce3d040301")),
            (Digest::Sha256, Some("300a06082a8648ce3d040302")),
            (Digest::Sha384, Some("300a06082a8648ce3d040303")),
            (Digest::Sha512, Some("300a06082a8648ce3d040304")),
            // OpenSSL 3.0 refuses `openssl req -sha512-224` with an EC key: no OID exists.
            (Digest::Sha512_224, None),
            (Digest::Sha512_256, None),
            (Digest::Sha3_224, Some("300b0609608648016503040309")),
            (Digest::Sha3_256, Some("300b060960864801650304030a")),
            (Digest::Sha3_384, Some("300b060960864801650304030b")),
            (Digest::Sha3_512, Some("300b060960864801650304030c")),
        ];
        assert_eq!(expected.len(), Digest::ALL.len());
        for (digest, aid) in expected {
            assert_eq!(ecdsa_algorithm_id(digest), aid.map(hex), "{digest:?}");
        }
    }

    #[test]
    fn eddsa_algorithm_ids_match_openssl() {
        // `openssl req -new -x509 -key ed25519.pem` / `ed448.pem` (no -<md>).
        assert_eq!(
            eddsa_algorithm_id(Curve::Ed25519),
            Some(hex("300506032b6570"))
        );
        assert_eq!(
            eddsa_algorithm_id(Curve::Ed448),
            Some(hex("300506032b6571"))
        );
        for curve in [Curve::P256, Curve::P384, Curve::P521] {
            assert_eq!(eddsa_algorithm_id(curve), None);
        }
    }

    #[test]
    fn algorithm_ids_are_well_formed_der() {
        let mut all = Vec::new();
        for digest in Digest::ALL {
            all.extend(rsa_pkcs1_algorithm_id(digest));
            all.extend(ecdsa_algorithm_id(digest));
            for mgf1 in Digest::ALL {
                all.extend(rsa_pss_algorithm_id(digest, mgf1, digest.size()));
            }
        }
        all.extend(Curve::ALL.into_iter().filter_map(eddsa_algorithm_id));
        for aid in all {
            let mut fields = DerReader::new(parse_single(&aid, TAG_SEQUENCE).unwrap());
            fields.read_expected(TAG_OID).unwrap();
            if let Some(parameters) = fields.read() {
                assert!(parameters.tag == 0x05 || parameters.tag == TAG_SEQUENCE);
            }
            assert!(fields.is_empty());
        }
    }

    // --- DER primitives -----------------------------------------------------------------------

    #[test]
    fn der_lengths_round_trip_at_the_boundaries() {
        for len in [
            0usize, 1, 0x7f, 0x80, 0xff, 0x100, 0xffff, 0x1_0000, 0x10_0000,
        ] {
            let content = vec![0xab; len];
            let element = der_element(TAG_OCTET_STRING, &content);
            assert_eq!(element.len(), der_element_len(len));
            assert_eq!(parse_single(&element, TAG_OCTET_STRING), Some(&content[..]));
        }
        assert_eq!(
            der_element(TAG_OCTET_STRING, &[0; 0x80])[..3],
            [0x04, 0x81, 0x80]
        );
        assert_eq!(
            der_element(TAG_OCTET_STRING, &[0; 0x100])[..4],
            [0x04, 0x82, 0x01, 0x00]
        );
    }

    #[test]
    fn der_reader_rejects_non_der_lengths() {
        let bad = [
            "", "04",       // no length
            "0401",     // contents missing
            "0480",     // indefinite
            "048100",   // long form for 0
            "04817f",   // long form for 127
            "0482007f", // leading zero length octet
            "04820080", // leading zero length octet, value >= 128
            "0481",     // length octets missing
            "048201",   // length octets truncated
            "04ff",     // reserved
        ];
        for input in bad {
            assert_eq!(DerReader::new(&hex(input)).read(), None, "{input}");
        }
        assert_eq!(parse_single(&hex("04000400"), TAG_OCTET_STRING), None);
        assert_eq!(parse_single(&hex("0400"), TAG_OCTET_STRING), Some(&[][..]));
        assert_eq!(parse_single(&hex("0400"), TAG_INTEGER), None);
    }

    #[test]
    fn unsigned_integers() {
        let cases = [
            ("", "020100"),
            ("00", "020100"),
            ("0000", "020100"),
            ("01", "020101"),
            ("7f", "02017f"),
            ("80", "02020080"),
            ("0080", "02020080"),
            ("000102", "02020102"),
            ("ff00", "020300ff00"),
        ];
        for (magnitude, der) in cases {
            assert_eq!(unsigned_integer(&hex(magnitude)), hex(der), "{magnitude}");
            let der = hex(der);
            let content = parse_single(&der, TAG_INTEGER).unwrap();
            let parsed = parse_unsigned_integer(content).unwrap();
            let stripped: Vec<u8> = hex(magnitude).into_iter().skip_while(|&b| b == 0).collect();
            assert_eq!(parsed, stripped);
        }
        for content in ["", "80", "ff", "0000", "007f"] {
            assert_eq!(parse_unsigned_integer(&hex(content)), None, "{content}");
        }
    }
}
