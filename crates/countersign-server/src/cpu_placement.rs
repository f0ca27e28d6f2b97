//! Gives the database writer and its SQLite connection thread a CPU of their own.
//!
//! Every statement the writer runs is a hand-off to the connection's worker thread and back
//! (`sqlx` runs each SQLite connection on a thread of its own), and the writer is the serial
//! part of every approval. On the virtual machines measured here a wake-up on another CPU costs
//! about six times one on the same CPU (45 µs against 7 µs per statement round trip), so when
//! the process may use two CPUs or more, the writer pair gets the last of them and every other
//! thread the rest (numbers in docs/benchmarks.md). `[database] dedicated_writer_cpu = false`
//! turns this off. Linux only; elsewhere no thread is moved.

/// Which CPUs the writer and everything else run on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The writer thread and its connection's thread.
    pub writer: usize,
    /// Every other thread: the HTTP runtime, readers, background tasks.
    pub rest: Vec<usize>,
}

/// Why a thread could not be placed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PlacementError {
    /// The operating system refused to read or set the thread's CPU affinity.
    #[error("cannot set CPU affinity: {0}")]
    Affinity(String),
    /// This platform has no CPU affinity the server knows how to set.
    #[error("CPU affinity is not supported on this platform")]
    Unsupported,
}

/// The split of the CPUs this process may use, or `None` with fewer than two of them.
pub fn plan() -> Result<Option<Placement>, PlacementError> {
    let mut allowed = allowed_cpus()?;
    let Some(writer) = allowed.pop() else {
        return Ok(None);
    };
    if allowed.is_empty() {
        return Ok(None);
    }
    Ok(Some(Placement {
        writer,
        rest: allowed,
    }))
}

/// The CPUs the calling thread may run on, in ascending order.
#[cfg(target_os = "linux")]
fn allowed_cpus() -> Result<Vec<usize>, PlacementError> {
    use nix::sched::{sched_getaffinity, CpuSet};
    let set = sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .map_err(|e| PlacementError::Affinity(e.to_string()))?;
    Ok((0..CpuSet::count())
        .filter(|&cpu| set.is_set(cpu).unwrap_or(false))
        .collect())
}

#[cfg(not(target_os = "linux"))]
fn allowed_cpus() -> Result<Vec<usize>, PlacementError> {
    Ok(Vec::new())
}

/// Restricts the calling thread to `cpus`; threads it starts afterwards inherit that.
#[cfg(target_os = "linux")]
pub fn pin_current_thread(cpus: &[usize]) -> Result<(), PlacementError> {
    use nix::sched::{sched_setaffinity, CpuSet};
    let mut set = CpuSet::new();
    for &cpu in cpus {
        set.set(cpu)
            .map_err(|e| PlacementError::Affinity(e.to_string()))?;
    }
    sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .map_err(|e| PlacementError::Affinity(e.to_string()))
}

#[cfg(not(target_os = "linux"))]
pub fn pin_current_thread(_cpus: &[usize]) -> Result<(), PlacementError> {
    Err(PlacementError::Unsupported)
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// On a thread of its own (pinning is per thread): the plan splits the allowed CPUs, and a
    /// pinned thread, and a thread it starts, then report only their CPU.
    #[test]
    fn plans_and_pins_threads() {
        std::thread::spawn(|| {
            let allowed = allowed_cpus().unwrap();
            assert!(!allowed.is_empty());
            match plan().unwrap() {
                None => assert_eq!(allowed.len(), 1),
                Some(p) => {
                    assert_eq!(p.rest.len() + 1, allowed.len());
                    assert_eq!(Some(&p.writer), allowed.last());
                    assert!(!p.rest.contains(&p.writer));
                }
            }
            let last = *allowed.last().unwrap();
            pin_current_thread(&[last]).unwrap();
            assert_eq!(allowed_cpus().unwrap(), vec![last]);
            let inherited = std::thread::spawn(|| allowed_cpus().unwrap())
                .join()
                .unwrap();
            assert_eq!(inherited, vec![last], "a new thread inherits the placement");
            assert!(pin_current_thread(&[]).is_err(), "an empty set is refused");
        })
        .join()
        .unwrap();
    }
}
