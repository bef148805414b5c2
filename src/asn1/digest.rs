//! The digests the provider signs with: names and OIDs as OpenSSL 3 knows them, output sizes,
//! and the PKCS#1 v1.5 `DigestInfo` prefixes (RFC 8017 §9.2) that `CKM_RSA_PKCS` input starts
//! with.

use super::algid::algorithm_id;
use super::der::NULL;

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
    pub(super) fn allowed_in_pss_params(self) -> bool {
        !matches!(
            self,
            Digest::Sha3_224 | Digest::Sha3_256 | Digest::Sha3_384 | Digest::Sha3_512
        )
    }

    /// The hash `AlgorithmIdentifier` with explicit NULL parameters, as OpenSSL writes it inside
    /// RSASSA-PSS parameters (RFC 4055 §2.1 allows either form; we match OpenSSL byte for byte).
    pub(super) fn algorithm_id_with_null(self) -> Vec<u8> {
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
