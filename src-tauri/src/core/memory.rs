//! Keeping the core small in the tray. glibc's malloc keeps freed memory in
//! per-thread arenas: after a burst of piece traffic (256 KiB buffers on
//! every worker thread) the process would hold tens of MB it no longer
//! uses. Two arenas and a periodic trim give it back.

use std::time::Duration;

/// How often freed memory is returned to the system.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Limits malloc's arenas; call before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes allocator tuning; called before other
    // threads exist, with a documented parameter and a valid value.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Returns freed heap to the system every [`TRIM_EVERY`], until dropped.
pub fn trim_periodically() -> tokio_util::task::AbortOnDropHandle<()> {
    tokio_util::task::AbortOnDropHandle::new(tokio::spawn(async {
        let mut tick = tokio::time::interval(TRIM_EVERY);
        loop {
            tick.tick().await;
            #[cfg(all(target_os = "linux", target_env = "gnu"))]
            #[allow(unsafe_code)]
            // SAFETY: malloc_trim takes no pointers and may be called at
            // any time from any thread.
            unsafe {
                libc::malloc_trim(0);
            }
        }
    }))
}
