//! The PKCS#11 calls that need `unsafe` beyond what cryptoki wraps: `C_Initialize` arguments
//! with a `pReserved` string (`pkcs11-module-init-args`, used e.g. by NSS's softokn for its
//! configuration), direct `C_SignInit`/`C_Sign` and `C_DecryptInit`/`C_Decrypt` (see
//! [`SignFunctions`], [`DecryptFunctions`]), and a direct `C_GetTokenInfo` for tokens whose
//! answer cryptoki cannot parse ([`RawTokenInfo`]).

use std::ffi::{CStr, CString, c_void};
use std::ptr::NonNull;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function};
use cryptoki::error::{Rv, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki::slot::Slot;
use cryptoki_sys::{
    CK_BYTE, CK_FLAGS, CK_FUNCTION_LIST, CK_INTERFACE, CK_MECHANISM, CK_OBJECT_HANDLE, CK_RV,
    CK_SESSION_HANDLE, CK_SLOT_ID, CK_TOKEN_INFO, CK_ULONG, CK_UNAVAILABLE_INFORMATION,
    CK_UTF8CHAR, CK_VERSION, CKF_LOGIN_REQUIRED, CKF_PROTECTED_AUTHENTICATION_PATH,
    CKF_TOKEN_INITIALIZED, CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED, CKF_WRITE_PROTECTED,
    CKR_OK,
};

use crate::error::{Error, Result};

/// `C_Initialize` arguments with OS locking and `pReserved` pointing at `text`.
///
/// The returned value borrows `text` by raw pointer: keep `text` alive until `C_Initialize`
/// returns (the lifetime ties them together for the caller).
pub(crate) fn init_args_with_reserved(text: &CStr) -> CInitializeArgs {
    let reserved = NonNull::from(text).cast::<c_void>();
    // SAFETY: `reserved` points at a NUL-terminated string the caller keeps alive across
    // C_Initialize, which is the only reader of pReserved; modules that use it expect a string.
    unsafe { CInitializeArgs::new_with_reserved(CInitializeFlags::OS_LOCKING_OK, reserved) }
}

/// Loads the module at `path` and checks the function list it hands out, before cryptoki
/// takes it: cryptoki reads the list `C_GetInterface` or `C_GetFunctionList` returns without
/// checking it for NULL, so a module that answers `CKR_OK` and no list would crash the process.
/// The function list must also have the entries every use of a token needs.
///
/// The library stays loaded for the rest of the process (as the provider keeps every module),
/// so cryptoki's own load finds the same instance.
pub(crate) fn check_module(path: &str) -> Result<()> {
    let bad = |what: String| Error::Module(format!("PKCS#11 module '{path}': {what}"));
    let c_path = CString::new(path).map_err(|_| bad("the path contains a NUL byte".into()))?;
    // SAFETY: c_path is a valid C string. Loading runs the library's initialisers, as
    // cryptoki's load of the same path would; the handle is never closed.
    let lib = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if lib.is_null() {
        // SAFETY: dlerror returns NULL or a C string valid until the next dl* call.
        let reason = unsafe { libc::dlerror() };
        let reason = if reason.is_null() {
            "unknown reason".to_owned()
        } else {
            // SAFETY: non-NULL, NUL-terminated, read at once.
            unsafe { CStr::from_ptr(reason) }
                .to_string_lossy()
                .into_owned()
        };
        return Err(bad(format!("cannot be loaded: {reason}")));
    }
    // SAFETY: lib is a live handle and the symbol name a valid C string.
    let get_interface = unsafe { libc::dlsym(lib, c"C_GetInterface".as_ptr()) };
    if !get_interface.is_null() {
        // SAFETY: a PKCS#11 3.x module exports C_GetInterface with this signature (§5.2).
        let get_interface: unsafe extern "C" fn(
            *mut CK_UTF8CHAR,
            *mut CK_VERSION,
            *mut *mut CK_INTERFACE,
            CK_FLAGS,
        ) -> CK_RV = unsafe { std::mem::transmute(get_interface) };
        let mut interface: *mut CK_INTERFACE = std::ptr::null_mut();
        // SAFETY: NULL name and version ask for the default interface; the module writes a
        // pointer to its static interface into `interface`.
        let rv = unsafe {
            get_interface(
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut interface,
                0,
            )
        };
        // cryptoki fails cleanly on an error here, and falls back to C_GetFunctionList when the
        // interface is NULL; only a list it would read must be checked.
        if rv == CKR_OK {
            // SAFETY: NULL or a pointer to the module's interface, valid while it is loaded.
            if let Some(interface) = unsafe { interface.as_ref() } {
                let list = interface.pFunctionList.cast::<CK_FUNCTION_LIST>();
                // SAFETY: NULL or the module's function list (every version starts with the
                // 2.40 layout), valid while it is loaded.
                let list = unsafe { list.as_ref() }.ok_or_else(|| {
                    bad("C_GetInterface returned an interface without a function list".into())
                })?;
                return check_entries(list).map_err(bad);
            }
        }
    }
    // SAFETY: as above.
    let symbol = unsafe { libc::dlsym(lib, c"C_GetFunctionList".as_ptr()) };
    if symbol.is_null() {
        return Err(bad(
            "it exports no C_GetFunctionList (is it a PKCS#11 module?)".into(),
        ));
    }
    // SAFETY: every PKCS#11 module exports C_GetFunctionList with this signature (§5.2).
    let get_function_list: unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV =
        unsafe { std::mem::transmute(symbol) };
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: the module writes a pointer to its static function list into `list`.
    let rv = unsafe { get_function_list(&mut list) };
    if rv != CKR_OK {
        return Err(bad(format!("C_GetFunctionList failed with {rv:#x}")));
    }
    // SAFETY: NULL or the module's function list, valid while it is loaded (for ever).
    let list = unsafe { list.as_ref() }
        .ok_or_else(|| bad("C_GetFunctionList returned CKR_OK but no function list".into()))?;
    check_entries(list).map_err(bad)
}

/// The entries every use of a token goes through must be there.
fn check_entries(list: &CK_FUNCTION_LIST) -> std::result::Result<(), String> {
    let required = [
        ("C_Initialize", list.C_Initialize.is_some()),
        ("C_GetInfo", list.C_GetInfo.is_some()),
        ("C_GetSlotList", list.C_GetSlotList.is_some()),
        ("C_GetSlotInfo", list.C_GetSlotInfo.is_some()),
        ("C_GetTokenInfo", list.C_GetTokenInfo.is_some()),
        ("C_OpenSession", list.C_OpenSession.is_some()),
        ("C_CloseSession", list.C_CloseSession.is_some()),
        ("C_FindObjectsInit", list.C_FindObjectsInit.is_some()),
        ("C_FindObjects", list.C_FindObjects.is_some()),
        ("C_FindObjectsFinal", list.C_FindObjectsFinal.is_some()),
        ("C_GetAttributeValue", list.C_GetAttributeValue.is_some()),
    ];
    let missing: Vec<&str> = required
        .iter()
        .filter(|(_, present)| !present)
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "its function list has no {} (NULL entries)",
            missing.join(", ")
        ))
    }
}

