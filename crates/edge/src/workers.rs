//! Worker threads, one single-threaded tokio runtime each (like nginx's worker processes): every worker accepts
//! on the same listening sockets and serves the connections it accepted from start to end, including their
//! upstream connections (pooled per worker, see [`current`]). Nothing on a request's path crosses threads, so no
//! work-stealing scheduler, no cross-thread wake-ups and no contended pool locks.

use std::cell::Cell;
use std::future::Future;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;

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
    stop: tokio::sync::watch::Sender<bool>,
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
        Ok(Workers { handles, stop })
    }

    /// Runs `f(worker index)` on every worker.
    pub(crate) fn spawn_each<F, Fut>(&self, mut f: F) -> Vec<JoinHandle<()>>
    where
        F: FnMut(usize) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handles.iter().enumerate().map(|(i, h)| h.spawn(f(i))).collect()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
