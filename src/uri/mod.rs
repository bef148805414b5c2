//! `pkcs11:` URIs (RFC 7512): parsing what users give `OSSL_STORE_open` and printing our own
//! canonical form for messages and PEM-URI files.
//!
//! Pure logic, no FFI and no token access, so it can be unit-tested and fuzzed on its own.
//! Grammar (RFC 7512 §2.3): `pkcs11:` (scheme case-insensitive), path attributes separated
//! by `;`, then an optional `?` and query attributes separated by `&`. Values are
//! percent-decoded; characters outside `pk11-pchar` / `pk11-qchar` must be escaped. Known
//! attributes may appear once; unknown ones (vendor `x-*` included) are checked for syntax
//! and then skipped, as the RFC lets consumers do. The PIN (`pin-value`) is kept in a
//! zeroizing buffer and never appears in `Display`, `Debug` or error messages.

use std::fmt::{self, Write as _};

use zeroize::{Zeroize, Zeroizing};

/// Longest input we accept. Real URIs are a few hundred bytes; the cap bounds the work and
/// the allocations an attacker-supplied string can cause.
const MAX_URI_LEN: usize = 64 * 1024;

const SCHEME: &[u8] = b"pkcs11:";

/// Error messages quote names and values only up to this many bytes.
const MAX_QUOTED: usize = 64;

/// The `type` path attribute: which kind of object (`CKA_CLASS`) the URI names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum ObjectType {
    /// `private`: CKO_PRIVATE_KEY.
    Private,
    /// `public`: CKO_PUBLIC_KEY.
    Public,
    /// `cert`: CKO_CERTIFICATE.
    Cert,
    /// `secret-key`: CKO_SECRET_KEY.
    SecretKey,
    /// `data`: CKO_DATA.
    Data,
}

impl ObjectType {
    const ALL: [ObjectType; 5] = [
        ObjectType::Private,
        ObjectType::Public,
        ObjectType::Cert,
        ObjectType::SecretKey,
        ObjectType::Data,
    ];

    /// The value as written in a URI.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ObjectType::Private => "private",
            ObjectType::Public => "public",
            ObjectType::Cert => "cert",
            ObjectType::SecretKey => "secret-key",
            ObjectType::Data => "data",
        }
    }

    /// Exact, case-sensitive match, as RFC 7512 defines the values.
    fn from_bytes(value: &[u8]) -> Option<ObjectType> {
        Self::ALL
            .into_iter()
            .find(|t| t.as_str().as_bytes() == value)
    }
}

impl fmt::Display for ObjectType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed `pkcs11:` URI. Every attribute is optional; an absent one matches anything.
#[derive(Clone, Default, PartialEq, Eq)]
pub(crate) struct Pkcs11Uri {
    /// `token`: CK_TOKEN_INFO.label.
    pub(crate) token: Option<String>,
    /// `manufacturer`: CK_TOKEN_INFO.manufacturerID.
    pub(crate) manufacturer: Option<String>,
    /// `model`: CK_TOKEN_INFO.model.
    pub(crate) model: Option<String>,
    /// `serial`: CK_TOKEN_INFO.serialNumber.
    pub(crate) serial: Option<String>,
    /// `slot-description`: CK_SLOT_INFO.slotDescription.
    pub(crate) slot_description: Option<String>,
    /// `slot-manufacturer`: CK_SLOT_INFO.manufacturerID.
    pub(crate) slot_manufacturer: Option<String>,
    /// `slot-id`: CK_SLOT_ID, decimal.
    pub(crate) slot_id: Option<u64>,
    /// `library-description`: CK_INFO.libraryDescription.
    pub(crate) library_description: Option<String>,
    /// `library-manufacturer`: CK_INFO.manufacturerID.
    pub(crate) library_manufacturer: Option<String>,
    /// `library-version`: CK_INFO.libraryVersion as (major, minor); "M" means (M, 0).
    pub(crate) library_version: Option<(u8, u8)>,
    /// `object`: CKA_LABEL.
    pub(crate) object: Option<String>,
    /// `id`: CKA_ID, arbitrary bytes.
    pub(crate) id: Option<Vec<u8>>,
    /// `type`: CKA_CLASS.
    pub(crate) object_type: Option<ObjectType>,
    /// `pin-value` (query): the user PIN itself. Never printed.
    pub(crate) pin_value: Option<Zeroizing<String>>,
    /// `pin-source` (query): where to read the PIN, as given (decoded); see
    /// [`Pkcs11Uri::pin_source_path`].
    pub(crate) pin_source: Option<String>,
    /// `module-name` (query): PKCS#11 module name without path or suffix.
    pub(crate) module_name: Option<String>,
    /// `module-path` (query): PKCS#11 module file.
    pub(crate) module_path: Option<String>,
}

/// Which part of the URI an attribute sits in; decides the separators, the attribute
/// names that are known, and which characters may appear unescaped.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Path,
    Query,
}

impl Section {
    /// Characters RFC 7512 lets stand unescaped in a value (`pk11-pchar` / `pk11-qchar`
    /// minus `pct-encoded`).
    fn allows_literal(self, b: u8) -> bool {
        is_unreserved(b)
            || is_res_avail(b)
            || match self {
                Section::Path => b == b'&',
                Section::Query => matches!(b, b'/' | b'?' | b'|'),
            }
    }

    /// Characters we print unescaped. Same as accepted, except `|` in the query: it was
    /// added late to the RFC and older parsers reject it raw.
    fn prints_literal(self, b: u8) -> bool {
        self.allows_literal(b) && b != b'|'
    }
}

/// RFC 3986 `unreserved`.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 7512 `pk11-res-avail`: reserved characters that are not delimiters inside a value.
fn is_res_avail(b: u8) -> bool {
    matches!(
        b,
        b':' | b'[' | b']' | b'@' | b'!' | b'$' | b'\'' | b'(' | b')' | b'*' | b'+' | b',' | b'='
    )
}

/// RFC 7512 `pk11-v-attr-nm-char`; standard names are a subset.
fn is_name_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_')
}

/// The attributes this parser understands.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Attr {
    Token,
    Manufacturer,
    Model,
    Serial,
    SlotDescription,
    SlotManufacturer,
    SlotId,
    LibraryDescription,
    LibraryManufacturer,
    LibraryVersion,
    Object,
    Type,
    Id,
    PinValue,
    PinSource,
    ModuleName,
    ModulePath,
}

