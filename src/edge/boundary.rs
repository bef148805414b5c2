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
                $crate::sys::core::raise_error(&err, $name);
                $fail
            }
            Err(_) => {
                $crate::sys::core::raise_error(&$crate::error::Error::Panic, $name);
                $fail
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use std::ffi::c_int;

    fn entry_that_panics() -> c_int {
        ffi_boundary!("entry_that_panics", 0, {
            let values: Vec<c_int> = Vec::new();
            // An out-of-bounds index panics; the boundary must turn it into the failure value.
            Ok(values[3])
        })
    }

    fn entry_that_fails() -> c_int {
        ffi_boundary!("entry_that_fails", -1, {
            Err(crate::error::Error::NullArg("test"))
        })
    }

    #[test]
    fn panics_and_errors_become_the_failure_value() {
        let default_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {})); // keep the expected panic out of the output
        let result = entry_that_panics();
        std::panic::set_hook(default_hook);
        assert_eq!(result, 0);
        assert_eq!(entry_that_fails(), -1);
    }
}