/// The function list of the module at `path`, which cryptoki has already loaded: found through
/// the library already in the process (never a second copy), valid for the rest of the process.
/// It is the list cryptoki uses: `C_GetInterface`'s default interface where the module exports
/// it, else `C_GetFunctionList`.
///
/// Some modules hand out a separate instance, with its own initialisation state, per request
/// (p11-kit's client and proxy modules wrap the module anew on every
/// `C_GetInterface`/`C_GetFunctionList`): a list asked for here would never have seen
/// cryptoki's `C_Initialize` (`CKR_CRYPTOKI_NOT_INITIALIZED`). Two requests that give different
/// entry points show that; then this fails, and the direct calls are left to cryptoki's list.
pub(crate) fn loaded_function_list(path: &str) -> Result<&'static CK_FUNCTION_LIST> {
    let missing = |what: &str| Error::Module(format!("{path}: {what}"));
    let c_path = CString::new(path).map_err(|_| missing("path contains a NUL byte"))?;
    // SAFETY: c_path is a valid C string; RTLD_NOLOAD only takes a new reference to a
    // library already in the process and runs no initialisers. The reference is never
    // dropped, so the function list below stays valid for the life of the process.
    let lib = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
    if lib.is_null() {
        return Err(missing("not loaded"));
    }
    let first = current_function_list(lib).map_err(|what| missing(&what))?;
    let again = current_function_list(lib).map_err(|what| missing(&what))?;
    let entries = |list: &CK_FUNCTION_LIST| {
        [
            list.C_GetTokenInfo.map(|f| f as usize),
            list.C_SignInit.map(|f| f as usize),
            list.C_Sign.map(|f| f as usize),
            list.C_DecryptInit.map(|f| f as usize),
            list.C_GetMechanismList.map(|f| f as usize),
            list.C_GetAttributeValue.map(|f| f as usize),
        ]
    };
    if entries(first) != entries(again) {
        return Err(missing(
            "it hands out a separate instance per function-list request (as p11-kit's client \
             and proxy modules do)",
        ));
    }
    Ok(first)
}

