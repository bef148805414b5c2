//! The helper's own view of the token, through cryptoki (PKCS#11 3.0 §5.4–5.7, §5.9): load and
//! initialise the module, list slots and tokens, log in once, find objects and read what the
//! listing shows. It does not share the provider's session pool or login state: it is a
//! separate, short-lived process that makes the same calls a first-time user would.

use std::path::Path;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::{Slot, TokenInfo};
use cryptoki::types::AuthPin;
use pkcs11_ossl::tool::{self, ObjectKind, TokenFacts, Uri};
use zeroize::Zeroizing;

/// A loaded and initialised PKCS#11 module; `C_Finalize` on drop.
pub(crate) struct Module {
    pkcs11: Option<Pkcs11>,
    /// `CK_INFO.libraryDescription` and manufacturer, for messages.
    pub(crate) description: String,
}

impl Module {
    /// Loads `path` and calls `C_Initialize` (OS locking). The error says which step failed.
    pub(crate) fn load(path: &str) -> Result<Module, String> {
        let file = Path::new(path);
        if !file.exists() {
            return Err(format!("{path} does not exist"));
        }
        if !file.is_file() {
            return Err(format!("{path} is not a regular file"));
        }
        let pkcs11 = Pkcs11::new(file).map_err(|e| match e {
            CkError::LibraryLoading(inner) => format!("cannot load {path}: {inner}"),
            CkError::MissingSymbol(symbol) => {
                format!("{path} is not a PKCS#11 module (no {symbol})")
            }
            other => format!("cannot load {path}: {}", tool::describe_token_error(other)),
        })?;
        pkcs11
            .initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK))
            .map_err(|e| format!("{path}: {}", tool::describe_token_error(e)))?;
        let description = match pkcs11.get_library_info() {
            Ok(info) => format!(
                "{} ({})",
                info.library_description().trim_end(),
                info.manufacturer_id().trim_end()
            ),
            Err(_) => path.to_owned(),
        };
        Ok(Module {
            pkcs11: Some(pkcs11),
            description,
        })
    }

    fn pkcs11(&self) -> Result<&Pkcs11, String> {
        self.pkcs11
            .as_ref()
            .ok_or_else(|| "the module was finalised".to_owned())
    }

    /// Every slot with a token present, in slot order.
    pub(crate) fn tokens(&self) -> Result<Vec<TokenEntry>, String> {
        let pkcs11 = self.pkcs11()?;
        let slots = pkcs11
            .get_slots_with_token()
            .map_err(tool::describe_token_error)?;
        let mut tokens = Vec::new();
        for slot in slots {
            let slot_info = pkcs11
                .get_slot_info(slot)
                .map_err(tool::describe_token_error)?;
            let info = pkcs11
                .get_token_info(slot)
                .map_err(tool::describe_token_error)?;
            let facts = TokenFacts {
                slot_id: slot.id(),
                label: info.label().trim_end().to_owned(),
                manufacturer: info.manufacturer_id().trim_end().to_owned(),
                model: info.model().trim_end().to_owned(),
                serial: info.serial_number().trim_end().to_owned(),
                slot_description: slot_info.slot_description().trim_end().to_owned(),
                slot_manufacturer: slot_info.manufacturer_id().trim_end().to_owned(),
            };
            tokens.push(TokenEntry { slot, facts, info });
        }
        Ok(tokens)
    }

    /// A read-only session on `token`.
    pub(crate) fn open_session(&self, token: &TokenEntry) -> Result<Session, String> {
        self.pkcs11()?
            .open_ro_session(token.slot)
            .map_err(tool::describe_token_error)
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        if let Some(pkcs11) = self.pkcs11.take() {
            // Sessions are closed by now (they borrow nothing, but callers drop them first);
            // a failing C_Finalize at exit changes nothing for the user.
            let _ = pkcs11.finalize();
        }
    }
}

/// A slot with a token.
pub(crate) struct TokenEntry {
    pub(crate) slot: Slot,
    pub(crate) facts: TokenFacts,
    pub(crate) info: TokenInfo,
}

impl TokenEntry {
    /// `'label' (slot N, manufacturer model, serial S)`.
    pub(crate) fn describe(&self) -> String {
        format!(
            "'{}' (slot {}, {} {}, serial {})",
            self.facts.label,
            self.facts.slot_id,
            self.facts.manufacturer,
            self.facts.model,
            self.facts.serial
        )
    }

    pub(crate) fn is_initialized(&self) -> bool {
        self.info.token_initialized()
    }
}

