//! The RFC 7512 parser: splits a `pkcs11:` URI into its path and query attributes,
//! percent-decodes and checks each value, and fills in a `Pkcs11Uri`. Input is bytes from a C
//! string (not necessarily UTF-8), at most 64 KiB; every failure is a `ParseError` with the
//! byte offset, never a panic.

use zeroize::{Zeroize, Zeroizing};

use super::{
    Attr, MAX_QUOTED, MAX_URI_LEN, ObjectType, ParseError, ParseErrorKind, Pkcs11Uri, SCHEME,
    Section, UriOptions, VENDOR_PREFIX, is_name_char,
};

impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI with the default options: an unknown path attribute (other
    /// than a vendor `x-*` one) is an error. `input` comes from a C string and need not be
    /// UTF-8; only percent-decoded text values are required to be.
    pub(crate) fn parse(input: &[u8]) -> Result<Pkcs11Uri, ParseError> {
        Pkcs11Uri::parse_with(input, UriOptions::default())
    }

    /// Parses a `pkcs11:` URI as [`Pkcs11Uri::parse`] does, with `options`.
    pub(crate) fn parse_with(input: &[u8], options: UriOptions) -> Result<Pkcs11Uri, ParseError> {
        if input.len() > MAX_URI_LEN {
            return Err(ParseError::new(ParseErrorKind::TooLong, MAX_URI_LEN, None));
        }
        let scheme_ok = input
            .get(..SCHEME.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME));
        if !scheme_ok {
            return Err(ParseError::new(ParseErrorKind::MissingScheme, 0, None));
        }

        // A repeated scheme ("pkcs11:pkcs11:token=web", a prefix pasted twice, which
        // latchset/pkcs11-provider's own tests produce) is read as one: what is meant is plain,
        // and nothing matches more than the URI without the repetition would.
        let mut body_start = SCHEME.len();
        while input
            .get(body_start..body_start + SCHEME.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME))
        {
            log::debug!("pkcs11 URI: repeated 'pkcs11:' scheme prefix skipped");
            body_start += SCHEME.len();
        }
        // The first '?' ends the path; later ones are ordinary query characters.
        let path_end = input[body_start..]
            .iter()
            .position(|&b| b == b'?')
            .map_or(input.len(), |p| body_start + p);

        let mut uri = Pkcs11Uri::default();
        uri.parse_section(input, body_start..path_end, Section::Path, options)?;
        if path_end < input.len() {
            uri.parse_section(input, path_end + 1..input.len(), Section::Query, options)?;
        }
        Ok(uri)
    }
    /// Parses the attributes of one section, `input[range]`.
    fn parse_section(
        &mut self,
        input: &[u8],
        range: std::ops::Range<usize>,
        section: Section,
        options: UriOptions,
    ) -> Result<(), ParseError> {
        let (start, end) = (range.start, range.end);
        let separator = match section {
            Section::Path => b';',
            Section::Query => b'&',
        };
        let mut component_start = start;
        for component in input[start..end].split(|&b| b == separator) {
            // Empty components ("pkcs11:a=b;;c=d", trailing ';') carry nothing; tolerate them.
            if !component.is_empty() {
                self.parse_attribute(component, component_start, section, options)?;
            }
            component_start += component.len() + 1;
        }
        Ok(())
    }

    /// Parses one `name=value` component that starts at byte `offset` of the input.
    fn parse_attribute(
        &mut self,
        component: &[u8],
        offset: usize,
        section: Section,
        options: UriOptions,
    ) -> Result<(), ParseError> {
        // No name is quoted here: without '=' the component could be a mistyped PIN.
        let Some(eq) = component.iter().position(|&b| b == b'=') else {
            return Err(ParseError::new(ParseErrorKind::MissingEquals, offset, None));
        };
        let name = &component[..eq];
        if name.is_empty() {
            return Err(ParseError::new(ParseErrorKind::EmptyName, offset, None));
        }
        if let Some(bad) = name.iter().position(|&b| !is_name_char(b)) {
            return Err(ParseError::new(ParseErrorKind::BadName, offset + bad, None));
        }
        // `pin-value` and `pin-source` belong in the query (RFC 7512 §2.3), but latchset's
        // provider and the URIs written for it also put them in the path; they select nothing,
        // so accepting them there cannot widen a match. Their value follows the query's rules.
        let pin_in_path = || {
            Attr::lookup(Section::Query, name).filter(|a| {
                section == Section::Path && matches!(a, Attr::PinValue | Attr::PinSource)
            })
        };
        let (attr, value_section) = match Attr::lookup(section, name) {
            Some(attr) => (Some(attr), section),
            None => match pin_in_path() {
                Some(attr) => (Some(attr), Section::Query),
                None => (None, section),
            },
        };
        let value = RawValue {
            bytes: &component[eq + 1..],
            offset: offset + eq + 1,
            section: value_section,
        };
        let Some(attr) = attr else {
            return refuse_or_skip_unknown(name, offset, &value, options);
        };
        let err = |kind| ParseError::new(kind, offset, Some(attr.name().to_owned()));
        let duplicate = || err(ParseErrorKind::Duplicate);

        match attr {
            Attr::Token => set_text(&mut self.token, attr, &value, duplicate)?,
            Attr::Manufacturer => set_text(&mut self.manufacturer, attr, &value, duplicate)?,
            Attr::Model => set_text(&mut self.model, attr, &value, duplicate)?,
            Attr::Serial => set_text(&mut self.serial, attr, &value, duplicate)?,
            Attr::SlotDescription => set_text(&mut self.slot_description, attr, &value, duplicate)?,
            Attr::SlotManufacturer => {
                set_text(&mut self.slot_manufacturer, attr, &value, duplicate)?
            }
            Attr::LibraryDescription => {
                set_text(&mut self.library_description, attr, &value, duplicate)?
            }
            Attr::LibraryManufacturer => {
                set_text(&mut self.library_manufacturer, attr, &value, duplicate)?
            }
            Attr::Object => set_text(&mut self.object, attr, &value, duplicate)?,
            Attr::ModuleName => set_text(&mut self.module_name, attr, &value, duplicate)?,
            Attr::ModulePath => set_text(&mut self.module_path, attr, &value, duplicate)?,
            Attr::PinSource => {
                if self.pin_value.is_some() {
                    return Err(err(ParseErrorKind::PinValueAndSource));
                }
                set_text(&mut self.pin_source, attr, &value, duplicate)?
            }
            Attr::PinValue => {
                if self.pin_value.is_some() {
                    return Err(duplicate());
                }
                if self.pin_source.is_some() {
                    return Err(err(ParseErrorKind::PinValueAndSource));
                }
                let pin = value.text().map_err(|e| e.with_attribute(attr.name()))?;
                self.pin_value = Some(Zeroizing::new(pin));
            }
            Attr::SlotId => {
                if self.slot_id.is_some() {
                    return Err(duplicate());
                }
                let slot = value.number().map_err(|e| e.with_attribute(attr.name()))?;
                self.slot_id = Some(slot);
            }
            Attr::LibraryVersion => {
                if self.library_version.is_some() {
                    return Err(duplicate());
                }
                let version = value.version().map_err(|e| e.with_attribute(attr.name()))?;
                self.library_version = Some(version);
            }
            Attr::Type => {
                if self.object_type.is_some() {
                    return Err(duplicate());
                }
                let bytes = value.bytes().map_err(|e| e.with_attribute(attr.name()))?;
                let object_type = ObjectType::from_bytes(&bytes).ok_or_else(|| {
                    ParseError::new(
                        ParseErrorKind::UnknownType(quoted(&bytes)),
                        value.offset,
                        Some(attr.name().to_owned()),
                    )
                })?;
                self.object_type = Some(object_type);
            }
            Attr::Id => {
                if self.id.is_some() {
                    return Err(duplicate());
                }
                let id = value.bytes().map_err(|e| e.with_attribute(attr.name()))?;
                self.id = Some(id);
            }
        }
        Ok(())
    }
}

