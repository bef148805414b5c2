//! Asynchronous key operations for programs that run their handshakes in OpenSSL ASYNC jobs
//! (`SSL_MODE_ASYNC`: HAProxy's `ssl-mode-async`, `openssl s_server -async`, event loops that
//! poll `SSL_get_all_async_fds`).
//!
//! Inside a job, [`run_in_job`] queues the request (`op::perform` packages it) for a pool of
//! worker threads and pauses the job; the program's event loop goes on with other connections
//! meanwhile. A
//! worker runs the request through the chokepoint (`op::run`: every PKCS#11 call, logging and
//! retry happen on the worker, never on the job's small stack), stores the result in the
//! connection's [`Channel`] and makes its eventfd readable (and calls the program's wake-up
//! callback if it set one). The resumed job takes the result; a resume before the result is
//! there just pauses again.
//!
//! One channel per wait context (connection), registered under [`WAIT_KEY`]: the wait context
//! owns one reference and the worker of a request in flight another, so a connection freed while
//! its signature is in flight frees nothing the worker still uses; the eventfd closes when both
//! are done. The program's wake-up callback is called only while the wait context exists
//! ([`Registration`]): its argument goes with the connection. Errors travel back as values and are raised on the job's thread (OpenSSL's error
//! queue is per thread).
//!
//! The pool belongs to the process that started it: a forked child starts its own on first
//! use. The queue is bounded; when the token's session limit is reached, requests wait in the
//! queue (workers are at most the session limit by default), never on the event loop's thread.

use std::any::Any;
use std::cell::Cell;
use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::metrics::Queued;
use crate::error::{Error, Result};
use crate::sys::async_job::{EventFd, Job, Wakeup};

/// The wait-context key of this provider's channel: the address is what counts.
pub(crate) static WAIT_KEY: u8 = 0;

/// Where a worker leaves the result of a connection's request.
pub(crate) struct Channel {
    eventfd: EventFd,
    state: Mutex<ChannelState>,
}

#[derive(Default)]
struct ChannelState {
    /// Number of the request in flight (the last one started).
    ticket: u64,
    /// The result of request `.0`.
    result: Option<(u64, Result<Output>)>,
    /// The program's wake-up callback for the request in flight, while the wait context it
    /// belongs to exists (its argument is the program's, e.g. libssl's `SSL`).
    wakeup: Option<Wakeup>,
}

/// The wait context's reference to a channel. OpenSSL drops it (wait-context cleanup) when it
/// frees the wait context, i.e. the connection; from then on the program's wake-up callback,
/// whose argument went with the connection, must not be called any more.
pub(crate) struct Registration(Arc<Channel>);

impl Drop for Registration {
    fn drop(&mut self) {
        // Under the lock the worker calls the callback with: once this returns, no call of it
        // is running or will start.
        if let Ok(mut state) = self.0.state.lock() {
            state.wakeup = None;
        }
    }
}