/// A user PIN and where it came from (for messages; never the PIN itself).
pub(crate) struct Pin {
    pub(crate) value: Zeroizing<String>,
    pub(crate) source: String,
}

/// Why a login did not happen or failed.
pub(crate) enum LoginError {
    /// The token refused the PIN (`CKR_PIN_INCORRECT`); it must not be tried again.
    WrongPin,
    /// The token's PIN state forbids trying (locked, or one more failure would lock it).
    Refused(String),
    /// Any other failure, worded.
    Failed(String),
}

/// Logs `session` in as the user once: with no PIN for a token with a PIN pad, else with
/// `pin`. Never retried; refused without a call when the token reports that the PIN is locked
/// or that the next failure would lock it (what the provider does too).
pub(crate) fn login(session: &Session, token: &TokenEntry, pin: &Pin) -> Result<(), LoginError> {
    if token.info.user_pin_locked() {
        return Err(LoginError::Refused(
            "the token reports the user PIN as locked (CKF_USER_PIN_LOCKED)".into(),
        ));
    }
    if token.info.user_pin_final_try() {
        return Err(LoginError::Refused(
            "the token reports that one more wrong PIN locks it (CKF_USER_PIN_FINAL_TRY); \
             not trying"
                .into(),
        ));
    }
    let secret = if token.info.protected_authentication_path() {
        None
    } else {
        Some(AuthPin::from(pin.value.as_str()))
    };
    match session.login(UserType::User, secret.as_ref()) {
        Ok(()) => Ok(()),
        Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(()),
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(LoginError::WrongPin),
        Err(other) => Err(LoginError::Failed(tool::describe_token_error(other))),
    }
}

/// What the helper shows and checks of one object.
#[derive(Clone, Debug)]
pub(crate) struct ObjectEntry {
    pub(crate) kind: ObjectKind,
    pub(crate) label: Option<String>,
    pub(crate) id: Option<Vec<u8>>,
    /// `RSA-2048`, `EC P-256`, `Ed25519`; for a certificate, `X.509`.
    pub(crate) key_type: String,
    /// `CKA_KEY_TYPE` is EdDSA (signs the message itself, not a digest).
    pub(crate) is_eddsa: bool,
    /// A certificate's DER (`CKA_VALUE`).
    pub(crate) certificate: Option<Vec<u8>>,
}

impl ObjectEntry {
    /// The object's URI on `token`: label, id and type.
    pub(crate) fn uri(&self, token: &TokenEntry) -> Uri {
        Uri::for_object(
            &token.facts.label,
            self.label.as_deref(),
            self.id.as_deref(),
            Some(self.kind),
        )
    }

    /// The id as hex (`-` for none).
    pub(crate) fn id_hex(&self) -> String {
        match &self.id {
            Some(id) if !id.is_empty() => id.iter().map(|b| format!("{b:02x}")).collect(),
            _ => "-".to_owned(),
        }
    }
}

fn class_of(kind: ObjectKind) -> ObjectClass {
    match kind {
        ObjectKind::Private => ObjectClass::PRIVATE_KEY,
        ObjectKind::Public => ObjectClass::PUBLIC_KEY,
        ObjectKind::Cert => ObjectClass::CERTIFICATE,
        ObjectKind::SecretKey => ObjectClass::SECRET_KEY,
        ObjectKind::Data => ObjectClass::DATA,
    }
}

fn kind_of(class: ObjectClass) -> Option<ObjectKind> {
    match class {
        ObjectClass::PRIVATE_KEY => Some(ObjectKind::Private),
        ObjectClass::PUBLIC_KEY => Some(ObjectKind::Public),
        ObjectClass::CERTIFICATE => Some(ObjectKind::Cert),
        ObjectClass::SECRET_KEY => Some(ObjectKind::SecretKey),
        ObjectClass::DATA => Some(ObjectKind::Data),
        _ => None,
    }
}

/// The objects the URI's `object`, `id` and `type` select (all of them when it names none),
/// as far as the session can see them (private objects only after login).
pub(crate) fn find_objects(session: &Session, uri: &Uri) -> Result<Vec<ObjectEntry>, String> {
    find_with(session, uri.object(), uri.id(), uri.kind())
}

