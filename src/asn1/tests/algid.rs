//! Signature `AlgorithmIdentifier`s, compared with what OpenSSL writes.

use super::hex;
use crate::asn1::der::{DerReader, TAG_OID, TAG_SEQUENCE, parse_single};
use crate::asn1::{
    Curve, Digest, ecdsa_algorithm_id, eddsa_algorithm_id, rsa_pkcs1_algorithm_id,
    rsa_pss_algorithm_id,
};

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
