//! `r || s` to DER `ECDSA-Sig-Value` and back.

use super::{assert_robust, hex};
use crate::asn1::{der_to_ecdsa_signature, ecdsa_signature_to_der};

/// (field bytes, r || s, DER). The first three are real signatures: `openssl dgst -sha256
/// -sign <P-256|P-384|P-521>.pem`, r and s read with `openssl asn1parse -inform DER`. The
/// next two are raw `C_Sign(CKM_ECDSA)` output from SoftHSM 2.6.1 with the P-256 and P-521
/// keys of `SOFTHSM_KEYS` (tests/curve.rs) over SHA-256("abc"); `openssl pkeyutl -verify` with
/// the token's public key accepted the DER forms (the P-521 r has a 0x00 first byte to strip
/// and then needs a 0x00 pad). The rest are made by hand to reach edge cases, checked with
/// `openssl asn1parse`.
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