impl Attr {
    /// Path attributes, in the order `Display` prints them.
    const PATH: [Attr; 13] = [
        Attr::Token,
        Attr::Manufacturer,
        Attr::Model,
        Attr::Serial,
        Attr::SlotDescription,
        Attr::SlotManufacturer,
        Attr::SlotId,
        Attr::LibraryDescription,
        Attr::LibraryManufacturer,
        Attr::LibraryVersion,
        Attr::Object,
        Attr::Type,
        Attr::Id,
    ];
    /// Query attributes, in the order `Display` prints them.
    const QUERY: [Attr; 4] = [
        Attr::PinValue,
        Attr::PinSource,
        Attr::ModuleName,
        Attr::ModulePath,
    ];

    fn name(self) -> &'static str {
        match self {
            Attr::Token => "token",
            Attr::Manufacturer => "manufacturer",
            Attr::Model => "model",
            Attr::Serial => "serial",
            Attr::SlotDescription => "slot-description",
            Attr::SlotManufacturer => "slot-manufacturer",
            Attr::SlotId => "slot-id",
            Attr::LibraryDescription => "library-description",
            Attr::LibraryManufacturer => "library-manufacturer",
            Attr::LibraryVersion => "library-version",
            Attr::Object => "object",
            Attr::Type => "type",
            Attr::Id => "id",
            Attr::PinValue => "pin-value",
            Attr::PinSource => "pin-source",
            Attr::ModuleName => "module-name",
            Attr::ModulePath => "module-path",
        }
    }

    /// Names are case-sensitive (RFC 7512 §2.3); a query name in the path (or the other
    /// way round) is simply unknown there.
    fn lookup(section: Section, name: &[u8]) -> Option<Attr> {
        let table: &[Attr] = match section {
            Section::Path => &Self::PATH,
            Section::Query => &Self::QUERY,
        };
        table.iter().copied().find(|a| a.name().as_bytes() == name)
    }
}

impl Pkcs11Uri {
    /// Parses a `pkcs11:` URI. `input` comes from a C string and need not be UTF-8; only
    /// percent-decoded text values are required to be.
    pub(crate) fn parse(input: &[u8]) -> Result<Pkcs11Uri, ParseError> {
        if input.len() > MAX_URI_LEN {
            return Err(ParseError::new(ParseErrorKind::TooLong, MAX_URI_LEN, None));
        }
        let scheme_ok = input
            .get(..SCHEME.len())
            .is_some_and(|s| s.eq_ignore_ascii_case(SCHEME));
        if !scheme_ok {
            return Err(ParseError::new(ParseErrorKind::MissingScheme, 0, None));
        }

        let body_start = SCHEME.len();
        // The first '?' ends the path; later ones are ordinary query characters.
        let path_end = input[body_start..]
            .iter()
            .position(|&b| b == b'?')
            .map_or(input.len(), |p| body_start + p);

        let mut uri = Pkcs11Uri::default();
        uri.parse_section(input, body_start, path_end, Section::Path)?;
        if path_end < input.len() {
            uri.parse_section(input, path_end + 1, input.len(), Section::Query)?;
        }
        Ok(uri)
    }

    /// True when the URI names no object (no `object`, `id` or `type`): the caller should
    /// list everything on the matching tokens.
    pub(crate) fn is_token_only(&self) -> bool {
        self.object.is_none() && self.id.is_none() && self.object_type.is_none()
    }

    /// The file named by `pin-source`: `file:/x`, `file:///x` and `file://localhost/x`
    /// give `/x`, and a value without a scheme is taken as a path as is. Returns `None`
    /// when there is no `pin-source`, it uses another scheme, or names a remote host.
    pub(crate) fn pin_source_path(&self) -> Option<&str> {
        let source = self.pin_source.as_deref()?;
        let Some(colon) = scheme_end(source) else {
            return (!source.is_empty()).then_some(source);
        };
        if !source[..colon].eq_ignore_ascii_case("file") {
            return None;
        }
        let rest = &source[colon + 1..];
        let path = match rest.strip_prefix("//") {
            // RFC 8089: "file://host/path"; only the local host makes sense for us.
            Some(authority_and_path) => {
                let slash = authority_and_path.find('/')?;
                let host = &authority_and_path[..slash];
                if !(host.is_empty() || host.eq_ignore_ascii_case("localhost")) {
                    return None;
                }
                &authority_and_path[slash..]
            }
            // "file:/x", and the common non-standard "file:relative/x".
            None => rest,
        };
        (!path.is_empty()).then_some(path)
    }

