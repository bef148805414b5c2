//! The DER reader and writer at their edges: length forms and INTEGER encoding.

use super::hex;
use crate::asn1::der::{
    DerReader, TAG_INTEGER, TAG_OCTET_STRING, der_element, der_element_len, parse_single,
    parse_unsigned_integer, unsigned_integer,
};

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
    // The relaxed reader takes long-form lengths, and nothing else BER allows.
    for (input, content) in [("048100", ""), ("0482000161", "61")] {
        let bytes = hex(input);
        let element = DerReader::with_long_lengths(&bytes).read();
        assert_eq!(
            element.map(|e| e.content),
            Some(&hex(content)[..]),
            "{input}"
        );
    }
    for input in ["0480", "04ff", "048201", "04817f"] {
        assert_eq!(
            DerReader::with_long_lengths(&hex(input)).read(),
            None,
            "{input}"
        );
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