impl Channel {
    fn new() -> Result<Channel> {
        Ok(Channel {
            eventfd: EventFd::new()?,
            state: Mutex::new(ChannelState::default()),
        })
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, ChannelState>> {
        self.state
            .lock()
            .map_err(|_| Error::Module("asynchronous request lock poisoned".into()))
    }

    /// Starts a new request that wakes the program through the eventfd and `wakeup`; returns
    /// its ticket.
    fn begin(&self, wakeup: Option<Wakeup>) -> Result<u64> {
        let mut state = self.lock()?;
        state.ticket += 1;
        state.result = None;
        state.wakeup = wakeup;
        // A wake-up of an earlier request that was never collected.
        self.eventfd.drain();
        Ok(state.ticket)
    }

    /// Stores the result of request `ticket` and wakes the program. The eventfd is written
    /// under the lock, so a job that takes the result also drains that very wake-up; the
    /// callback is called under it too, so the wait context cannot be freed meanwhile (see
    /// [`Registration`]).
    fn complete(&self, ticket: u64, result: Result<Output>) {
        if let Ok(mut state) = self.state.lock() {
            if state.ticket == ticket {
                state.result = Some((ticket, result));
                self.eventfd.signal();
                if let Some(wakeup) = state.wakeup.take() {
                    wakeup.call();
                }
            }
        }
    }

    /// The result of request `ticket`, if it is there.
    fn take(&self, ticket: u64) -> Result<Option<Result<Output>>> {
        let mut state = self.lock()?;
        match state.result.take() {
            Some((done, result)) if done == ticket => {
                self.eventfd.drain();
                Ok(Some(result))
            }
            other => {
                state.result = other;
                Ok(None)
            }
        }
    }
}

/// What a request gives back: the output of a key operation (`Vec<u8>`) or a generated key,
/// taken back to its type by [`run_in_job`].
type Output = Box<dyn Any + Send>;

/// The work of one request: a key operation (or generation) through the chokepoint.
type Work = Box<dyn FnOnce() -> Result<Output> + Send>;

/// One queued request.
struct Task {
    work: Work,
    channel: Arc<Channel>,
    ticket: u64,
    _queued: Queued,
}

/// Longest wait of [`WorkerPool::stop`] for the workers to end (a hung token must not hang
/// the program's exit).
const STOP_LIMIT: Duration = Duration::from_secs(10);

thread_local! {
    /// The pool this thread works for (its address), on worker threads.
    static WORKER_OF: Cell<usize> = const { Cell::new(0) };
}

/// The pools started in this process, stopped when `OPENSSL_cleanup` starts.
static POOLS: Mutex<Vec<Weak<WorkerPool>>> = Mutex::new(Vec::new());

/// Stops every pool of this process and waits for its threads. Runs first thing in
/// `OPENSSL_cleanup`: a worker thread that used libcrypto (through the token) has per-thread
/// state there (random generators) that libcrypto frees when the thread ends, which it can only
/// do while that state still exists. Ending later, in provider teardown, they would leak it.
fn stop_all() {
    let pools = POOLS
        .lock()
        .map(|mut pools| std::mem::take(&mut *pools))
        .unwrap_or_default();
    for pool in pools.iter().filter_map(Weak::upgrade) {
        if pool.is_current() {
            pool.stop();
        }
    }
}

/// The worker pool of one provider instance in one process: a bounded queue of requests and
/// the threads that run them.
pub(crate) struct WorkerPool {
    generation: u64,
    capacity: usize,
    queue: Mutex<PoolState>,
    ready: Condvar,
    /// Signalled by each worker whose loop has ended.
    ended: Condvar,
    /// The worker threads, joined by `stop`.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

#[derive(Default)]
struct PoolState {
    tasks: VecDeque<Task>,
    stopping: bool,
    /// Workers whose loop has not ended.
    running: usize,
}

impl WorkerPool {
    /// Starts `workers` threads.
    pub(crate) fn start(workers: usize, capacity: usize) -> Result<Arc<WorkerPool>> {
        let pool = Arc::new(WorkerPool {
            generation: crate::sys::atfork::generation(),
            capacity,
            queue: Mutex::new(PoolState::default()),
            ready: Condvar::new(),
            ended: Condvar::new(),
            threads: Mutex::new(Vec::new()),
        });
        for index in 0..workers.max(1) {
            let worker = Arc::clone(&pool);
            if let Ok(mut state) = pool.queue.lock() {
                state.running += 1;
            }
            let spawned = std::thread::Builder::new()
                .name(format!("pkcs11-ossl-async-{index}"))
                .spawn(move || {
                    WORKER_OF.with(|of| of.set(Arc::as_ptr(&worker) as usize));
                    worker.work();
                    worker.worker_ended();
                });
            match spawned {
                Ok(handle) => {
                    if let Ok(mut threads) = pool.threads.lock() {
                        threads.push(handle);
                    }
                }
                Err(e) => {
                    pool.worker_ended();
                    pool.stop();
                    return Err(Error::Module(format!("cannot start an async worker: {e}")));
                }
            }
        }
        if let Ok(mut pools) = POOLS.lock() {
            pools.retain(|pool| pool.strong_count() > 0);
            pools.push(Arc::downgrade(&pool));
        }
        crate::sys::libcrypto::at_cleanup(stop_all);
        log::debug!("asynchronous signing: {workers} workers, queue of {capacity}");
        Ok(pool)
    }

    /// True when this pool's threads exist in this process.
    pub(crate) fn is_current(&self) -> bool {
        self.generation == crate::sys::atfork::generation()
    }

    fn submit(&self, task: Task) -> Result<()> {
        let mut state = self
            .queue
            .lock()
            .map_err(|_| Error::Module("async queue lock poisoned".into()))?;
        if state.tasks.len() >= self.capacity {
            return Err(Error::Module(format!(
                "the asynchronous signing queue is full ({} requests wait; see \
                 pkcs11-module-async-queue)",
                self.capacity
            )));
        }
        state.tasks.push_back(task);
        drop(state);
        self.ready.notify_one();
        Ok(())
    }

