//! Unit tests of `crate::asn1`, one file per concern. Expected bytes come from OpenSSL 3.0.19
//! and SoftHSM 2.6.1, as the comment at each vector says; the helpers below are shared.

mod algid;
mod curve;
mod der;
mod digest;
mod ecdsa;

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