/// The objects with this label, id and kind (`None`: any).
pub(crate) fn find_with(
    session: &Session,
    label: Option<&str>,
    id: Option<&[u8]>,
    kind: Option<ObjectKind>,
) -> Result<Vec<ObjectEntry>, String> {
    let mut template = Vec::new();
    if let Some(label) = label {
        template.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = id {
        template.push(Attribute::Id(id.to_vec()));
    }
    if let Some(kind) = kind {
        template.push(Attribute::Class(class_of(kind)));
    }
    let handles = session
        .find_objects(&template)
        .map_err(tool::describe_token_error)?;
    let mut found = Vec::new();
    for handle in handles {
        if let Some(entry) = describe_object(session, handle)? {
            found.push(entry);
        }
    }
    Ok(found)
}

/// Reads what the helper needs of one object; `None` for classes it does not show
/// (mechanisms, hardware features, ...).
fn describe_object(session: &Session, handle: ObjectHandle) -> Result<Option<ObjectEntry>, String> {
    let attributes = session
        .get_attributes(
            handle,
            &[
                AttributeType::Class,
                AttributeType::Label,
                AttributeType::Id,
                AttributeType::KeyType,
            ],
        )
        .map_err(tool::describe_token_error)?;
    let mut kind = None;
    let mut label = None;
    let mut id = None;
    let mut key_type = None;
    for attribute in attributes {
        match attribute {
            Attribute::Class(class) => kind = kind_of(class),
            Attribute::Label(bytes) => label = Some(String::from_utf8_lossy(&bytes).into_owned()),
            Attribute::Id(bytes) => id = Some(bytes),
            Attribute::KeyType(value) => key_type = Some(value),
            _ => {}
        }
    }
    let Some(kind) = kind else {
        return Ok(None);
    };
    let mut entry = ObjectEntry {
        kind,
        label,
        id,
        key_type: String::new(),
        is_eddsa: key_type == Some(KeyType::EC_EDWARDS),
        certificate: None,
    };
    entry.key_type = match (kind, key_type) {
        (ObjectKind::Cert, _) => {
            entry.certificate = read_value(session, handle)?;
            "X.509".to_owned()
        }
        (_, Some(KeyType::RSA)) => match read_bytes(session, handle, AttributeType::Modulus)? {
            Some(modulus) => format!("RSA-{}", significant_bits(&modulus)),
            None => "RSA".to_owned(),
        },
        (_, Some(key_type @ (KeyType::EC | KeyType::EC_EDWARDS))) => {
            let curve = read_bytes(session, handle, AttributeType::EcParams)?
                .and_then(|params| tool::curve_name(&params));
            match (key_type == KeyType::EC, curve) {
                (true, Some(curve)) => format!("EC {curve}"),
                (false, Some(curve)) => curve.to_owned(),
                (true, None) => "EC".to_owned(),
                (false, None) => "EdDSA".to_owned(),
            }
        }
        (_, Some(other)) => format!("{other}"),
        (_, None) => "-".to_owned(),
    };
    Ok(Some(entry))
}

fn read_value(session: &Session, handle: ObjectHandle) -> Result<Option<Vec<u8>>, String> {
    read_bytes(session, handle, AttributeType::Value)
}

/// One byte-string attribute; `None` when the object does not have it or hides it.
fn read_bytes(
    session: &Session,
    handle: ObjectHandle,
    attribute: AttributeType,
) -> Result<Option<Vec<u8>>, String> {
    let found = match session.get_attributes(handle, &[attribute]) {
        Ok(found) => found,
        Err(CkError::Pkcs11(RvError::AttributeSensitive | RvError::AttributeTypeInvalid, _)) => {
            return Ok(None);
        }
        Err(other) => return Err(tool::describe_token_error(other)),
    };
    Ok(found.into_iter().find_map(|a| match a {
        Attribute::Modulus(bytes) | Attribute::EcParams(bytes) | Attribute::Value(bytes) => {
            Some(bytes)
        }
        _ => None,
    }))
}

/// Bits of a big-endian unsigned number without its leading zero bits.
fn significant_bits(number: &[u8]) -> usize {
    let trimmed: Vec<u8> = number.iter().copied().skip_while(|&b| b == 0).collect();
    match trimmed.first() {
        Some(first) => trimmed.len() * 8 - first.leading_zeros() as usize,
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::significant_bits;

    #[test]
    fn modulus_sizes() {
        assert_eq!(significant_bits(&[0x00, 0x80, 0, 0]), 24);
        assert_eq!(significant_bits(&[0x7f; 256]), 2047);
        assert_eq!(significant_bits(&[0xff; 256]), 2048);
        assert_eq!(significant_bits(&[]), 0);
    }
}
