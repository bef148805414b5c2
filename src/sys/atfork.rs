//! Fork detection. PKCS#11 sessions, logins and object handles of the parent are not valid in a
//! child process (PKCS#11 3.0 §5.1, "Applications and processes"), so the first use of the
//! provider in a child must start over. A `pthread_atfork` child handler bumps a generation
//! counter; hot paths compare one atomic load instead of calling `getpid()`.

use std::sync::Once;
use std::sync::atomic::{AtomicU64, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

extern "C" fn after_fork_in_child() {
    // Only an atomic add: async-signal-safe, as an atfork child handler must be.
    GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// Installs the atfork child handler (once per process).
pub(crate) fn watch_forks() {
    REGISTER.call_once(|| {
        // SAFETY: registers a plain extern "C" function with no captured state; it only
        // performs an atomic increment, which is safe in the child after fork.
        let rc = unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
        if rc != 0 {
            log::warn!("pthread_atfork failed ({rc}); forked children will not re-initialise");
        }
    });
}

/// The number of forks between the process start and this process (0 in the original one).
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}
