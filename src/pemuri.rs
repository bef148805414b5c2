//! PEM-URI key files: a PEM block `-----BEGIN PKCS#11 PROVIDER URI-----` whose DER body is
//! `SEQUENCE { desc VisibleString, uri UTF8String }` with the description
//! `PKCS#11 Provider URI v1.0` (the format latchset/pkcs11-provider writes). Such a file names a
//! token key without containing it, so programs that only read PEM key files (nginx, HAProxy,
//! Python `ssl`, curl) use token keys unchanged. A PIN is never written into one.

use crate::asn1;
use crate::error::{Error, Result};

/// The description string of version 1.0 files.
pub(crate) const DESCRIPTION: &str = "PKCS#11 Provider URI v1.0";

const BEGIN: &str = "-----BEGIN PKCS#11 PROVIDER URI-----";
const END: &str = "-----END PKCS#11 PROVIDER URI-----";

/// Where the first PEM-URI BEGIN line of `text` starts.
fn begin_position(text: &[u8]) -> Option<usize> {
    text.windows(BEGIN.len())
        .position(|window| window == BEGIN.as_bytes())
}

/// Whether `text` has a PEM-URI block's BEGIN line.
pub(crate) fn has_begin_line(text: &[u8]) -> bool {
    begin_position(text).is_some()
}

/// Whether `line` is a PEM-URI block's END line (with or without its line break).
pub(crate) fn is_end_line(line: &[u8]) -> bool {
    line.trim_ascii_end() == END.as_bytes()
}

/// The DER body of the first PEM-URI block of `input` and the `pkcs11:` URI in it; `Ok(None)`
/// when there is no such block, an error when there is one but it is malformed.
pub(crate) fn der_body(input: &[u8]) -> Result<Option<(Vec<u8>, String)>> {
    let Some(start) = begin_position(input) else {
        return Ok(None);
    };
    let body_start = start + BEGIN.len();
    let body_len = input[body_start..]
        .windows(END.len())
        .position(|window| window == END.as_bytes())
        .ok_or_else(|| garbled("no END line"))?;
    let body = std::str::from_utf8(&input[body_start..body_start + body_len])
        .map_err(|_| garbled("body is not base64 text"))?;
    let der = base64_decode(body).ok_or_else(|| garbled("body is not valid base64"))?;
    let (description, uri) = asn1::parse_pem_uri_body(&der)
        .ok_or_else(|| garbled("body is not a SEQUENCE { VisibleString, UTF8String }"))?;
    let uri = checked_uri(description, uri)?;
    Ok(Some((der, uri)))
}

/// The URI in the first PEM-URI block of `input` (see [`der_body`]).
#[cfg(test)]
fn decode(input: &[u8]) -> Result<Option<String>> {
    Ok(der_body(input)?.map(|(_, uri)| uri))
}

/// The URI in a PEM-URI block's DER body (what OpenSSL's own PEM reader hands on after taking
/// the armour off); `Ok(None)` when `der` is some other DER structure.
pub(crate) fn decode_der(der: &[u8]) -> Result<Option<String>> {
    match asn1::parse_pem_uri_body(der) {
        Some((description, uri)) if description.starts_with("PKCS#11 Provider URI") => {
            checked_uri(description, uri).map(Some)
        }
        _ => Ok(None),
    }
}

fn garbled(why: &str) -> Error {
    Error::Uri(format!("malformed PKCS#11 PROVIDER URI PEM block: {why}"))
}

fn checked_uri(description: &str, uri: &str) -> Result<String> {
    if description != DESCRIPTION {
        return Err(garbled(&format!(
            "unknown description '{description}' (expected '{DESCRIPTION}')"
        )));
    }
    if !uri.starts_with("pkcs11:") {
        return Err(garbled("the URI does not start with pkcs11:"));
    }
    Ok(uri.to_string())
}

/// The PEM-URI file text for `uri` (which must not carry a PIN).
pub(crate) fn encode(uri: &str) -> String {
    pem_block(
        "PKCS#11 PROVIDER URI",
        &asn1::pem_uri_body(DESCRIPTION, uri),
    )
}

