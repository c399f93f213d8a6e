//! Stale temporary files of atomic writes. A writer names its temporary file
//! `.<name>.<pid>.<n>.tmp`; a process killed mid-write leaves it behind. Each
//! write first removes such files in its folder whose writer process is gone
//! (never this process's own: another thread may be writing), so stray files
//! stay bounded by the number of live writers. `ferrotorch._io` applies the
//! same rule to the same pattern.

use std::path::Path;

/// The writer pid of a temporary-file name of our pattern, if it is one.
fn writer_pid(name: &str) -> Option<u32> {
    let core = name.strip_prefix('.')?.strip_suffix(".tmp")?;
    let mut parts = core.rsplitn(3, '.');
    let tag = parts.next()?;
    let pid = parts.next()?;
    let base = parts.next()?;
    let tag_ok = !tag.is_empty() && tag.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    let pid_ok = !pid.is_empty() && pid.chars().all(|c| c.is_ascii_digit());
    if base.is_empty() || !tag_ok || !pid_ok {
        return None;
    }
    pid.parse().ok()
}

/// Whether `pid` is known to be dead. Without /proc (not Linux) nothing is
/// known, so nothing is removed.
fn is_dead(pid: u32) -> bool {
    let proc = Path::new("/proc");
    proc.join("self").exists() && !proc.join(pid.to_string()).exists()
}

/// Removes temporary files of dead writers in `dir`; returns how many.
pub(crate) fn remove_stale(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let me = std::process::id();
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(writer_pid) else {
            continue;
        };
        // A failed removal (raced by another cleaner, no permission) is fine.
        if pid != me && is_dead(pid) && std::fs::remove_file(e.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_our_pattern() {
        assert_eq!(writer_pid(".model.fdl.123.4.tmp"), Some(123));
        assert_eq!(writer_pid(".a.b.c.77.ab12_x.tmp"), Some(77));
        assert_eq!(writer_pid("model.fdl.123.4.tmp"), None);
        assert_eq!(writer_pid(".model.fdl.x1.4.tmp"), None);
        assert_eq!(writer_pid("..123.4.tmp"), None);
        assert_eq!(writer_pid(".model.123.4.tmpx"), None);
    }

    #[test]
    fn removes_dead_writers_files_only() {
        let dir = std::env::temp_dir().join(format!("ft-temp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        // pid_max on Linux is at most 2^22, so this pid cannot be alive.
        let dead = dir.join(".m.fdl.4194305.0.tmp");
        let mine = dir.join(format!(".m.fdl.{}.0.tmp", std::process::id()));
        let other = dir.join("keep.tmp");
        for p in [&dead, &mine, &other] {
            std::fs::write(p, b"x").unwrap();
        }
        assert_eq!(remove_stale(&dir), 1);
        assert!(!dead.exists() && mine.exists() && other.exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