/// An attribute `Attr::lookup` does not know in its section. Skipping one can make the URI
/// select another object (a misspelt `object` would leave the label unmatched), so unless
/// `options` says to ignore them, a path attribute is refused, and so is a path attribute
/// written in the query. Vendor attributes (`x-*`) and other unknown query attributes are
/// skipped, as RFC 7512 §2.3 lets a consumer do with attributes it does not support; their
/// value must still be well-formed.
fn refuse_or_skip_unknown(
    name: &[u8],
    offset: usize,
    value: &RawValue<'_>,
    options: UriOptions,
) -> Result<(), ParseError> {
    let attribute = quoted(name);
    if !options.ignore_unknown_path_attributes {
        let refused = match value.section {
            Section::Path if Attr::lookup(Section::Query, name).is_some() => {
                Some(ParseErrorKind::QueryAttributeInPath)
            }
            Section::Path if !name.starts_with(VENDOR_PREFIX) => {
                Some(ParseErrorKind::UnknownAttribute {
                    did_you_mean: Attr::lookup_ignoring_case(Section::Path, name).map(Attr::name),
                })
            }
            Section::Query if Attr::lookup(Section::Path, name).is_some() => {
                Some(ParseErrorKind::PathAttributeInQuery)
            }
            Section::Path | Section::Query => None,
        };
        if let Some(kind) = refused {
            return Err(ParseError::new(kind, offset, Some(attribute)));
        }
    }
    value
        .decode(None)
        .map_err(|e| e.with_attribute(attribute.clone()))?;
    log::debug!(
        "pkcs11 URI: ignoring unknown {} attribute '{attribute}'",
        value.section.name()
    );
    Ok(())
}

