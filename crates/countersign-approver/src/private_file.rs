//! Writing the files this crate keeps (key files, the approver profile) safely.

use std::path::Path;

/// Writes `bytes` to a new sibling file readable by the owner only (tempfile creates files
/// with mode 0600 on Unix), flushes it to disk, then renames it over `path`: the file is
/// never half-written and never briefly readable by others.
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