    /// Parses the attributes of one section, `input[start..end]`.
    fn parse_section(
        &mut self,
        input: &[u8],
        start: usize,
        end: usize,
        section: Section,
    ) -> Result<(), ParseError> {
        let separator = match section {
            Section::Path => b';',
            Section::Query => b'&',
        };
        let mut component_start = start;
        for component in input[start..end].split(|&b| b == separator) {
            // Empty components ("pkcs11:a=b;;c=d", trailing ';') carry nothing; tolerate them.
            if !component.is_empty() {
                self.parse_attribute(component, component_start, section)?;
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
        let value = RawValue {
            bytes: &component[eq + 1..],
            offset: offset + eq + 1,
            section,
        };

        let Some(attr) = Attr::lookup(section, name) else {
            // Unknown or vendor attribute: must still be well-formed, then it is skipped.
            let attribute = quoted(name);
            return value.decode(None).map_err(|e| e.with_attribute(attribute));
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

    /// The value of a text attribute, for `Display`. `pin-value` is deliberately absent.
    fn text_value(&self, attr: Attr) -> Option<&str> {
        let field = match attr {
            Attr::Token => &self.token,
            Attr::Manufacturer => &self.manufacturer,
            Attr::Model => &self.model,
            Attr::Serial => &self.serial,
            Attr::SlotDescription => &self.slot_description,
            Attr::SlotManufacturer => &self.slot_manufacturer,
            Attr::LibraryDescription => &self.library_description,
            Attr::LibraryManufacturer => &self.library_manufacturer,
            Attr::Object => &self.object,
            Attr::PinSource => &self.pin_source,
            Attr::ModuleName => &self.module_name,
            Attr::ModulePath => &self.module_path,
            Attr::SlotId | Attr::LibraryVersion | Attr::Type | Attr::Id | Attr::PinValue => {
                return None;
            }
        };
        field.as_deref()
    }

    /// Writes one attribute's value if it is present; returns whether it was.
    fn write_value(
        &self,
        f: &mut fmt::Formatter<'_>,
        attr: Attr,
        sep: &str,
    ) -> Result<bool, fmt::Error> {
        let section = if Attr::QUERY.contains(&attr) {
            Section::Query
        } else {
            Section::Path
        };
        let start = |f: &mut fmt::Formatter<'_>| -> fmt::Result {
            f.write_str(sep)?;
            f.write_str(attr.name())?;
            f.write_char('=')
        };
        match attr {
            Attr::PinValue => return Ok(false),
            Attr::SlotId => {
                let Some(slot) = self.slot_id else {
                    return Ok(false);
                };
                start(f)?;
                write!(f, "{slot}")?;
            }
            Attr::LibraryVersion => {
                let Some((major, minor)) = self.library_version else {
                    return Ok(false);
                };
                start(f)?;
                write!(f, "{major}.{minor}")?;
            }
            Attr::Type => {
                let Some(object_type) = self.object_type else {
                    return Ok(false);
                };
                start(f)?;
                f.write_str(object_type.as_str())?;
            }
            Attr::Id => {
                let Some(id) = &self.id else {
                    return Ok(false);
                };
                start(f)?;
                // Always escaped: ids are binary, and "%01%02" reads better than a mix.
                write_encoded(f, id, |_| false)?;
            }
            _ => {
                let Some(text) = self.text_value(attr) else {
                    return Ok(false);
                };
                start(f)?;
                write_encoded(f, text.as_bytes(), |b| section.prints_literal(b))?;
            }
        }
        Ok(true)
    }
}

/// Canonical form: fixed attribute order, uppercase `%XX`, `id` fully escaped, and no
/// `pin-value` at all, so the result is safe to log or store.
impl fmt::Display for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("pkcs11:")?;
        let mut sep = "";
        for attr in Attr::PATH {
            if self.write_value(f, attr, sep)? {
                sep = ";";
            }
        }
        let mut sep = "?";
        for attr in Attr::QUERY {
            if self.write_value(f, attr, sep)? {
                sep = "&";
            }
        }
        Ok(())
    }
}

/// Stands in for the PIN in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Debug for Pkcs11Uri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Uri")
            .field("token", &self.token)
            .field("manufacturer", &self.manufacturer)
            .field("model", &self.model)
            .field("serial", &self.serial)
            .field("slot_description", &self.slot_description)
            .field("slot_manufacturer", &self.slot_manufacturer)
            .field("slot_id", &self.slot_id)
            .field("library_description", &self.library_description)
            .field("library_manufacturer", &self.library_manufacturer)
            .field("library_version", &self.library_version)
            .field("object", &self.object)
            .field("id", &self.id)
            .field("object_type", &self.object_type)
            .field("pin_value", &self.pin_value.as_ref().map(|_| Redacted))
            .field("pin_source", &self.pin_source)
            .field("module_name", &self.module_name)
            .field("module_path", &self.module_path)
            .finish()
    }
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

/// Percent-encodes `bytes`, leaving those for which `literal` is true as they are.
fn write_encoded(
    f: &mut fmt::Formatter<'_>,
    bytes: &[u8],
    literal: impl Fn(u8) -> bool,
) -> fmt::Result {
    for &b in bytes {
        if literal(b) {
            f.write_char(char::from(b))?;
        } else {
            write!(f, "%{b:02X}")?;
        }
    }
    Ok(())
}

/// Where the scheme of a URI-like string ends (the index of its ':'), if it has one
/// (RFC 3986 `scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`).
fn scheme_end(s: &str) -> Option<usize> {
    let colon = s.find(':')?;
    let scheme = &s.as_bytes()[..colon];
    let first_ok = scheme.first().is_some_and(u8::is_ascii_alphabetic);
    let rest_ok = scheme
        .iter()
        .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    (first_ok && rest_ok).then_some(colon)
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

/// What was wrong with a URI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum ParseErrorKind {
    /// More than 64 KiB of input.
    TooLong,
    /// Does not start with `pkcs11:` (any case).
    MissingScheme,
    /// A component without `=`.
    MissingEquals,
    /// A component starting with `=`.
    EmptyName,
    /// An attribute name with a character outside ALPHA / DIGIT / `-` / `_`.
    BadName,
    /// `%` not followed by two hex digits.
    BadPercentEscape,
    /// A character that must be percent-encoded appears raw.
    BadCharacter,
    /// A text value decodes to a NUL byte.
    NulByte,
    /// A text value does not decode to UTF-8.
    NotUtf8,
    /// `slot-id` is not a decimal number.
    BadNumber,
    /// `slot-id` does not fit in 64 bits.
    NumberTooLarge,
    /// `library-version` is not "M" or "M.m" with parts 0..=255.
    BadVersion,
    /// `type` is not one of the five RFC values (the value, escaped).
    UnknownType(String),
    /// An attribute given twice.
    Duplicate,
    /// Both `pin-value` and `pin-source`.
    PinValueAndSource,
}

/// A URI parse failure: what, where (byte offset in the input) and in which attribute.
/// Never contains attribute values, except the rejected `type` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ParseError {
    kind: ParseErrorKind,
    offset: usize,
    attribute: Option<String>,
}

impl ParseError {
    fn new(kind: ParseErrorKind, offset: usize, attribute: Option<String>) -> ParseError {
        ParseError {
            kind,
            offset,
            attribute,
        }
    }

    fn with_attribute(mut self, name: impl Into<String>) -> ParseError {
        self.attribute = Some(name.into());
        self
    }

