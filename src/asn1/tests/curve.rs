//! `Curve` and the decoding of `CKA_EC_PARAMS` and `CKA_EC_POINT`.

use super::{assert_robust, hex};
use crate::asn1::der::{TAG_OCTET_STRING, TAG_SEQUENCE, der_element, parse_single};
use crate::asn1::{Curve, ecdsa_signature_to_der, unwrap_ec_point, unwrap_ec_point_short_length};

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

/// CKA_EC_POINT of a P-521 key generated on tpm2-pkcs11 1.9.1 (swtpm 0.7, `pkcs11-tool
/// --keypairgen --key-type EC:secp521r1`, read back with `pkcs11-tool -O`): the OCTET STRING's
/// length, 133, is written in one byte (`04 85`), which DER does not allow (`04 81 85`).
const TPM2_PKCS11_P521_POINT: &str = "0485040095c4021cc907840714442d7095c6927bb8a07d7a9c54e4619ce1\
     6780302411e9ca4ffda73e3859951f234ab3bb42d4a4e3af7b9d0090471ed1df2aabddddd55cbc01ede7e7057a\
     1e6cd142c1dcd2e3f61041863c5232e2b1c0c9baf8d38bf99570b8b885ab05b93388df453557f397495fd61c27\
     9d3d1b7793c84ab8427078bab24889";

#[test]
fn short_length_ec_point_only_with_the_quirk() {
    let attr = hex(TPM2_PKCS11_P521_POINT);
    assert_eq!(attr.len(), 2 + 133);
    // Not DER: refused without the quirk, for every curve.
    for curve in Curve::ALL {
        assert_eq!(unwrap_ec_point(&attr, curve), None, "{curve:?}");
    }
    let point = unwrap_ec_point_short_length(&attr, Curve::P521).unwrap();
    assert_eq!(point, attr[2..]);
    // The same point in DER: the quirk decoder leaves it to unwrap_ec_point.
    let der = der_element(TAG_OCTET_STRING, &point);
    assert_eq!(unwrap_ec_point(&der, Curve::P521), Some(point.clone()));
    assert_eq!(unwrap_ec_point_short_length(&der, Curve::P521), None);
    // Short lengths below 128 are DER already; a wrong length, curve or tag is refused.
    for curve in [Curve::P256, Curve::P384] {
        assert_eq!(unwrap_ec_point_short_length(&attr, curve), None);
    }
    let mut short = attr.clone();
    short.pop();
    assert_eq!(unwrap_ec_point_short_length(&short, Curve::P521), None);
    let mut long = attr.clone();
    long.push(0);
    assert_eq!(unwrap_ec_point_short_length(&long, Curve::P521), None);
    let mut bit_string = attr.clone();
    bit_string[0] = 0x03;
    assert_eq!(unwrap_ec_point_short_length(&bit_string, Curve::P521), None);
    let p256 = der_element(TAG_OCTET_STRING, &[&[0x04][..], &[0x11; 64]].concat());
    assert_eq!(unwrap_ec_point_short_length(&p256, Curve::P256), None);
    assert_robust(&attr, |input| {
        unwrap_ec_point_short_length(input, Curve::P521).filter(|p| *p == point)
    });
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