/// The function list the loaded library `lib` hands out now, asked for the way cryptoki asks.
fn current_function_list(
    lib: *mut c_void,
) -> std::result::Result<&'static CK_FUNCTION_LIST, String> {
    let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
    // SAFETY: lib is a live handle and the symbol name a valid C string.
    let get_interface = unsafe { libc::dlsym(lib, c"C_GetInterface".as_ptr()) };
    if !get_interface.is_null() {
        // SAFETY: a PKCS#11 3.x module exports C_GetInterface with this signature (§5.2).
        let get_interface: unsafe extern "C" fn(
            *mut CK_UTF8CHAR,
            *mut CK_VERSION,
            *mut *mut CK_INTERFACE,
            CK_FLAGS,
        ) -> CK_RV = unsafe { std::mem::transmute(get_interface) };
        let mut interface: *mut CK_INTERFACE = std::ptr::null_mut();
        // SAFETY: NULL name and version ask for the default interface (what cryptoki asks
        // for); the module writes a pointer to an interface it keeps into `interface`.
        let rv = unsafe {
            get_interface(
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                &mut interface,
                0,
            )
        };
        if rv == CKR_OK {
            // SAFETY: NULL or a pointer to the module's interface, valid while it is loaded.
            if let Some(interface) = unsafe { interface.as_ref() } {
                list = interface.pFunctionList.cast::<CK_FUNCTION_LIST>();
            }
        }
    }
    if list.is_null() {
        // SAFETY: lib is a live handle and the symbol name a valid C string.
        let symbol = unsafe { libc::dlsym(lib, c"C_GetFunctionList".as_ptr()) };
        if symbol.is_null() {
            return Err("no C_GetFunctionList".into());
        }
        // SAFETY: every PKCS#11 module exports C_GetFunctionList with this signature
        // (PKCS#11 3.0 §5.2).
        let get_function_list: unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV =
            unsafe { std::mem::transmute(symbol) };
        // SAFETY: the module writes a pointer to its function list into `list`; it is
        // initialised already, and C_GetFunctionList may be called at any time.
        let rv = unsafe { get_function_list(&mut list) };
        if rv != CKR_OK {
            return Err("C_GetFunctionList failed".into());
        }
    }
    // SAFETY: NULL or the module's function list (every version starts with the 2.40 layout),
    // valid while the module is loaded (for the rest of the process: the library is never
    // closed).
    unsafe { list.as_ref() }.ok_or_else(|| "no function list".into())
}

/// The module's own `C_SignInit` and `C_Sign`, called directly for what cryptoki's
/// `Session::sign` cannot do: a context-specific login between the two (keys with
/// `CKA_ALWAYS_AUTHENTICATE`, PKCS#11 3.0 §5.1), and a single `C_Sign` into a buffer of the
/// size the key's signatures have, instead of a length query first (one call less per
/// signature).
pub(crate) struct SignFunctions {
    sign_init:
        unsafe extern "C" fn(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE) -> CK_RV,
    sign: unsafe extern "C" fn(
        CK_SESSION_HANDLE,
        *mut CK_BYTE,
        CK_ULONG,
        *mut CK_BYTE,
        *mut CK_ULONG,
    ) -> CK_RV,
    get_token_info: Option<unsafe extern "C" fn(CK_SLOT_ID, *mut CK_TOKEN_INFO) -> CK_RV>,
}

/// The fields of `CK_TOKEN_INFO` the provider uses, from the module's own `C_GetTokenInfo`:
/// blank-padded strings trimmed, flags as booleans, `utcTime` left out.
pub(crate) struct RawTokenInfo {
    pub(crate) label: String,
    pub(crate) manufacturer: String,
    pub(crate) model: String,
    pub(crate) serial: String,
    pub(crate) initialized: bool,
    pub(crate) write_protected: bool,
    pub(crate) login_required: bool,
    pub(crate) protected_path: bool,
    pub(crate) user_pin_locked: bool,
    pub(crate) user_pin_final_try: bool,
    /// `ulMaxSessionCount`; `None` when unlimited (0) or unknown (`CK_UNAVAILABLE_INFORMATION`).
    pub(crate) max_session_count: Option<usize>,
}

