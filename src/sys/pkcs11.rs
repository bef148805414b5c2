//! The PKCS#11 calls that need `unsafe` beyond what cryptoki wraps: `C_Initialize` arguments
//! with a `pReserved` string (`pkcs11-module-init-args`, used e.g. by NSS's softokn for its
//! configuration), and direct `C_SignInit`/`C_Sign` (see [`SignFunctions`]).

use std::ffi::{CStr, CString, c_void};
use std::ptr::NonNull;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function};
use cryptoki::error::{Rv, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::object::ObjectHandle;
use cryptoki::session::Session;
use cryptoki_sys::{
    CK_BYTE, CK_FUNCTION_LIST, CK_MECHANISM, CK_OBJECT_HANDLE, CK_RV, CK_SESSION_HANDLE, CK_ULONG,
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
}

impl SignFunctions {
    /// The entry points of the module at `path`, which cryptoki has already loaded (so this
    /// finds the same instance and never loads a second copy).
    pub(crate) fn of_loaded_module(path: &str) -> Result<SignFunctions> {
        let missing = |what: &str| Error::Module(format!("{path}: {what}"));
        let c_path = CString::new(path).map_err(|_| missing("path contains a NUL byte"))?;
        // SAFETY: c_path is a valid C string; RTLD_NOLOAD only takes a new reference to a
        // library already in the process and runs no initialisers. The reference is never
        // dropped, so the function pointers below stay valid for the life of the process.
        let lib = unsafe { libc::dlopen(c_path.as_ptr(), libc::RTLD_NOW | libc::RTLD_NOLOAD) };
        if lib.is_null() {
            return Err(missing("not loaded"));
        }
        // SAFETY: lib is a live handle and the symbol name a valid C string.
        let symbol = unsafe { libc::dlsym(lib, c"C_GetFunctionList".as_ptr()) };
        if symbol.is_null() {
            return Err(missing("no C_GetFunctionList"));
        }
        // SAFETY: every PKCS#11 module exports C_GetFunctionList with this signature
        // (PKCS#11 3.0 §5.2).
        let get_function_list: unsafe extern "C" fn(*mut *mut CK_FUNCTION_LIST) -> CK_RV =
            unsafe { std::mem::transmute(symbol) };
        let mut list: *mut CK_FUNCTION_LIST = std::ptr::null_mut();
        // SAFETY: the module writes a pointer to its static function list into `list`; it is
        // initialised already, and C_GetFunctionList may be called at any time.
        let rv = unsafe { get_function_list(&mut list) };
        if rv != CKR_OK || list.is_null() {
            return Err(missing("C_GetFunctionList failed"));
        }
        // SAFETY: list points at the module's function list, valid while the module is loaded
        // (for the rest of the process, see above).
        let list = unsafe { &*list };
        Ok(SignFunctions {
            sign_init: list.C_SignInit.ok_or_else(|| missing("no C_SignInit"))?,
            sign: list.C_Sign.ok_or_else(|| missing("no C_Sign"))?,
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
