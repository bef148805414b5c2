//! `Digest`: names, sizes and the `DigestInfo` prefixes.

use super::hex;
use crate::asn1::Digest;
use crate::asn1::der::{TAG_OCTET_STRING, TAG_SEQUENCE, der_element};

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
