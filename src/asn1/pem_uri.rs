//! The DER body of a PEM-URI key file (`-----BEGIN PKCS#11 PROVIDER URI-----`): a description
//! and a `pkcs11:` URI, in the layout latchset/pkcs11-provider writes, so that key files made
//! by either provider load in the other. The armour and the URI itself are `crate::pemuri`'s.

use super::der::{DerReader, TAG_SEQUENCE, TAG_UTF8_STRING, TAG_VISIBLE_STRING, der_element};

/// DER body of a PEM-URI key file: `SEQUENCE { desc VisibleString, uri UTF8String }`.
pub(crate) fn pem_uri_body(description: &str, uri: &str) -> Vec<u8> {
    let mut content = der_element(TAG_VISIBLE_STRING, description.as_bytes());
    content.extend(der_element(TAG_UTF8_STRING, uri.as_bytes()));
    der_element(TAG_SEQUENCE, &content)
}

/// Description and URI of a PEM-URI body; `None` unless it is exactly that structure with a
/// printable-ASCII description and a UTF-8 URI. Lengths may be in a longer form than DER's
/// (latchset's tests write every length as `82 xx xx`, and OpenSSL reads that).
pub(crate) fn parse_pem_uri_body(der: &[u8]) -> Option<(&str, &str)> {
    let mut outer = DerReader::with_long_lengths(der);
    let body = outer.read_expected(TAG_SEQUENCE)?;
    if !outer.is_empty() {
        return None;
    }
    let mut fields = DerReader::with_long_lengths(body);
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
