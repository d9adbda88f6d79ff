//! Worker threads, one single-threaded tokio runtime each (like nginx's worker processes). One accept loop per
//! listener hands every new connection to the worker serving the fewest ([`Workers::least_loaded`]), which
//! serves it from start to end, including its upstream connections (pooled per worker, see [`current`]).
//! Nothing on a request's path crosses threads, so no work-stealing scheduler, no cross-thread wake-ups and no
//! contended pool locks.
//!
//! Why one accept loop and not one per worker on the same socket: every worker's epoll is woken by a new
//! connection and the first to call `accept` takes it, and then the next ones in the queue: a burst of
//! connections (a load generator's 64) often went all to one worker, which then served every request on one
//! core while the other idled (seen in a profile of `bench/edge.sh`: 99.98 % of the samples on one worker).

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::runtime::Handle;

thread_local! {
    static WORKER: Cell<usize> = const { Cell::new(0) };
}

/// The index of the worker running on this thread (1, 2, ...), or 0 off the worker threads.
pub fn current() -> usize {
    WORKER.with(Cell::get)
}

/// Running workers. Dropping this stops them: their runtimes end and drop whatever connections they still hold.
pub(crate) struct Workers {
    handles: Vec<Handle>,
    /// Open connections per worker.
    open: Arc<[AtomicUsize]>,
    /// Where the search for the least loaded worker starts (rotates, so that ties are spread).
    next: AtomicUsize,
    stop: tokio::sync::watch::Sender<bool>,
}

/// A connection counted against a worker until dropped.
pub(crate) struct Load {
    open: Arc<[AtomicUsize]>,
    worker: usize,
}

impl Drop for Load {
    fn drop(&mut self) {
        self.open[self.worker].fetch_sub(1, Ordering::Relaxed);
    }
}

impl Workers {
    /// Starts `n` worker threads.
    pub(crate) fn start(n: usize) -> std::io::Result<Workers> {
        let (stop, _) = tokio::sync::watch::channel(false);
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            handles.push(rt.handle().clone());
            let mut stopped = stop.subscribe();
            std::thread::Builder::new().name(format!("edge-worker-{}", i + 1)).spawn(move || {
                WORKER.with(|w| w.set(i + 1));
                rt.block_on(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                });
            })?;
        }
        let open: Arc<[AtomicUsize]> = (0..n).map(|_| AtomicUsize::new(0)).collect();
        Ok(Workers { handles, open, next: AtomicUsize::new(0), stop })
    }

    /// Open connections per worker (for `/metrics`).
    pub(crate) fn open_connections(&self) -> Arc<[AtomicUsize]> {
        self.open.clone()
    }

    /// The worker with the fewest open connections, and the new connection counted against it.
    pub(crate) fn least_loaded(&self) -> (&Handle, Load) {
        let n = self.handles.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let worker = (0..n).map(|k| (start + k) % n).min_by_key(|&i| self.open[i].load(Ordering::Relaxed)).unwrap_or(0);
        self.open[worker].fetch_add(1, Ordering::Relaxed);
        (&self.handles[worker], Load { open: self.open.clone(), worker })
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