impl SignFunctions {
    /// The entry points of the module at `path`, which cryptoki has already loaded (see
    /// [`loaded_function_list`]: fails for modules with an instance per request, and then
    /// signing goes through cryptoki's own list).
    pub(crate) fn of_loaded_module(path: &str) -> Result<SignFunctions> {
        let missing = |what: &str| Error::Module(format!("{path}: {what}"));
        let list = loaded_function_list(path)?;
        Ok(SignFunctions {
            sign_init: list.C_SignInit.ok_or_else(|| missing("no C_SignInit"))?,
            sign: list.C_Sign.ok_or_else(|| missing("no C_Sign"))?,
            get_token_info: list.C_GetTokenInfo,
        })
    }

    /// `C_GetTokenInfo` of `slot`, called directly: for tokens whose answer cryptoki refuses
    /// to parse (opencryptoki 3.8 sets `CKF_CLOCK_ON_TOKEN` and writes `utcTime` as
    /// `hh:mm:ss`, not `YYYYMMDDhhmmss00`), since the provider never reads `utcTime`.
    pub(crate) fn token_info(&self, slot: Slot) -> Result<RawTokenInfo> {
        let get_token_info = self
            .get_token_info
            .ok_or_else(|| Error::Module("the module has no C_GetTokenInfo".into()))?;
        // SAFETY: CK_TOKEN_INFO is plain old data (byte arrays and integers): all zeroes is a
        // valid value, which the module overwrites.
        let mut info: CK_TOKEN_INFO = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a CK_TOKEN_INFO the module fills in; the slot id is a number the
        // module checks.
        let rv = unsafe { get_token_info(CK_SLOT_ID::from(slot), &mut info) };
        Rv::from(rv).into_result(Function::GetTokenInfo)?;
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).trim_end().to_string();
        let flag = |bit: CK_FLAGS| info.flags & bit != 0;
        Ok(RawTokenInfo {
            label: text(&info.label),
            manufacturer: text(&info.manufacturerID),
            model: text(&info.model),
            serial: text(&info.serialNumber),
            initialized: flag(CKF_TOKEN_INITIALIZED),
            write_protected: flag(CKF_WRITE_PROTECTED),
            login_required: flag(CKF_LOGIN_REQUIRED),
            protected_path: flag(CKF_PROTECTED_AUTHENTICATION_PATH),
            user_pin_locked: flag(CKF_USER_PIN_LOCKED),
            user_pin_final_try: flag(CKF_USER_PIN_FINAL_TRY),
            max_session_count: match info.ulMaxSessionCount {
                0 | CK_UNAVAILABLE_INFORMATION => None,
                n => usize::try_from(n).ok(),
            },
        })
    }

    /// `C_SignInit` of `key` with `mechanism` on `session`.
    pub(crate) fn sign_init(
        &self,
        session: &Session,
        mechanism: &Mechanism<'_>,
        key: ObjectHandle,
    ) -> Result<()> {
        let mut mechanism = CK_MECHANISM::from(mechanism);
        // SAFETY: session and key are handles of this module; `mechanism` (and the parameter
        // block it points at, owned by the caller's Mechanism) lives across the call.
        let rv = unsafe { (self.sign_init)(session.handle(), &mut mechanism, key.handle()) };
        Ok(Rv::from(rv).into_result(Function::SignInit)?)
    }

    /// One `C_Sign` of `data` (after `sign_init`) into a buffer of `expected_len` bytes, and a
    /// second one if the token reports a bigger size.
    pub(crate) fn sign(
        &self,
        session: &Session,
        data: &[u8],
        expected_len: usize,
    ) -> Result<Vec<u8>> {
        let data_len = CK_ULONG::try_from(data.len())
            .map_err(|_| Error::BadParam("data to sign is too long".into()))?;
        let mut signature = vec![0u8; expected_len.max(1)];
        for _attempt in 0..2 {
            let mut len = CK_ULONG::try_from(signature.len()).unwrap_or(CK_ULONG::MAX);
            // SAFETY: C_Sign reads `data_len` bytes from data (it does not write through the
            // pointer; PKCS#11 declares it non-const only for history) and writes at most
            // `len` bytes into signature, then stores the length it wrote (or needs) in len.
            let rv = unsafe {
                (self.sign)(
                    session.handle(),
                    data.as_ptr().cast_mut(),
                    data_len,
                    signature.as_mut_ptr(),
                    &mut len,
                )
            };
            let needed = usize::try_from(len).unwrap_or(usize::MAX);
            match Rv::from(rv) {
                Rv::Ok if needed <= signature.len() => {
                    signature.truncate(needed);
                    return Ok(signature);
                }
                // The operation stays active after CKR_BUFFER_TOO_SMALL (PKCS#11 3.0 §5.2):
                // ask again with the size the token wants.
                Rv::Error(RvError::BufferTooSmall) if needed > signature.len() => {
                    signature = vec![0u8; needed];
                }
                other => other.into_result(Function::Sign)?,
            }
        }
        Err(Error::Module(
            "C_Sign returned an inconsistent signature length".into(),
        ))
    }
}