/// RFC 7468 text: `der` in base64 lines of 64 characters between BEGIN and END lines.
pub(crate) fn pem_block(label: &str, der: &[u8]) -> String {
    let text = base64_encode(der);
    let mut out = String::with_capacity(text.len() + text.len() / 64 + 2 * label.len() + 40);
    out.push_str(&format!("-----BEGIN {label}-----\n"));
    for line in text.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Strict base64 (RFC 4648 §4) with white space ignored; `None` on any other character, bad
/// padding or a length that is not a multiple of four.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let symbols: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if symbols.len() % 4 != 0 {
        return None;
    }
    let mut out = Vec::with_capacity(symbols.len() / 4 * 3);
    let quads = symbols.chunks(4);
    let count = quads.len();
    for (index, quad) in quads.enumerate() {
        let padding = quad.iter().rev().take_while(|b| **b == b'=').count();
        if padding > 2 || (padding > 0 && index + 1 != count) {
            return None;
        }
        let mut n = 0u32;
        for (position, symbol) in quad.iter().enumerate() {
            let value = if position >= 4 - padding {
                0
            } else {
                ALPHABET.iter().position(|a| a == symbol)? as u32
            };
            n = (n << 6) | value;
        }
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..4 - padding]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let uri = "pkcs11:token=web;object=tls%20key;type=private;id=%01%02";
        let text = encode(uri);
        assert!(text.starts_with("-----BEGIN PKCS#11 PROVIDER URI-----\n"));
        assert_eq!(decode(text.as_bytes()).unwrap().as_deref(), Some(uri));
    }

    #[test]
    fn known_answer_matches_openssl_asn1parse_layout() {
        // `openssl asn1parse -genstr` style check: 30 len 1a 19 "PKCS#11 Provider URI v1.0"
        // 0c len "pkcs11:token=a"
        let der = asn1::pem_uri_body(DESCRIPTION, "pkcs11:token=a");
        assert_eq!(&der[..4], &[0x30, 0x2b, 0x1a, 0x19]);
        assert_eq!(&der[4..29], DESCRIPTION.as_bytes());
        assert_eq!(&der[29..31], &[0x0c, 0x0e]);
        assert_eq!(&der[31..], b"pkcs11:token=a");
    }

    /// latchset's tests build PEM-URI files by hand with every length as `82 xx xx`, which is
    /// BER, not DER; OpenSSL (and so latchset) reads them, and so must this provider.
    #[test]
    fn hand_built_files_with_long_form_lengths_decode() {
        let uri = "pkcs11:token=a;object=b";
        let mut content = vec![0x1a, 0x82, 0x00, DESCRIPTION.len() as u8];
        content.extend_from_slice(DESCRIPTION.as_bytes());
        content.extend([0x0c, 0x82, 0x00, uri.len() as u8]);
        content.extend_from_slice(uri.as_bytes());
        let mut der = vec![0x30, 0x82, 0x00, content.len() as u8];
        der.extend(content);
        let pem = format!("{BEGIN}\n{}\n{END}\n", base64_encode(&der));
        assert_eq!(decode(pem.as_bytes()).unwrap().as_deref(), Some(uri));
        assert_eq!(decode_der(&der).unwrap().as_deref(), Some(uri));
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (plain, coded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64_encode(plain.as_bytes()), coded);
            assert_eq!(base64_decode(coded).unwrap(), plain.as_bytes());
        }
        assert!(base64_decode("Zm9v\nYmFy").is_some());
        for bad in ["Zg=", "Zg=a", "Z===", "Zm9v!", "Zg==Zg=="] {
            assert!(base64_decode(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn other_pem_files_are_not_ours() {
        let key = b"-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n";
        assert!(decode(key).unwrap().is_none());
        // Some other DER structure reaching the DER-body step is not ours either.
        assert!(
            decode_der(&[0x30, 0x03, 0x02, 0x01, 0x05])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn end_lines_are_recognised_with_or_without_line_breaks() {
        assert!(is_end_line(b"-----END PKCS#11 PROVIDER URI-----\n"));
        assert!(is_end_line(b"-----END PKCS#11 PROVIDER URI-----\r\n"));
        assert!(is_end_line(b"-----END PKCS#11 PROVIDER URI-----"));
        assert!(!is_end_line(b"-----END PRIVATE KEY-----\n"));
    }

    #[test]
    fn garbled_blocks_are_errors() {
        let good = encode("pkcs11:token=a");
        let no_end = good.replace("-----END PKCS#11 PROVIDER URI-----", "");
        let bad_base64 = good.replacen("MC", "!!", 1);
        let wrong_desc = encode_with("PKCS#11 Provider URI v9.9", "pkcs11:token=a");
        let not_pkcs11 = encode_with(DESCRIPTION, "file:/etc/passwd");
        let not_der = format!("{BEGIN}\n{}\n{END}\n", base64_encode(b"hello world!"));
        for bad in [no_end, bad_base64, wrong_desc, not_pkcs11, not_der] {
            assert!(decode(bad.as_bytes()).is_err(), "{bad}");
        }
    }

    fn encode_with(description: &str, uri: &str) -> String {
        let der = asn1::pem_uri_body(description, uri);
        format!("{BEGIN}\n{}\n{END}\n", base64_encode(&der))
    }
}
