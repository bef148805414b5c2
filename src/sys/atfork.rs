//! Fork handling. PKCS#11 sessions, logins and object handles of the parent are not valid in a
//! child process (PKCS#11 3.0 §5.1, "Applications and processes"), so the first use of the
//! provider in a child must start over; and a child must never inherit a module lock that a
//! thread of the parent held in the middle of a call (the thread does not exist in the child,
//! so the lock is never released and the child hangs in its first call to the module).
//!
//! Two mechanisms, both installed with one `pthread_atfork`:
//! - a generation counter, bumped in the child; hot paths compare one atomic load instead of
//!   calling `getpid()`;
//! - a gate around token calls ([`TokenCall`]): the prepare handler closes it, waits (bounded)
//!   until the calls in flight on other threads have returned, and holds new ones at the gate
//!   until the parent and child handlers open it again. So `fork()` happens between token
//!   calls, never in the middle of one.

use std::cell::{Cell, UnsafeCell};
use std::sync::Once;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

static GENERATION: AtomicU64 = AtomicU64::new(0);
static REGISTER: Once = Once::new();

/// Token calls in flight in this process (all threads).
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
/// Set by the prepare handler while a fork is under way: new calls wait at the gate.
static FORKING: AtomicBool = AtomicBool::new(false);
/// Longest wait of the prepare handler for calls in flight (a hung token must not hang fork).
const QUIESCE_LIMIT_NS: i64 = 10_000_000_000;

thread_local! {
    /// Token calls this thread is inside (nested calls count once each).
    static DEPTH: Cell<usize> = const { Cell::new(0) };
}

/// The mutex and condition variable of the gate, as plain pthread objects: the prepare handler
/// keeps the mutex locked across `fork()` and each side unlocks it afterwards, which no RAII
/// lock type allows.
struct Gate {
    mutex: UnsafeCell<libc::pthread_mutex_t>,
    cond: UnsafeCell<libc::pthread_cond_t>,
}

// SAFETY: the pthread objects are only used through the pthread functions, which synchronise
// between threads themselves.
unsafe impl Sync for Gate {}

static GATE: Gate = Gate {
    mutex: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
    cond: UnsafeCell::new(libc::PTHREAD_COND_INITIALIZER),
};

impl Gate {
    fn lock(&self) {
        // SAFETY: a statically initialised mutex, never destroyed.
        unsafe { libc::pthread_mutex_lock(self.mutex.get()) };
    }

    fn unlock(&self) {
        // SAFETY: called only by the thread that locked it (or its copy in the child).
        unsafe { libc::pthread_mutex_unlock(self.mutex.get()) };
    }

    fn broadcast(&self) {
        // SAFETY: a statically initialised condition variable, never destroyed.
        unsafe { libc::pthread_cond_broadcast(self.cond.get()) };
    }

    /// Waits on the condition (the mutex is locked by the caller) until woken or `deadline`.
    fn wait_until(&self, deadline: &libc::timespec) {
        // SAFETY: the caller holds the mutex; both objects are live statics.
        unsafe { libc::pthread_cond_timedwait(self.cond.get(), self.mutex.get(), deadline) };
    }
}

/// The realtime clock plus `ns` nanoseconds (the clock `pthread_cond_timedwait` uses).
fn realtime_after(ns: i64) -> libc::timespec {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: writes one timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut now) };
    let total = now.tv_nsec + ns % 1_000_000_000;
    libc::timespec {
        tv_sec: now.tv_sec + (ns / 1_000_000_000) as libc::time_t + total / 1_000_000_000,
        tv_nsec: total % 1_000_000_000,
    }
}

fn is_past(deadline: &libc::timespec) -> bool {
    let now = realtime_after(0);
    (now.tv_sec, now.tv_nsec) >= (deadline.tv_sec, deadline.tv_nsec)
}

extern "C" fn before_fork() {
    GATE.lock();
    FORKING.store(true, Ordering::SeqCst);
    // Calls this very thread is inside (fork from a callback) cannot finish before it forks.
    let own = DEPTH.with(Cell::get);
    let deadline = realtime_after(QUIESCE_LIMIT_NS);
    while IN_FLIGHT.load(Ordering::SeqCst) > own && !is_past(&deadline) {
        // A returning call broadcasts under the mutex; the short wait only bounds a lost race.
        let step = realtime_after(100_000_000);
        GATE.wait_until(&step);
    }
    // The mutex stays locked across fork(): nobody else can be inside the gate's bookkeeping.
}

extern "C" fn after_fork_in_parent() {
    FORKING.store(false, Ordering::SeqCst);
    GATE.broadcast();
    GATE.unlock();
}

extern "C" fn after_fork_in_child() {
    GENERATION.fetch_add(1, Ordering::SeqCst);
    // Only this thread exists now: the other threads' calls (and waits) are gone.
    IN_FLIGHT.store(DEPTH.with(Cell::get), Ordering::SeqCst);
    FORKING.store(false, Ordering::SeqCst);
    // SAFETY: the parent's waiters do not exist in the child; a fresh condition variable
    // replaces one whose wait queue may name them. The mutex was locked by this thread (its
    // copy in the parent) in before_fork.
    unsafe { libc::pthread_cond_init(GATE.cond.get(), std::ptr::null()) };
    GATE.unlock();
}

/// Installs the atfork handlers (once per process).
pub(crate) fn watch_forks() {
    REGISTER.call_once(|| {
        // SAFETY: registers plain extern "C" functions with no captured state; they use only
        // atomics, thread-locals without destructors and pthread mutex/condition calls.
        let rc = unsafe {
            libc::pthread_atfork(
                Some(before_fork),
                Some(after_fork_in_parent),
                Some(after_fork_in_child),
            )
        };
        if rc != 0 {
            log::warn!("pthread_atfork failed ({rc}); forked children will not re-initialise");
        }
    });
}

/// The number of forks between the process start and this process (0 in the original one).
pub(crate) fn generation() -> u64 {
    GENERATION.load(Ordering::Acquire)
}

/// A token call in flight: while one exists, `fork()` waits for it. Held by whoever talks to
/// the module (a pooled session, a login, module loading); dropping it lets a waiting fork go.
pub(crate) struct TokenCall {
    /// Not `Send`: the depth it counts is this thread's.
    _not_send: std::marker::PhantomData<*const ()>,
}

impl TokenCall {
    /// Enters the gate, waiting while a fork is being prepared.
    pub(crate) fn enter() -> TokenCall {
        let nested = DEPTH.with(|d| {
            let depth = d.get();
            d.set(depth + 1);
            depth > 0
        });
        loop {
            IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
            // A nested call is part of one already in flight, which a fork waits for anyway.
            if nested || !FORKING.load(Ordering::SeqCst) {
                break;
            }
            // A fork is being prepared: step back out and wait until it is done.
            IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
            GATE.lock();
            GATE.broadcast();
            while FORKING.load(Ordering::SeqCst) {
                GATE.wait_until(&realtime_after(100_000_000));
            }
            GATE.unlock();
        }
        TokenCall {
            _not_send: std::marker::PhantomData,
        }
    }
}

impl Drop for TokenCall {
    fn drop(&mut self) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
        if FORKING.load(Ordering::SeqCst) {
            // The preparing thread waits for this count to drop.
            GATE.lock();
            GATE.broadcast();
            GATE.unlock();
        }
    }
}
