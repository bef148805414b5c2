//! A minimal, strict DER reader and writer (X.690 §8, §10) for the few structures this module
//! builds and parses. The reader refuses what BER allows and DER does not (indefinite and
//! non-minimal lengths, high tag numbers) and trailing bytes; malformed input gives `None`,
//! never a panic. One relaxation exists for files others write by hand
//! ([`DerReader::with_long_lengths`]): lengths in the long form where the short one would do.

pub(super) const TAG_INTEGER: u8 = 0x02;
pub(super) const TAG_BIT_STRING: u8 = 0x03;
pub(super) const TAG_OCTET_STRING: u8 = 0x04;
pub(super) const TAG_NULL: u8 = 0x05;
pub(super) const TAG_OID: u8 = 0x06;
pub(super) const TAG_PRINTABLE_STRING: u8 = 0x13;
pub(super) const TAG_UTF8_STRING: u8 = 0x0c;
pub(super) const TAG_VISIBLE_STRING: u8 = 0x1a;
pub(super) const TAG_SEQUENCE: u8 = 0x30;
/// `[0]`, `[1]`, `[2]` EXPLICIT: context-specific, constructed.
pub(super) const CONTEXT_0: u8 = 0xa0;
pub(super) const CONTEXT_1: u8 = 0xa1;
pub(super) const CONTEXT_2: u8 = 0xa2;
/// A complete DER NULL.
pub(super) const NULL: [u8; 2] = [0x05, 0x00];

/// One DER element: identifier octet and contents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Element<'a> {
    pub(super) tag: u8,
    pub(super) content: &'a [u8],
}

/// Reads consecutive DER elements from a byte string, refusing anything BER allows but DER
/// does not.
pub(super) struct DerReader<'a> {
    rest: &'a [u8],
    /// Accept non-minimal (long-form) lengths, as BER and OpenSSL's decoder do.
    long_lengths: bool,
}

impl<'a> DerReader<'a> {
    pub(super) fn new(input: &'a [u8]) -> DerReader<'a> {
        DerReader {
            rest: input,
            long_lengths: false,
        }
    }

    /// A reader that also accepts lengths in a longer form than needed (`82 00 19` for 25):
    /// definite lengths only, everything else as strict as [`DerReader::new`]. For PEM-URI
    /// key files, which latchset/pkcs11-provider's tests and users' scripts build by hand that
    /// way and OpenSSL reads.
    pub(super) fn with_long_lengths(input: &'a [u8]) -> DerReader<'a> {
        DerReader {
            rest: input,
            long_lengths: true,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// The next element, or `None` if the input is exhausted or malformed (in which case the
    /// reader is left where it was).
    pub(super) fn read(&mut self) -> Option<Element<'a>> {
        let (&tag, after_tag) = self.rest.split_first()?;
        // High tag numbers (0x1f) span several octets; nothing we parse uses them.
        if tag & 0x1f == 0x1f {
            return None;
        }
        let (&first, after_first) = after_tag.split_first()?;
        let (len, after_len) = if first < 0x80 {
            (usize::from(first), after_first)
        } else {
            // 0x80 is BER's indefinite length; more octets than a usize holds cannot fit in
            // memory anyway (and 0xff, reserved by X.690, lands here as 127 octets).
            let count = usize::from(first & 0x7f);
            if count == 0 || count > size_of::<usize>() {
                return None;
            }
            let (len_octets, after_len) = after_first.split_at_checked(count)?;
            // DER: the fewest octets, so no leading zero and no long form below 128.
            if len_octets.first() == Some(&0) && !self.long_lengths {
                return None;
            }
            let len = len_octets
                .iter()
                .fold(0usize, |acc, &octet| (acc << 8) | usize::from(octet));
            if len < 0x80 && !self.long_lengths {
                return None;
            }
            (len, after_len)
        };
        let (content, rest) = after_len.split_at_checked(len)?;
        self.rest = rest;
        Some(Element { tag, content })
    }

    /// Contents of the next element if it has tag `tag`.
    pub(super) fn read_expected(&mut self, tag: u8) -> Option<&'a [u8]> {
        let element = self.read()?;
        (element.tag == tag).then_some(element.content)
    }
}

/// The single element that makes up all of `input`; trailing bytes give `None`.
pub(super) fn parse_single_element(input: &[u8]) -> Option<Element<'_>> {
    let mut reader = DerReader::new(input);
    let element = reader.read()?;
    reader.is_empty().then_some(element)
}

/// Contents of the single element with tag `tag` that makes up all of `input`.
pub(super) fn parse_single(input: &[u8], tag: u8) -> Option<&[u8]> {
    parse_single_element(input)
        .filter(|element| element.tag == tag)
        .map(|element| element.content)
}

/// Magnitude of a non-negative, minimally encoded INTEGER's contents, without leading zeros
/// (empty for zero).
pub(super) fn parse_unsigned_integer(content: &[u8]) -> Option<&[u8]> {
    match content {
        [] => None,
        [first, ..] if first & 0x80 != 0 => None,
        [0, second, ..] if second & 0x80 == 0 => None,
        [0, rest @ ..] => Some(rest),
        _ => Some(content),
    }
}

/// Length of an element with `content_len` content octets.
pub(super) const fn der_element_len(content_len: usize) -> usize {
    let mut len_octets = 1;
    if content_len >= 0x80 {
        let mut remaining = content_len;
        while remaining > 0 {
            len_octets += 1;
            remaining >>= 8;
        }
    }
    1 + len_octets + content_len
}

/// A complete element: tag, minimal length, contents.
pub(super) fn der_element(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(der_element_len(content.len()));
    out.push(tag);
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let octets = len.to_be_bytes();
        let significant = &octets[(len.leading_zeros() / 8) as usize..];
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
    out.extend_from_slice(content);
    out
}

/// A complete INTEGER element for the unsigned big-endian `magnitude`: leading zeros dropped,
/// one 0x00 added when the top bit would otherwise make it negative.
pub(super) fn unsigned_integer(magnitude: &[u8]) -> Vec<u8> {
    let first_nonzero = magnitude
        .iter()
        .position(|&octet| octet != 0)
        .unwrap_or(magnitude.len());
    let significant = &magnitude[first_nonzero..];
    let mut content = Vec::with_capacity(significant.len() + 1);
    if significant.first().is_none_or(|&octet| octet & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(significant);
    der_element(TAG_INTEGER, &content)
}