    fn work(&self) {
        loop {
            let task = {
                let Ok(mut state) = self.queue.lock() else {
                    return;
                };
                loop {
                    if state.stopping {
                        return;
                    }
                    if let Some(task) = state.tasks.pop_front() {
                        break task;
                    }
                    state = match self.ready.wait(state) {
                        Ok(state) => state,
                        Err(_) => return,
                    };
                }
            };
            let Task {
                work,
                channel,
                ticket,
                _queued,
            } = task;
            drop(_queued);
            // A panic in the work must not end the worker or leave the job waiting for ever:
            // it becomes the request's error, raised on the job's thread like any other.
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(work))
                .unwrap_or(Err(Error::Panic));
            channel.complete(ticket, result);
        }
    }

    /// Counts a worker whose loop has ended.
    fn worker_ended(&self) {
        if let Ok(mut state) = self.queue.lock() {
            state.running = state.running.saturating_sub(1);
        }
        self.ended.notify_all();
    }

    /// Lets the workers end once the queue is empty (provider teardown), and waits (at most
    /// [`STOP_LIMIT`]) until their threads are gone.
    ///
    /// The wait matters at exit: teardown runs inside `OPENSSL_cleanup`, and a worker thread
    /// that used libcrypto (through the token) runs libcrypto's thread-exit handler when it
    /// ends, which must not overlap the rest of `OPENSSL_cleanup` (it frees the same per-thread
    /// handler list without a lock: a crash or "double free" at exit). Called on a worker
    /// (the last reference to the provider dropped there), it only tells the workers to end.
    pub(crate) fn stop(&self) {
        let Ok(mut state) = self.queue.lock() else {
            return;
        };
        state.stopping = true;
        self.ready.notify_all();
        if WORKER_OF.with(Cell::get) == std::ptr::from_ref(self) as usize {
            return;
        }
        let deadline = Instant::now() + STOP_LIMIT;
        while state.running > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                log::debug!(
                    "asynchronous signing: {} workers still busy at teardown",
                    state.running
                );
                return;
            }
            state = match self.ended.wait_timeout(state, left) {
                Ok((state, _)) => state,
                Err(_) => return,
            };
        }
        drop(state);
        // Every worker's loop has ended: joining waits only for the threads' exit handlers.
        let threads = self
            .threads
            .lock()
            .map(|mut threads| std::mem::take(&mut *threads))
            .unwrap_or_default();
        for thread in threads {
            let _ = thread.join();
        }
    }
}

/// Runs `work` on a worker of `pool` while the current job waits paused.
pub(crate) fn run_in_job<T: Send + 'static>(
    job: &Job,
    pool: Arc<WorkerPool>,
    work: impl FnOnce() -> Result<T> + Send + 'static,
) -> Result<T> {
    let work: Work = Box::new(move || work().map(|value| Box::new(value) as Output));
    let output = run_work_in_job(job, pool, work)?;
    output
        .downcast::<T>()
        .map(|value| *value)
        .map_err(|_| Error::Module("an asynchronous request returned the wrong type".into()))
}

fn run_work_in_job(job: &Job, pool: Arc<WorkerPool>, work: Work) -> Result<Output> {
    let channel = match job.registered::<Registration>(&WAIT_KEY) {
        Some(registration) => Arc::clone(&registration.0),
        None => {
            let channel = Arc::new(Channel::new()?);
            let registration = Arc::new(Registration(Arc::clone(&channel)));
            job.register(&WAIT_KEY, channel.eventfd.raw(), registration)?;
            channel
        }
    };
    let ticket = channel.begin(job.callback())?;
    pool.submit(Task {
        work,
        channel,
        ticket,
        _queued: Queued::start(),
    })?;
    drop(pool);
    // Nothing owned is kept across a pause: a job that is never resumed (its connection freed)
    // leaves no reference behind. After each resume the channel is looked up again.
    loop {
        job.pause();
        let registration = job.registered::<Registration>(&WAIT_KEY).ok_or_else(|| {
            Error::Module("the asynchronous request's wait context lost its channel".into())
        })?;
        if let Some(result) = registration.0.take(ticket)? {
            return result;
        }
    }
}