    /// What went wrong.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "structured access for callers and tests")
    )]
    pub(crate) fn kind(&self) -> &ParseErrorKind {
        &self.kind
    }

    /// Byte offset in the input where the problem was found.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "structured access for callers and tests")
    )]
    pub(crate) fn offset(&self) -> usize {
        self.offset
    }

    /// The attribute concerned, when there is one.
    #[cfg_attr(
        not(test),
        expect(dead_code, reason = "structured access for callers and tests")
    )]
    pub(crate) fn attribute(&self) -> Option<&str> {
        self.attribute.as_deref()
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid pkcs11 URI: ")?;
        let attribute = self.attribute.as_deref().unwrap_or("?");
        match &self.kind {
            ParseErrorKind::Duplicate => {
                return write!(
                    f,
                    "attribute '{attribute}' given twice at byte {}",
                    self.offset
                );
            }
            ParseErrorKind::PinValueAndSource => {
                return write!(
                    f,
                    "'pin-value' and 'pin-source' both given (second at byte {})",
                    self.offset
                );
            }
            ParseErrorKind::TooLong => {
                return write!(f, "longer than {MAX_URI_LEN} bytes");
            }
            ParseErrorKind::MissingScheme => {
                return f.write_str("does not start with 'pkcs11:'");
            }
            ParseErrorKind::MissingEquals => f.write_str("attribute without '='")?,
            ParseErrorKind::EmptyName => f.write_str("empty attribute name")?,
            ParseErrorKind::BadName => f.write_str("bad character in attribute name")?,
            ParseErrorKind::BadPercentEscape => f.write_str("bad percent-escape")?,
            ParseErrorKind::BadCharacter => {
                f.write_str("character that must be percent-encoded")?
            }
            ParseErrorKind::NulByte => f.write_str("NUL byte (%00) in a text value")?,
            ParseErrorKind::NotUtf8 => f.write_str("value is not valid UTF-8")?,
            ParseErrorKind::BadNumber => f.write_str("expected a decimal number")?,
            ParseErrorKind::NumberTooLarge => f.write_str("number too large")?,
            ParseErrorKind::BadVersion => {
                f.write_str("expected version 'M' or 'M.m' (0-255 each)")?
            }
            ParseErrorKind::UnknownType(value) => write!(
                f,
                "unknown object type '{value}' (expected private, public, cert, secret-key or data)"
            )?,
        }
        write!(f, " at byte {}", self.offset)?;
        if let Some(attribute) = &self.attribute {
            write!(f, " in attribute '{attribute}'")?;
        }
        Ok(())
    }
}

