//! Starting a set of named threads together and joining them together: the one spawn/join
//! the built-in broker's reactors use (and the engine's workers can).

use std::io;
use std::thread::{self, JoinHandle};

/// The OS refused a thread; the ones started before it are handed back to be stopped.
#[derive(Debug)]
pub struct SpawnFailed<T> {
    /// Threads already running, in start order.
    pub started: Vec<JoinHandle<T>>,
    /// The operating system's reason.
    pub error: io::Error,
}

/// Starts one thread per job, named `<name>-<index>`, stopping at the first the OS refuses.
pub fn spawn_each<T, F>(
    name: &str,
    jobs: impl IntoIterator<Item = F>,
) -> Result<Vec<JoinHandle<T>>, SpawnFailed<T>>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let mut started = Vec::new();
    for (index, job) in jobs.into_iter().enumerate() {
        match thread::Builder::new()
            .name(format!("{name}-{index}"))
            .spawn(job)
        {
            Ok(handle) => started.push(handle),
            Err(error) => return Err(SpawnFailed { started, error }),
        }
    }
    Ok(started)
}

/// Waits for every thread, in order: its value, or `None` for one that panicked.
pub fn join_all<T>(handles: impl IntoIterator<Item = JoinHandle<T>>) -> Vec<Option<T>> {
    handles.into_iter().map(|h| h.join().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_job_runs_on_its_own_named_thread_and_results_come_back_in_order() {
        let jobs = (0..3).map(|i| {
            move || {
                let name = thread::current().name().map(str::to_owned);
                if i == 1 {
                    panic!("job 1 fails on purpose");
                }
                (i, name)
            }
        });
        let handles = spawn_each("mqload-test", jobs).expect("spawn");
        let results = join_all(handles);
        assert_eq!(
            results,
            [
                Some((0, Some("mqload-test-0".to_owned()))),
                None,
                Some((2, Some("mqload-test-2".to_owned()))),
            ]
        );
    }
}
