//! The one cryptoki call that needs `unsafe`: `C_Initialize` arguments with a `pReserved`
//! string (`pkcs11-module-init-args`, used e.g. by NSS's softokn for its configuration).

use std::ffi::{CStr, c_void};
use std::ptr::NonNull;

use cryptoki::context::{CInitializeArgs, CInitializeFlags};

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
