//! PEM and DER writing for the tests, independent of the provider, so that files the provider
//! reads are made by other code than its own: PEM-URI key files (DESIGN.md), plain PEM blocks.

use std::fmt::Write as _;

/// PEM label of a PEM-URI key file.
pub(crate) const PEM_URI_LABEL: &str = "PKCS#11 PROVIDER URI";
/// The description both providers write into the DER (DESIGN.md).
pub(crate) const PEM_URI_DESCRIPTION: &str = "PKCS#11 Provider URI v1.0";

pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_VISIBLE_STRING: u8 = 0x1a;
pub(crate) const TAG_UTF8_STRING: u8 = 0x0c;

/// One DER element (X.690: definite length, short form below 128, else minimal long form).
pub(crate) fn der_element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let significant: Vec<u8> = bytes.iter().copied().skip_while(|&b| b == 0).collect();
        out.push(0x80 | significant.len() as u8);
        out.extend(significant);
    }
    out.extend_from_slice(content);
    out
}

/// `SEQUENCE { desc VisibleString, uri UTF8String }`.
pub(crate) fn pem_uri_der(description: &str, uri: &str) -> Vec<u8> {
    let mut body = der_element(TAG_VISIBLE_STRING, description.as_bytes());
    body.extend(der_element(TAG_UTF8_STRING, uri.as_bytes()));
    der_element(TAG_SEQUENCE, &body)
}

/// RFC 4648 base64 with padding.
pub(crate) fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let group = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(
                    ALPHABET[(group >> (18 - 6 * i) & 0x3f) as usize],
                ));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// RFC 7468 PEM: base64 in 64-character lines between BEGIN and END lines.
pub(crate) fn pem(label: &str, der: &[u8]) -> String {
    let encoded = base64(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in encoded.as_bytes().chunks(64) {
        text.push_str(&String::from_utf8_lossy(line));
        text.push('\n');
    }
    let _ = writeln!(text, "-----END {label}-----");
    text
}

/// A PEM-URI key file naming `uri`, with the standard description.
pub(crate) fn pem_uri_file(uri: &str) -> String {
    pem(PEM_URI_LABEL, &pem_uri_der(PEM_URI_DESCRIPTION, uri))
}

/// The PEM-URI key file text for `uri` with `description`.
pub(crate) fn pem_uri_file_with(description: &str, uri: &str) -> String {
    pem(PEM_URI_LABEL, &pem_uri_der(description, uri))
}
