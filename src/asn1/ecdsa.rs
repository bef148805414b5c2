//! Conversion between the PKCS#11 `CKM_ECDSA` signature `r || s` and the DER `ECDSA-Sig-Value`
//! OpenSSL callers expect (RFC 5480 §2.2, SEC 1).

use super::der::{
    DerReader, TAG_INTEGER, TAG_SEQUENCE, der_element, parse_single, parse_unsigned_integer,
    unsigned_integer,
};

/// Turns `CKM_ECDSA` output `r || s` into the DER `ECDSA-Sig-Value ::= SEQUENCE { r INTEGER,
/// s INTEGER }` that OpenSSL callers expect. PKCS#11 ("EC signatures") makes the halves equal
/// big-endian strings of at most the order's length, so any even length is accepted.
pub(crate) fn ecdsa_signature_to_der(raw: &[u8]) -> Option<Vec<u8>> {
    if raw.is_empty() || raw.len() % 2 == 1 {
        return None;
    }
    let (r, s) = raw.split_at(raw.len() / 2);
    let mut content = unsigned_integer(r);
    content.extend_from_slice(&unsigned_integer(s));
    Some(der_element(TAG_SEQUENCE, &content))
}

/// Turns a DER `ECDSA-Sig-Value` back into `r || s`, each half left-padded to `field_bytes`
/// (the form `C_Verify` with `CKM_ECDSA` wants). Negative or non-minimal INTEGERs, values wider
/// than `field_bytes` and trailing bytes give `None`.
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "used by the verify path; tested now")
)]
pub(crate) fn der_to_ecdsa_signature(der: &[u8], field_bytes: usize) -> Option<Vec<u8>> {
    if field_bytes == 0 || field_bytes > MAX_FIELD_BYTES {
        return None;
    }
    let mut fields = DerReader::new(parse_single(der, TAG_SEQUENCE)?);
    let r = parse_unsigned_integer(fields.read_expected(TAG_INTEGER)?)?;
    let s = parse_unsigned_integer(fields.read_expected(TAG_INTEGER)?)?;
    if !fields.is_empty() || r.len() > field_bytes || s.len() > field_bytes {
        return None;
    }
    let mut raw = vec![0; 2 * field_bytes];
    raw[field_bytes - r.len()..field_bytes].copy_from_slice(r);
    raw[2 * field_bytes - s.len()..].copy_from_slice(s);
    Some(raw)
}

/// Bound on `field_bytes` so that a bogus caller value cannot ask for a huge allocation; far
/// above any curve in use (P-521: 66).
const MAX_FIELD_BYTES: usize = 1024;
