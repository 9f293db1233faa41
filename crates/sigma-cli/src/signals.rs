//! SIGINT, SIGTERM and SIGHUP: remove the partial output, then exit with status 128 + the
//! signal's number (130 for Ctrl-C, 143 for `kill`, 129 for a closed terminal).
//!
//! Output files are written to temporary files (see [`crate::io`]) that are registered here
//! while they exist. [`install`] starts a thread that waits for the signals (through
//! `signal-hook`, whose handler only writes to a pipe; everything else runs on that ordinary
//! thread). On a signal it takes the registry's lock, removes every registered temporary file
//! and exits. The same lock is held while a temporary file is created, renamed into place or
//! removed, so a signal never lands between the rename and the deregistration: either the
//! output is complete and in place, or it is gone and the destination untouched.
//!
//! The exit status is 128 + N, the number a shell reports for a process killed by signal N, so
//! scripts see the usual value; the process exits instead of re-raising the signal so that the
//! status is the same whatever the platform's default action (xz re-raises, zstd exits 2).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

/// The temporary files to remove on a signal.
static TEMPORARY: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

/// Locks the registry (a panic elsewhere while it was held does not make it unusable: the list
/// itself is always consistent).
pub fn registry() -> MutexGuard<'static, Vec<PathBuf>> {
    TEMPORARY
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Adds `path` to the files removed on a signal (the caller holds the lock).
pub fn register(registry: &mut Vec<PathBuf>, path: &Path) {
    registry.push(path.to_path_buf());
}

/// Removes `path` from the files removed on a signal (the caller holds the lock).
pub fn unregister(registry: &mut Vec<PathBuf>, path: &Path) {
    registry.retain(|p| p != path);
}

/// Starts the thread that handles SIGINT, SIGTERM and SIGHUP. If the handlers cannot be
/// installed the signals keep their default action (the process dies and may leave a
/// temporary file); that is not worth refusing to work over.
pub fn install() {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        use signal_hook::iterator::Signals;
        use std::fs;
        use std::io::Write;

        let Ok(mut signals) = Signals::new([SIGINT, SIGTERM, SIGHUP]) else {
            return;
        };
        // A thread that cannot be started here, before any work, is a broken machine: the
        // standard library's panic says so.
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let name = match signal {
                    SIGINT => "SIGINT",
                    SIGTERM => "SIGTERM",
                    _ => "SIGHUP",
                };
                // Held until the process exits: no temporary file is created or renamed from
                // here on.
                let registry = registry();
                for path in registry.iter() {
                    let _ = fs::remove_file(path);
                }
                let removed = if registry.is_empty() {
                    ""
                } else {
                    "; partial output removed"
                };
                // Not eprintln!, which panics (and would end this thread, not the process) if
                // standard error is a closed pipe.
                let _ = writeln!(std::io::stderr(), "\nsigma: interrupted by {name}{removed}");
                std::process::exit(128 + signal);
            }
        });
    }
}