impl std::error::Error for ParseError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Pkcs11Uri {
        Pkcs11Uri::parse(s.as_bytes()).unwrap_or_else(|e| panic!("{s:?}: {e}"))
    }

    fn parse_err(input: &[u8]) -> ParseError {
        match Pkcs11Uri::parse(input) {
            Ok(uri) => panic!("{:?} parsed as {uri:?}", input.escape_ascii().to_string()),
            Err(e) => e,
        }
    }

    fn kind_of(input: &str) -> ParseErrorKind {
        parse_err(input.as_bytes()).kind().clone()
    }

    fn some(s: &str) -> Option<String> {
        Some(s.to_owned())
    }

    /// parse(display(uri)) == uri without its PIN.
    fn assert_round_trip(uri: &Pkcs11Uri) {
        let printed = uri.to_string();
        let reparsed = parse(&printed);
        let mut expected = uri.clone();
        expected.pin_value = None;
        assert_eq!(reparsed, expected, "via {printed}");
        assert_eq!(reparsed.to_string(), printed, "display is canonical");
    }

    // ---- RFC 7512 §3 examples ----

    #[test]
    fn rfc_empty_uri_means_everything() {
        let uri = parse("pkcs11:");
        assert_eq!(uri, Pkcs11Uri::default());
        assert!(uri.is_token_only());
        assert_eq!(uri.to_string(), "pkcs11:");
    }

    #[test]
    fn rfc_public_key() {
        let uri = parse("pkcs11:object=my-pubkey;type=public");
        assert_eq!(uri.object, some("my-pubkey"));
        assert_eq!(uri.object_type, Some(ObjectType::Public));
        assert!(!uri.is_token_only());
        assert_eq!(uri.to_string(), "pkcs11:object=my-pubkey;type=public");
    }

    #[test]
    fn rfc_private_key_with_pin_source() {
        let uri = parse("pkcs11:object=my-key;type=private?pin-source=file:/etc/token");
        assert_eq!(uri.object, some("my-key"));
        assert_eq!(uri.object_type, Some(ObjectType::Private));
        assert_eq!(uri.pin_source, some("file:/etc/token"));
        assert_eq!(uri.pin_source_path(), Some("/etc/token"));
        assert_eq!(
            uri.to_string(),
            "pkcs11:object=my-key;type=private?pin-source=file:/etc/token"
        );
    }

    #[test]
    fn rfc_full_certificate_with_pin_value() {
        let input = "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;\
                     manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;\
                     type=cert;id=%69%95%3E%5C%F4%BE%FA?pin-value=the-pin";
        let uri = parse(input);
        assert_eq!(uri.token, some("The Software PKCS#11 Softtoken"));
        assert_eq!(uri.manufacturer, some("Snake Oil, Inc."));
        assert_eq!(uri.model, some("1.0"));
        assert_eq!(uri.object, some("my-certificate"));
        assert_eq!(uri.object_type, Some(ObjectType::Cert));
        assert_eq!(uri.id, Some(vec![0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbe, 0xfa]));
        assert_eq!(
            uri.pin_value.as_deref().map(String::as_str),
            Some("the-pin")
        );
        assert_eq!(
            uri.to_string(),
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;\
             manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;\
             type=cert;id=%69%95%3E%5C%F4%BE%FA"
        );
    }

    #[test]
    fn rfc_final_certificate_example_with_empty_serial() {
        let uri = parse(
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;\
             manufacturer=Snake%20Oil,%20Inc.;model=1.0;object=my-certificate;\
             type=cert;id=%69%95%3E%5C%F4%BD%EC%91;serial=?pin-source=file:/etc/token_pin",
        );
        assert_eq!(uri.serial, some(""));
        assert_eq!(
            uri.id,
            Some(vec![0x69, 0x95, 0x3e, 0x5c, 0xf4, 0xbd, 0xec, 0x91])
        );
        assert_eq!(uri.pin_source_path(), Some("/etc/token_pin"));
        assert_round_trip(&uri);
    }

    #[test]
    fn rfc_module_name_and_path() {
        let uri = parse("pkcs11:object=my-sign-key;type=private?module-name=mypkcs11");
        assert_eq!(uri.module_name, some("mypkcs11"));
        let uri = parse("pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1");
        assert_eq!(uri.module_path, some("/mnt/libmypkcs11.so.1"));
        assert_eq!(
            uri.to_string(),
            "pkcs11:object=my-sign-key;type=private?module-path=/mnt/libmypkcs11.so.1"
        );
    }

    #[test]
    fn rfc_token_and_pin_value() {
        let uri = parse(
            "pkcs11:token=Software%20PKCS%2311%20softtoken;\
             manufacturer=Snake%20Oil,%20Inc.?pin-value=the-pin",
        );
        assert_eq!(uri.token, some("Software PKCS#11 softtoken"));
        assert!(uri.is_token_only());
        assert_eq!(
            uri.pin_value.as_deref().map(String::as_str),
            Some("the-pin")
        );
    }

    #[test]
    fn rfc_slot_description() {
        let uri = parse("pkcs11:slot-description=Sun%20Metaslot");
        assert_eq!(uri.slot_description, some("Sun Metaslot"));
        assert_eq!(uri.to_string(), "pkcs11:slot-description=Sun%20Metaslot");
    }

    #[test]
    fn rfc_library_attributes() {
        let uri = parse(
            "pkcs11:library-manufacturer=Snake%20Oil,%20Inc.;\
             library-description=Soft%20Token%20Library;library-version=1.23",
        );
        assert_eq!(uri.library_manufacturer, some("Snake Oil, Inc."));
        assert_eq!(uri.library_description, some("Soft Token Library"));
        assert_eq!(uri.library_version, Some((1, 23)));
        assert_round_trip(&uri);
    }

    #[test]
    fn rfc_percent_in_label_and_mixed_case_hex_id() {
        let uri = parse(
            "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3;\
             id=%01%02%03%Ba%dd%Ca%fe%04%05%06",
        );
        assert_eq!(uri.token, some("My token% created by Joe"));
        assert_eq!(uri.library_version, Some((3, 0)));
        assert_eq!(uri.id, Some(vec![1, 2, 3, 0xba, 0xdd, 0xca, 0xfe, 4, 5, 6]));
        assert_eq!(
            uri.to_string(),
            "pkcs11:token=My%20token%25%20created%20by%20Joe;library-version=3.0;\
             id=%01%02%03%BA%DD%CA%FE%04%05%06"
        );
    }

    #[test]
    fn rfc_escaped_delimiters_in_label() {
        let uri = parse(
            "pkcs11:token=A%20name%20with%20a%20substring%20%25%3B;object=my-certificate;type=cert",
        );
        assert_eq!(uri.token, some("A name with a substring %;"));
        assert_round_trip(&uri);
    }

    #[test]
    fn rfc_utf8_label() {
        let uri = parse(
            "pkcs11:token=Name%20with%20a%20small%20A%20with%20acute:%20%C3%A1;\
             object=my-certificate;type=cert",
        );
        assert_eq!(uri.token, some("Name with a small A with acute: \u{e1}"));
        assert_round_trip(&uri);
    }

    #[test]
    fn rfc_vendor_attributes_are_ignored() {
        let uri = parse(
            "pkcs11:token=my-token;object=my-certificate;type=cert;vendor-aaa=value-a\
             ?pin-source=file:/etc/token&vendor-bbb=value-b",
        );
        let expected = Pkcs11Uri {
            token: some("my-token"),
            object: some("my-certificate"),
            object_type: Some(ObjectType::Cert),
            pin_source: some("file:/etc/token"),
            ..Pkcs11Uri::default()
        };
        assert_eq!(uri, expected);
        let uri = parse("pkcs11:x-foo=1;x-foo=2;object=a?x-bar=%41&x-bar=");
        assert_eq!(uri.object, some("a"));
    }

    // ---- general syntax ----

    #[test]
    fn scheme_is_case_insensitive() {
        assert_eq!(parse("PKCS11:object=a").object, some("a"));
        assert_eq!(parse("Pkcs11:object=a").object, some("a"));
    }

    #[test]
    fn empty_components_are_tolerated() {
        let uri = parse("pkcs11:;;token=a;;object=b;?&&pin-source=/p&");
        assert_eq!(uri.token, some("a"));
        assert_eq!(uri.object, some("b"));
        assert_eq!(uri.pin_source, some("/p"));
        assert_eq!(parse("pkcs11:?"), Pkcs11Uri::default());
        assert_eq!(parse("pkcs11:;"), Pkcs11Uri::default());
    }

    #[test]
    fn attribute_names_are_case_sensitive() {
        // An unknown name is skipped, so this names no object at all.
        let uri = parse("pkcs11:Object=foo;TYPE=cert");
        assert!(uri.is_token_only());
        assert_eq!(uri, Pkcs11Uri::default());
    }

    #[test]
    fn attributes_in_the_wrong_section_are_unknown() {
        let uri = parse("pkcs11:pin-value=1234?object=foo");
        assert_eq!(uri, Pkcs11Uri::default());
    }

    #[test]
    fn reserved_characters_allowed_unescaped() {
        let uri = parse("pkcs11:token=:[]@!$'()*+,=&;object=a~b.c_d-e?pin-source=:[]@!$'()*+,=/?|");
        assert_eq!(uri.token, some(":[]@!$'()*+,=&"));
        assert_eq!(uri.object, some("a~b.c_d-e"));
        assert_eq!(uri.pin_source, some(":[]@!$'()*+,=/?|"));
        // '|' is accepted raw but printed escaped, for older parsers.
        assert_eq!(
            uri.to_string(),
            "pkcs11:token=:[]@!$'()*+,=&;object=a~b.c_d-e?pin-source=:[]@!$'()*+,=/?%7C"
        );
        assert_round_trip(&uri);
    }

    #[test]
    fn value_may_contain_equals() {
        assert_eq!(parse("pkcs11:object=a=b=").object, some("a=b="));
    }

    #[test]
    fn empty_values_are_kept() {
        let uri = parse("pkcs11:object=;id=");
        assert_eq!(uri.object, some(""));
        assert_eq!(uri.id, Some(vec![]));
        assert_round_trip(&uri);
    }

    #[test]
    fn unnecessary_escapes_are_decoded() {
        let uri = parse("pkcs11:object=%3a%5b%5d%40%21%24%27%28%29%2a%2b%2c%26%3d%41");
        assert_eq!(uri.object, some(":[]@!$'()*+,&=A"));
        assert_eq!(uri.to_string(), "pkcs11:object=:[]@!$'()*+,&=A");
    }

    #[test]
    fn query_delimiter_escaped_in_query_values() {
        let uri = parse("pkcs11:?module-path=/a%26b%3Bc");
        assert_eq!(uri.module_path, some("/a&b;c"));
        assert_eq!(uri.to_string(), "pkcs11:?module-path=/a%26b%3Bc");
    }

    #[test]
    fn pin_value_is_percent_decoded() {
        let uri = parse("pkcs11:?pin-value=a%26b%20c");
        assert_eq!(uri.pin_value.as_deref().map(String::as_str), Some("a&b c"));
    }

    // ---- typed attributes ----

    #[test]
    fn slot_id_values() {
        assert_eq!(parse("pkcs11:slot-id=0").slot_id, Some(0));
        assert_eq!(
            parse("pkcs11:slot-id=1760174018").slot_id,
            Some(1_760_174_018)
        );
        assert_eq!(
            parse("pkcs11:slot-id=18446744073709551615").slot_id,
            Some(u64::MAX)
        );
        assert_eq!(parse("pkcs11:slot-id=%31%32").slot_id, Some(12));
        assert_eq!(parse("pkcs11:slot-id=7").to_string(), "pkcs11:slot-id=7");
    }

    #[test]
    fn slot_id_errors() {
        let e = parse_err(b"pkcs11:slot-id=18446744073709551616");
        assert_eq!(e.kind(), &ParseErrorKind::NumberTooLarge);
        assert_eq!(e.attribute(), Some("slot-id"));
        assert_eq!(e.offset(), 15);
        for bad in ["", "-1", "+1", "1a", "0x10", "1.0", " 1"] {
            let input = format!("pkcs11:slot-id={bad}");
            let kind = kind_of(&input);
            assert!(
                matches!(
                    kind,
                    ParseErrorKind::BadNumber | ParseErrorKind::BadCharacter
                ),
                "{input}: {kind:?}"
            );
        }
    }

    #[test]
    fn library_version_forms() {
        assert_eq!(
            parse("pkcs11:library-version=7").library_version,
            Some((7, 0))
        );
        assert_eq!(
            parse("pkcs11:library-version=2.40").library_version,
            Some((2, 40))
        );
        assert_eq!(
            parse("pkcs11:library-version=255.255").library_version,
            Some((255, 255))
        );
        for bad in [
            "",
            "1.",
            ".1",
            "1.2.3",
            "256",
            "1.256",
            "a.b",
            "1.-2",
            "99999999999999999999",
        ] {
            let input = format!("pkcs11:library-version={bad}");
            assert_eq!(kind_of(&input), ParseErrorKind::BadVersion, "{input}");
        }
    }

    #[test]
    fn every_object_type() {
        for t in ObjectType::ALL {
            let uri = parse(&format!("pkcs11:type={t}"));
            assert_eq!(uri.object_type, Some(t));
            assert!(!uri.is_token_only());
            assert_round_trip(&uri);
        }
        assert_eq!(
            parse("pkcs11:type=secret-key").object_type,
            Some(ObjectType::SecretKey)
        );
        assert_eq!(
            parse("pkcs11:type=d%61ta").object_type,
            Some(ObjectType::Data)
        );
    }

    #[test]
    fn unknown_type_is_named() {
        let e = parse_err(b"pkcs11:type=Cert");
        assert_eq!(e.kind(), &ParseErrorKind::UnknownType("Cert".to_owned()));
        assert_eq!(e.attribute(), Some("type"));
        let message = e.to_string();
        assert!(message.contains("'Cert'"), "{message}");
        assert!(message.contains("attribute 'type'"), "{message}");
        assert_eq!(
            kind_of("pkcs11:type="),
            ParseErrorKind::UnknownType(String::new())
        );
        assert_eq!(
            kind_of("pkcs11:type=%FFkey"),
            ParseErrorKind::UnknownType("\\xffkey".to_owned())
        );
        let long = format!("pkcs11:type={}", "k".repeat(1000));
        assert_eq!(
            kind_of(&long),
            ParseErrorKind::UnknownType("k".repeat(MAX_QUOTED))
        );
    }

    #[test]
    fn binary_id() {
        let uri = parse("pkcs11:id=%00%01%7F%80%fe%FF");
        assert_eq!(uri.id, Some(vec![0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff]));
        assert_eq!(uri.to_string(), "pkcs11:id=%00%01%7F%80%FE%FF");
        // Literal characters are allowed in an id too, and printed escaped.
        let uri = parse("pkcs11:id=ab%63");
        assert_eq!(uri.id, Some(b"abc".to_vec()));
        assert_eq!(uri.to_string(), "pkcs11:id=%61%62%63");
        assert!(!uri.is_token_only());
    }

    // ---- errors ----

    #[test]
    fn bad_percent_escapes() {
        for (input, offset) in [
            ("pkcs11:object=%", 14),
            ("pkcs11:object=%4", 14),
            ("pkcs11:object=a%G1", 15),
            ("pkcs11:object=a%4g", 15),
            ("pkcs11:object=%%41", 14),
            ("pkcs11:id=%0", 10),
            ("pkcs11:?pin-source=%zz", 19),
            ("pkcs11:x-vendor=%", 16),
        ] {
            let e = parse_err(input.as_bytes());
            assert_eq!(e.kind(), &ParseErrorKind::BadPercentEscape, "{input}");
            assert_eq!(e.offset(), offset, "{input}");
        }
        let e = parse_err(b"pkcs11:x-vendor=%");
        assert_eq!(e.attribute(), Some("x-vendor"));
    }

    #[test]
    fn error_message_format() {
        let e = parse_err(b"pkcs11:object=abc%zz");
        assert_eq!(
            e.to_string(),
            "invalid pkcs11 URI: bad percent-escape at byte 17 in attribute 'object'"
        );
        let e = parse_err(b"pkcs11:object=a;type=cert;object=b");
        assert_eq!(
            e.to_string(),
            "invalid pkcs11 URI: attribute 'object' given twice at byte 26"
        );
    }

    #[test]
    fn characters_that_must_be_escaped() {
        let mut bad: Vec<u8> = b" \"<>\\^`{}|#%/?".to_vec();
        bad.retain(|&b| b != b'%' && b != b'?');
        bad.extend(0x00..0x20);
        bad.push(0x7f);
        bad.extend([0x80, 0xc3, 0xe1, 0xff]);
        for b in bad {
            let mut input = b"pkcs11:object=ab".to_vec();
            input.push(b);
            input.extend_from_slice(b"cd");
            let e = parse_err(&input);
            assert_eq!(e.kind(), &ParseErrorKind::BadCharacter, "byte {b:#04x}");
            assert_eq!(e.offset(), 16, "byte {b:#04x}");
            assert_eq!(e.attribute(), Some("object"));
        }
    }

    #[test]
    fn query_only_characters_rejected_in_path() {
        assert_eq!(kind_of("pkcs11:object=a/b"), ParseErrorKind::BadCharacter);
        assert_eq!(kind_of("pkcs11:object=a|b"), ParseErrorKind::BadCharacter);
        // ';' is the path separator, so it cannot appear raw in a query value either.
        assert_eq!(
            kind_of("pkcs11:?pin-source=/a;b"),
            ParseErrorKind::BadCharacter
        );
        assert_eq!(
            kind_of("pkcs11:?pin-source=a b"),
            ParseErrorKind::BadCharacter
        );
        // A second '?' belongs to the query, where it is allowed.
        assert_eq!(parse("pkcs11:?module-name=a?b").module_name, some("a?b"));
    }

    #[test]
    fn decoded_nul_rejected_in_text() {
        let e = parse_err(b"pkcs11:object=ab%00cd");
        assert_eq!(e.kind(), &ParseErrorKind::NulByte);
        assert_eq!(e.offset(), 16);
        assert_eq!(e.attribute(), Some("object"));
        assert_eq!(kind_of("pkcs11:?module-path=%00"), ParseErrorKind::NulByte);
        assert_eq!(parse("pkcs11:id=%00").id, Some(vec![0]));
    }

    #[test]
    fn decoded_non_utf8_rejected_in_text() {
        // "%C3%A1" is valid; "%C3" followed by "(" is not. The offset points at the escape.
        let e = parse_err(b"pkcs11:token=%C3%A1x%C3(");
        assert_eq!(e.kind(), &ParseErrorKind::NotUtf8);
        assert_eq!(e.offset(), 20);
        assert_eq!(e.attribute(), Some("token"));
        assert_eq!(kind_of("pkcs11:object=%FF"), ParseErrorKind::NotUtf8);
        assert_eq!(parse("pkcs11:id=%C3(").id, Some(vec![0xc3, b'(']));
    }

    #[test]
    fn duplicates_rejected() {
        for (input, name) in [
            ("pkcs11:object=a;object=a", "object"),
            ("pkcs11:token=a;token=b", "token"),
            ("pkcs11:id=%01;id=%02", "id"),
            ("pkcs11:type=cert;type=cert", "type"),
            ("pkcs11:slot-id=1;slot-id=2", "slot-id"),
            (
                "pkcs11:library-version=1;library-version=1",
                "library-version",
            ),
            ("pkcs11:?pin-value=1&pin-value=1", "pin-value"),
            ("pkcs11:?pin-source=a&pin-source=a", "pin-source"),
            ("pkcs11:?module-path=/a&module-path=/b", "module-path"),
        ] {
            let e = parse_err(input.as_bytes());
            assert_eq!(e.kind(), &ParseErrorKind::Duplicate, "{input}");
            assert_eq!(e.attribute(), Some(name), "{input}");
            assert!(
                e.to_string()
                    .contains(&format!("attribute '{name}' given twice")),
                "{e}"
            );
        }
    }

    #[test]
    fn pin_value_and_pin_source_conflict() {
        for input in [
            "pkcs11:?pin-value=secret123&pin-source=/p",
            "pkcs11:?pin-source=/p&pin-value=secret123",
        ] {
            let e = parse_err(input.as_bytes());
            assert_eq!(e.kind(), &ParseErrorKind::PinValueAndSource);
            assert!(!e.to_string().contains("secret123"));
            assert!(!format!("{e:?}").contains("secret123"));
        }
    }

    #[test]
    fn malformed_attribute_names() {
        let e = parse_err(b"pkcs11:object=a;type");
        assert_eq!(e.kind(), &ParseErrorKind::MissingEquals);
        assert_eq!(e.offset(), 16);
        assert_eq!(kind_of("pkcs11:?1234"), ParseErrorKind::MissingEquals);
        assert!(!parse_err(b"pkcs11:?1234").to_string().contains("1234"));
        assert_eq!(kind_of("pkcs11:=x"), ParseErrorKind::EmptyName);
        let e = parse_err(b"pkcs11:ob ject=x");
        assert_eq!(e.kind(), &ParseErrorKind::BadName);
        assert_eq!(e.offset(), 9);
        assert_eq!(kind_of("pkcs11:ob%6Aect=x"), ParseErrorKind::BadName);
    }

    #[test]
    fn missing_scheme() {
        for input in [
            &b""[..],
            b"pkcs11",
            b"pkcs1:object=a",
            b"file:/etc/key.pem",
            b" pkcs11:",
            b"pkcs11 :",
        ] {
            let e = parse_err(input);
            assert_eq!(e.kind(), &ParseErrorKind::MissingScheme);
            assert_eq!(e.offset(), 0);
        }
        assert_eq!(
            parse_err(b"foo").to_string(),
            "invalid pkcs11 URI: does not start with 'pkcs11:'"
        );
    }

    #[test]
    fn length_limit() {
        let head = "pkcs11:object=";
        let at_limit = format!("{head}{}", "a".repeat(MAX_URI_LEN - head.len()));
        assert_eq!(
            parse(&at_limit).object.map(|o| o.len()),
            Some(MAX_URI_LEN - head.len())
        );
        let over = format!("{at_limit}a");
        let e = parse_err(over.as_bytes());
        assert_eq!(e.kind(), &ParseErrorKind::TooLong);
        assert!(e.to_string().contains("longer than 65536 bytes"));
    }

    #[test]
    fn every_error_message_is_one_line_and_prefixed() {
        for input in [
            &b"x"[..],
            b"pkcs11:a",
            b"pkcs11:=a",
            b"pkcs11:a b=c",
            b"pkcs11:object=%",
            b"pkcs11:object= ",
            b"pkcs11:object=%00",
            b"pkcs11:object=%80",
            b"pkcs11:slot-id=x",
            b"pkcs11:slot-id=99999999999999999999",
            b"pkcs11:library-version=x",
            b"pkcs11:type=x",
            b"pkcs11:type=a;type=b",
            b"pkcs11:?pin-value=a&pin-source=b",
        ] {
            let message = parse_err(input).to_string();
            assert!(message.starts_with("invalid pkcs11 URI: "), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }

    // ---- the PIN never leaks ----

    #[test]
    fn display_never_prints_pin_value() {
        let uri = parse("pkcs11:object=k?pin-value=s3cr3t-PIN");
        assert_eq!(uri.to_string(), "pkcs11:object=k");
        let uri = parse("pkcs11:?pin-value=s3cr3t-PIN");
        assert_eq!(uri.to_string(), "pkcs11:");
        let uri = parse("pkcs11:?pin-value=s3cr3t-PIN&module-name=m");
        assert_eq!(uri.to_string(), "pkcs11:?module-name=m");
    }

    #[test]
    fn debug_redacts_pin_value() {
        let uri = parse("pkcs11:object=k?pin-value=s3cr3t-PIN");
        let debug = format!("{uri:?}");
        assert!(!debug.contains("s3cr3t"), "{debug}");
        assert!(debug.contains("pin_value: Some(<redacted>)"), "{debug}");
        assert!(debug.contains("object: Some(\"k\")"), "{debug}");
        let pretty = format!("{uri:#?}");
        assert!(!pretty.contains("s3cr3t"));
        assert!(format!("{:?}", parse("pkcs11:")).contains("pin_value: None"));
    }

    #[test]
    fn errors_never_quote_the_pin() {
        for input in [
            &b"pkcs11:?pin-value=s3cr3t%zz"[..],
            b"pkcs11:?pin-value=s3cr3t%00",
            b"pkcs11:?pin-value=s3cr3t%ff",
            b"pkcs11:?pin-value=s3cr3t x",
            b"pkcs11:?pin-value=s3cr3t&pin-value=s3cr3t",
            b"pkcs11:?pin-value=s3cr3t&pin-source=s3cr3t",
            b"pkcs11:?s3cr3t",
            b"pkcs11:?x-pin=s3cr3t%",
        ] {
            let e = parse_err(input);
            assert!(!e.to_string().contains("s3cr3t"), "{e}");
            assert!(!format!("{e:?}").contains("s3cr3t"), "{e:?}");
        }
        let e = parse_err(b"pkcs11:?pin-value=s3cr3t%ff");
        assert_eq!(e.kind(), &ParseErrorKind::NotUtf8);
        assert_eq!(e.attribute(), Some("pin-value"));
    }

    // ---- round trips ----

    #[test]
    fn round_trip_of_examples() {
        for input in [
            "pkcs11:",
            "pkcs11:object=my-pubkey;type=public",
            "pkcs11:token=a;manufacturer=b;model=c;serial=d;slot-description=e;\
             slot-manufacturer=f;slot-id=42;library-description=g;library-manufacturer=h;\
             library-version=2.40;object=i;type=data;id=%01\
             ?pin-source=file:///run/pin&module-name=softhsm2&module-path=/usr/lib/x.so",
            "pkcs11:token=The%20Software%20PKCS%2311%20Softtoken;id=%69%95?pin-value=p",
            "pkcs11:object=%E2%82%AC%20euro%3B%3F%2F%25",
        ] {
            assert_round_trip(&parse(input));
        }
    }

    #[test]
    fn round_trip_of_every_byte() {
        // Every non-NUL character of the first 256 code points, in a label and a query value.
        let text: String = (1u32..256).filter_map(char::from_u32).collect();
        let uri = Pkcs11Uri {
            token: Some(text.clone()),
            object: Some(text.clone()),
            serial: some("\u{1F511} key"),
            id: Some((0u8..=255).collect()),
            slot_id: Some(u64::MAX),
            library_version: Some((0, 255)),
            object_type: Some(ObjectType::SecretKey),
            pin_source: Some(text.clone()),
            module_path: Some(text),
            pin_value: Some(Zeroizing::new("not-printed".to_owned())),
            ..Pkcs11Uri::default()
        };
        let printed = uri.to_string();
        assert!(!printed.contains("not-printed"));
        assert!(printed.is_ascii());
        assert_round_trip(&uri);
    }

    #[test]
    fn display_escapes_what_it_must() {
        let uri = Pkcs11Uri {
            object: some("a b;c?d/e%f|g#h&i"),
            module_path: some("/a b&c;d?e|f"),
            ..Pkcs11Uri::default()
        };
        assert_eq!(
            uri.to_string(),
            "pkcs11:object=a%20b%3Bc%3Fd%2Fe%25f%7Cg%23h&i?module-path=/a%20b%26c%3Bd?e%7Cf"
        );
        assert_round_trip(&uri);
    }

    // ---- helpers ----

    #[test]
    fn is_token_only_cases() {
        assert!(parse("pkcs11:token=t;serial=1;slot-id=3?pin-value=1").is_token_only());
        assert!(!parse("pkcs11:object=o").is_token_only());
        assert!(!parse("pkcs11:id=%01").is_token_only());
        assert!(!parse("pkcs11:type=private").is_token_only());
        assert!(!parse("pkcs11:object=").is_token_only());
    }

    #[test]
    fn pin_source_path_forms() {
        let path = |source: &str| {
            let uri = Pkcs11Uri {
                pin_source: some(source),
                ..Pkcs11Uri::default()
            };
            uri.pin_source_path().map(str::to_owned)
        };
        assert_eq!(path("file:/x"), some("/x"));
        assert_eq!(path("file:///x/y"), some("/x/y"));
        assert_eq!(path("FILE:/x"), some("/x"));
        assert_eq!(path("file://localhost/x"), some("/x"));
        assert_eq!(path("file:pin.txt"), some("pin.txt"));
        assert_eq!(path("/etc/pin"), some("/etc/pin"));
        assert_eq!(path("pin.txt"), some("pin.txt"));
        assert_eq!(path("./a:b"), some("./a:b"));
        assert_eq!(path("file://otherhost/x"), None);
        assert_eq!(path("file://"), None);
        assert_eq!(path("file:"), None);
        assert_eq!(path("https://example.com/pin"), None);
        assert_eq!(path("env:PIN"), None);
        assert_eq!(path(""), None);
        assert_eq!(Pkcs11Uri::default().pin_source_path(), None);
        let uri = parse("pkcs11:?pin-source=file:%2Fetc%2Fmy%20pin");
        assert_eq!(uri.pin_source_path(), Some("/etc/my pin"));
    }

    #[test]
    fn object_type_strings() {
        let names: Vec<&str> = ObjectType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(names, ["private", "public", "cert", "secret-key", "data"]);
        for t in ObjectType::ALL {
            assert_eq!(ObjectType::from_bytes(t.as_str().as_bytes()), Some(t));
        }
        assert_eq!(ObjectType::from_bytes(b"secret_key"), None);
    }

    #[test]
    fn non_utf8_input_outside_values_is_rejected_cleanly() {
        assert_eq!(
            parse_err(b"pkcs11:\xffobject=a").kind(),
            &ParseErrorKind::BadName
        );
        assert_eq!(
            parse_err(b"pkcs11:object=a\xff").kind(),
            &ParseErrorKind::BadCharacter
        );
    }
}
