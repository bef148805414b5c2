//! The panic and error boundary every `extern "C"` entry point runs its body in.

/// Runs an entry-point body that returns `crate::error::Result<T>`.
///
/// `Ok(v)` gives `v` to C. An `Err` is raised on the OpenSSL error stack, attributed to `$name`,
/// and `$fail` is returned. A panic is caught (it must never unwind into C) and raised as
/// `Error::Panic`.
macro_rules! ffi_boundary {
    ($name:expr, $fail:expr, $body:block) => {
        match ::std::panic::catch_unwind(::std::panic::AssertUnwindSafe(
            || -> $crate::error::Result<_> { $body },
        )) {
            Ok(Ok(value)) => value,
            Ok(Err(err)) => {
                $crate::ffi::core::raise_error(&err, $name);
                $fail
            }
            Err(_) => {
                $crate::ffi::core::raise_error(&$crate::error::Error::Panic, $name);
                $fail
            }
        }
    };
}
