//! Process-wide settings a run needs from the operating system.

/// Makes writing past the file-size limit (`ulimit -f`) an error that names the file (the write
/// fails with "the file size limit was reached"), rather than the signal that kills the process
/// by default. Called by every run; once is enough.
#[allow(unsafe_code)] // one libc call, with a constant handler
pub fn file_size_limit_is_an_error() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: SIG_IGN is a valid disposition for SIGXFSZ; no handler code runs.
        unsafe {
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
        }
    });
}
