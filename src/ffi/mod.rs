//! The FFI edge: the only module allowed to contain `unsafe`.
//!
//! Safety contract, in one place: OpenSSL calls the functions in `entry/` with the pointers its
//! provider ABI promises (provider-base(7), provider-keymgmt(7), provider-signature(7),
//! provider-storemgmt(7)). Each entry function checks pointers for NULL, turns them into Rust
//! references or slices with the helpers here (`handle`, `slice`, `params`), calls one safe
//! function, and maps its `Result` to the C return value inside `ffi_boundary!`, which also stops
//! panics at the edge. Objects handed to OpenSSL are boxed in exactly one place and freed in their
//! `free` function (see `handle`).

#[macro_use]
mod boundary;
pub(crate) mod core;
pub(crate) mod dispatch;
pub(crate) mod entry;
pub(crate) mod handle;
pub(crate) mod ossl;
pub(crate) mod params;
pub(crate) mod pkcs11;
pub(crate) mod process;
pub(crate) mod slice;
pub(crate) mod sys;