/// The module's own `C_DecryptInit` and `C_Decrypt`, for what cryptoki's `Session::decrypt`
/// cannot do: a context-specific login between the two (keys with `CKA_ALWAYS_AUTHENTICATE`),
/// and one `C_Decrypt` into a buffer of the modulus size instead of a length query first.
pub(crate) struct DecryptFunctions {
    decrypt_init:
        unsafe extern "C" fn(CK_SESSION_HANDLE, *mut CK_MECHANISM, CK_OBJECT_HANDLE) -> CK_RV,
    decrypt: unsafe extern "C" fn(
        CK_SESSION_HANDLE,
        *mut CK_BYTE,
        CK_ULONG,
        *mut CK_BYTE,
        *mut CK_ULONG,
    ) -> CK_RV,
}

impl DecryptFunctions {
    /// The entry points of the module at `path`, which cryptoki has already loaded.
    pub(crate) fn of_loaded_module(path: &str) -> Result<DecryptFunctions> {
        let list = loaded_function_list(path)?;
        let missing = |what: &str| Error::Module(format!("{path}: {what}"));
        Ok(DecryptFunctions {
            decrypt_init: list
                .C_DecryptInit
                .ok_or_else(|| missing("no C_DecryptInit"))?,
            decrypt: list.C_Decrypt.ok_or_else(|| missing("no C_Decrypt"))?,
        })
    }

    /// `C_DecryptInit` of `key` with `mechanism` on `session`.
    pub(crate) fn decrypt_init(
        &self,
        session: &Session,
        mechanism: &Mechanism<'_>,
        key: ObjectHandle,
    ) -> Result<()> {
        let mut mechanism = CK_MECHANISM::from(mechanism);
        // SAFETY: session and key are handles of this module; `mechanism` (and the parameter
        // block it points at, owned by the caller's Mechanism) lives across the call.
        let rv = unsafe { (self.decrypt_init)(session.handle(), &mut mechanism, key.handle()) };
        Ok(Rv::from(rv).into_result(Function::DecryptInit)?)
    }

    /// One `C_Decrypt` of `data` (after `decrypt_init`) into a buffer of `expected_len`
    /// bytes, and a second one if the token reports a bigger size. The buffer is wiped when
    /// the token fails, so no partial plaintext is left behind.
    pub(crate) fn decrypt(
        &self,
        session: &Session,
        data: &[u8],
        expected_len: usize,
    ) -> Result<Vec<u8>> {
        let data_len = CK_ULONG::try_from(data.len())
            .map_err(|_| Error::BadParam("data to decrypt is too long".into()))?;
        let mut plain = vec![0u8; expected_len.max(1)];
        for _attempt in 0..2 {
            let mut len = CK_ULONG::try_from(plain.len()).unwrap_or(CK_ULONG::MAX);
            // SAFETY: C_Decrypt reads `data_len` bytes from data (the pointer is non-const only
            // for history) and writes at most `len` bytes into plain, then stores the length
            // it wrote (or needs) in len.
            let rv = unsafe {
                (self.decrypt)(
                    session.handle(),
                    data.as_ptr().cast_mut(),
                    data_len,
                    plain.as_mut_ptr(),
                    &mut len,
                )
            };
            let needed = usize::try_from(len).unwrap_or(usize::MAX);
            match Rv::from(rv) {
                Rv::Ok if needed <= plain.len() => {
                    plain.truncate(needed);
                    return Ok(plain);
                }
                // The operation stays active after CKR_BUFFER_TOO_SMALL (PKCS#11 3.0 §5.2).
                Rv::Error(RvError::BufferTooSmall) if needed > plain.len() => {
                    plain.fill(0);
                    plain = vec![0u8; needed];
                }
                other => {
                    plain.fill(0);
                    other.into_result(Function::Decrypt)?;
                }
            }
        }
        plain.fill(0);
        Err(Error::Module(
            "C_Decrypt returned an inconsistent plaintext length".into(),
        ))
    }
}