/// Stores a decoded text value into `field`, refusing a second occurrence.
fn set_text(
    field: &mut Option<String>,
    attr: Attr,
    value: &RawValue<'_>,
    duplicate: impl FnOnce() -> ParseError,
) -> Result<(), ParseError> {
    if field.is_some() {
        return Err(duplicate());
    }
    *field = Some(value.text().map_err(|e| e.with_attribute(attr.name()))?);
    Ok(())
}

/// Bytes shown in an error message (an attribute name, a rejected `type`): escaped and
/// cut short, so a message stays one readable line.
fn quoted(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(MAX_QUOTED)];
    shown.escape_ascii().to_string()
}

fn hex_digit(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// An attribute value as it appears in the input, not yet decoded.
struct RawValue<'a> {
    bytes: &'a [u8],
    /// Byte offset of `bytes` in the whole input, for error messages.
    offset: usize,
    section: Section,
}

impl RawValue<'_> {
    /// Checks the syntax and percent-decodes into `out` (or only checks, with `None`).
    /// Errors carry no attribute name; callers add it.
    fn decode(&self, mut out: Option<&mut Vec<u8>>) -> Result<(), ParseError> {
        let mut i = 0;
        while let Some(&b) = self.bytes.get(i) {
            let decoded = if b == b'%' {
                let high = self.bytes.get(i + 1).copied().and_then(hex_digit);
                let low = self.bytes.get(i + 2).copied().and_then(hex_digit);
                let (Some(high), Some(low)) = (high, low) else {
                    return Err(self.error(ParseErrorKind::BadPercentEscape, i));
                };
                i += 3;
                (high << 4) | low
            } else if self.section.allows_literal(b) {
                i += 1;
                b
            } else {
                return Err(self.error(ParseErrorKind::BadCharacter, i));
            };
            if let Some(out) = out.as_deref_mut() {
                out.push(decoded);
            }
        }
        Ok(())
    }

    /// The decoded bytes (for `id`, `type` and numbers).
    fn bytes(&self) -> Result<Vec<u8>, ParseError> {
        let mut out = Vec::with_capacity(self.bytes.len());
        self.decode(Some(&mut out))?;
        Ok(out)
    }

    /// The decoded value as text: UTF-8 without NUL (PKCS#11 labels and our C callers
    /// cannot carry an embedded NUL). Every intermediate buffer is wiped, since this also
    /// decodes the PIN.
    fn text(&self) -> Result<String, ParseError> {
        // Decoding never grows the value, so this buffer is never reallocated and no
        // unwiped copy of the PIN is left behind in freed memory.
        let mut buf = Zeroizing::new(Vec::with_capacity(self.bytes.len()));
        self.decode(Some(&mut buf))?;
        if let Some(nul) = buf.iter().position(|&b| b == 0) {
            return Err(self.error(ParseErrorKind::NulByte, self.raw_index(nul)));
        }
        match String::from_utf8(std::mem::take(&mut *buf)) {
            Ok(text) => Ok(text),
            Err(not_utf8) => {
                let bad = not_utf8.utf8_error().valid_up_to();
                not_utf8.into_bytes().zeroize();
                Err(self.error(ParseErrorKind::NotUtf8, self.raw_index(bad)))
            }
        }
    }

    /// A decimal `u64` (`slot-id`).
    fn number(&self) -> Result<u64, ParseError> {
        let digits = self.bytes()?;
        parse_decimal(&digits, u64::MAX).map_err(|kind| self.error(kind, 0))
    }

    /// `library-version`: "M" or "M.m", each part 0..=255 (CK_VERSION bytes).
    fn version(&self) -> Result<(u8, u8), ParseError> {
        let text = self.bytes()?;
        let mut parts = text.splitn(2, |&b| b == b'.');
        let major = parts.next().unwrap_or_default();
        let minor = parts.next();
        let part = |digits: &[u8]| {
            parse_decimal(digits, u64::from(u8::MAX))
                .ok()
                .and_then(|n| u8::try_from(n).ok())
                .ok_or_else(|| self.error(ParseErrorKind::BadVersion, 0))
        };
        let major = part(major)?;
        let minor = match minor {
            Some(minor) => part(minor)?,
            None => 0,
        };
        Ok((major, minor))
    }

    /// Maps an index into the decoded value back to an offset in the input.
    fn raw_index(&self, decoded_index: usize) -> usize {
        let mut raw = 0;
        for _ in 0..decoded_index {
            raw += if self.bytes.get(raw) == Some(&b'%') {
                3
            } else {
                1
            };
        }
        raw
    }

    fn error(&self, kind: ParseErrorKind, index: usize) -> ParseError {
        ParseError::new(kind, self.offset + index, None)
    }
}

/// `1*DIGIT` no larger than `max`.
fn parse_decimal(digits: &[u8], max: u64) -> Result<u64, ParseErrorKind> {
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(ParseErrorKind::BadNumber);
    }
    digits
        .iter()
        .try_fold(0u64, |acc, &d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .filter(|&n| n <= max)
        .ok_or(ParseErrorKind::NumberTooLarge)
}
