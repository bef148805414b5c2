//! OpenSSL ASYNC jobs as seen from inside one (ASYNC_start_job(3), ASYNC_WAIT_CTX_new(3)).
//!
//! A program that sets `SSL_MODE_ASYNC` runs each handshake in a job; code inside it may pause
//! the job (`ASYNC_pause_job`) and the program resumes it once a file descriptor registered on
//! the job's wait context becomes readable (or the wait context's callback is called). This
//! module wraps those calls; it knows nothing of what is being waited for.
//!
//! Ownership: the value registered with a wait fd ([`Job::register`]) is an `Arc` whose one
//! reference belongs to the wait context, which OpenSSL drops through [`cleanup`] when it frees
//! the wait context (the connection is gone). The job's own stack never has to own anything
//! across a pause ([`Job::registered`] hands out a fresh reference after each resume), so a job
//! that is never resumed leaves nothing of ours behind.

use std::ffi::{c_int, c_void};
use std::marker::PhantomData;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;

use super::abi;
use crate::error::{Error, Result};

/// The job the calling thread runs in, with its wait context.
pub(crate) struct Job {
    wait_ctx: *mut abi::ASYNC_WAIT_CTX,
    /// Only meaningful on the thread running the job.
    _not_send: PhantomData<*const ()>,
}

/// The job the calling code runs in, if any (and if it has a wait context).
pub(crate) fn current_job() -> Option<Job> {
    // SAFETY: returns this thread's current job or NULL; no other effect.
    let job = unsafe { abi::ASYNC_get_current_job() };
    if job.is_null() {
        return None;
    }
    // SAFETY: job is the live current job.
    let wait_ctx = unsafe { abi::ASYNC_get_wait_ctx(job) };
    (!wait_ctx.is_null()).then_some(Job {
        wait_ctx,
        _not_send: PhantomData,
    })
}

/// The wait-context cleanup OpenSSL calls for a registered fd when it frees the context:
/// releases the wait context's reference to the registered value.
unsafe extern "C" fn cleanup<T: Send + Sync + 'static>(
    _ctx: *mut abi::ASYNC_WAIT_CTX,
    _key: *const c_void,
    _fd: c_int,
    custom: *mut c_void,
) {
    if !custom.is_null() {
        // SAFETY: `custom` is the pointer `register` made with Arc::into_raw for this T, and
        // OpenSSL calls the cleanup once, when it frees the wait context.
        drop(unsafe { Arc::from_raw(custom.cast::<T>().cast_const()) });
    }
}

impl Job {
    /// Registers `fd` under `key` for the program to poll, with `value` kept alive by the wait
    /// context until [`Job::unregister`] or until OpenSSL frees the context.
    pub(crate) fn register<T: Send + Sync + 'static>(
        &self,
        key: &'static u8,
        fd: RawFd,
        value: Arc<T>,
    ) -> Result<()> {
        let custom = Arc::into_raw(value).cast_mut().cast::<c_void>();
        // SAFETY: the wait context is live while the job runs; `key` is a static address
        // unique to this provider; the cleanup matches `custom`'s type.
        let ok = unsafe {
            abi::ASYNC_WAIT_CTX_set_wait_fd(
                self.wait_ctx,
                std::ptr::from_ref(key).cast(),
                fd,
                custom,
                Some(cleanup::<T>),
            )
        };
        if ok == 1 {
            Ok(())
        } else {
            // SAFETY: not registered, so this is still the only owner of the reference.
            drop(unsafe { Arc::from_raw(custom.cast::<T>().cast_const()) });
            Err(Error::Openssl("ASYNC_WAIT_CTX_set_wait_fd"))
        }
    }

    /// A new reference to the value registered under `key`, if there is one.
    ///
    /// The caller must use the same `T` as the registration under `key` (each key is private to
    /// one use in this crate).
    pub(crate) fn registered<T: Send + Sync + 'static>(&self, key: &'static u8) -> Option<Arc<T>> {
        let mut fd: c_int = -1;
        let mut custom: *mut c_void = std::ptr::null_mut();
        // SAFETY: live wait context; fd and custom are writable.
        let found = unsafe {
            abi::ASYNC_WAIT_CTX_get_fd(
                self.wait_ctx,
                std::ptr::from_ref(key).cast(),
                &mut fd,
                &mut custom,
            )
        };
        if found != 1 || custom.is_null() {
            return None;
        }
        let value = custom.cast::<T>().cast_const();
        // SAFETY: `value` came from Arc::into_raw in `register` and the wait context still owns
        // that reference (it is registered), so the count is at least one.
        unsafe { Arc::increment_strong_count(value) };
        // SAFETY: the reference just added is handed to the caller.
        Some(unsafe { Arc::from_raw(value) })
    }

    /// The callback the program asked to be woken with instead of polling fds, if any.
    pub(crate) fn callback(&self) -> Option<Wakeup> {
        let mut callback: abi::ASYNC_callback_fn = None;
        let mut arg: *mut c_void = std::ptr::null_mut();
        // SAFETY: live wait context; both out-pointers writable.
        let ok =
            unsafe { abi::ASYNC_WAIT_CTX_get_callback(self.wait_ctx, &mut callback, &mut arg) };
        match (ok, callback) {
            (1, Some(function)) => Some(Wakeup { function, arg }),
            _ => None,
        }
    }

    /// Pauses the job; returns when the program resumes it (which may be before the work is
    /// done: check, and pause again).
    pub(crate) fn pause(&self) {
        // SAFETY: called inside the job this value was made for. The job's stack holds nothing
        // of ours that needs dropping (see the module comment).
        unsafe { abi::ASYNC_pause_job() };
    }
}

/// The program's wake-up callback (`ASYNC_WAIT_CTX_set_callback`) and its argument.
pub(crate) struct Wakeup {
    function: unsafe extern "C" fn(*mut c_void) -> c_int,
    arg: *mut c_void,
}

// SAFETY: the callback exists to be called from the thread that finishes the work (the
// program set it knowing that, ASYNC_WAIT_CTX_set_callback(3)); the argument is the program's.
unsafe impl Send for Wakeup {}
// SAFETY: as above; calling it takes only `&self`.
unsafe impl Sync for Wakeup {}

impl Wakeup {
    /// Calls the program's callback.
    pub(crate) fn call(&self) {
        // SAFETY: the program's callback with the argument it registered.
        unsafe { (self.function)(self.arg) };
    }
}

/// An `eventfd` a worker writes to when the job's work is done.
pub(crate) struct EventFd(OwnedFd);

impl EventFd {
    pub(crate) fn new() -> Result<EventFd> {
        // SAFETY: creates a new descriptor or returns -1.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(Error::Module(format!(
                "eventfd: {}",
                std::io::Error::last_os_error()
            )));
        }
        // SAFETY: fd is a fresh descriptor owned by nobody else.
        Ok(EventFd(unsafe { OwnedFd::from_raw_fd(fd) }))
    }

    pub(crate) fn raw(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// Makes the descriptor readable.
    pub(crate) fn signal(&self) {
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a live u64 to our own descriptor; an eventfd write only
        // fails on counter overflow, which one write per request cannot reach.
        unsafe { libc::write(self.0.as_raw_fd(), std::ptr::from_ref(&one).cast(), 8) };
    }

    /// Makes the descriptor unreadable again (a level-triggered poller would wake forever).
    pub(crate) fn drain(&self) {
        let mut count: u64 = 0;
        // SAFETY: reads 8 bytes into a live u64 from our own non-blocking descriptor.
        unsafe { libc::read(self.0.as_raw_fd(), std::ptr::from_mut(&mut count).cast(), 8) };
    }
}
