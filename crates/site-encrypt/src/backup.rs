//! Backup archives: a gzip tar of the storage folder, written atomically (0600).

use std::path::Path;

use flate2::Compression;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;

use crate::Error;

fn err(path: &Path, detail: impl std::fmt::Display) -> Error {
    Error::Backup {
        path: path.to_owned(),
        detail: detail.to_string(),
    }
}

/// Writes a gzip tar of `storage` (its files, not its lock leases) to `archive`.
pub fn write_backup(storage: &Path, archive: &Path) -> Result<(), Error> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    tar.mode(tar::HeaderMode::Deterministic);
    let mut stack = vec![storage.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| err(storage, e))? {
            let entry = entry.map_err(|e| err(storage, e))?;
            let path = entry.path();
            let rel = path.strip_prefix(storage).map_err(|e| err(storage, e))?;
            if rel.starts_with("locks")
                || rel
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else {
                tar.append_path_with_name(&path, rel)
                    .map_err(|e| err(archive, e))?;
            }
        }
    }
    let gz = tar.into_inner().map_err(|e| err(archive, e))?;
    let bytes = gz.finish().map_err(|e| err(archive, e))?;
    if let Some(parent) = archive.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|e| err(archive, e))?;
    }
    site_encrypt_proto::fs::write_atomic(archive, &bytes, 0o600).map_err(|e| err(archive, e))
}

/// Restores `archive` into `storage` (which should be missing or empty).
/// Entries that would land outside `storage` are refused.
pub fn restore_backup(archive: &Path, storage: &Path) -> Result<usize, Error> {
    let file = std::fs::File::open(archive).map_err(|e| err(archive, e))?;
    let mut tar = tar::Archive::new(GzDecoder::new(file));
    site_encrypt_proto::fs::create_private_dir(storage).map_err(|e| err(storage, e))?;
    let mut n = 0;
    for entry in tar.entries().map_err(|e| err(archive, e))? {
        let mut entry = entry.map_err(|e| err(archive, e))?;
        let rel = entry.path().map_err(|e| err(archive, e))?.into_owned();
        if rel
            .components()
            .any(|c| !matches!(c, std::path::Component::Normal(_)))
        {
            return Err(err(
                archive,
                format!("entry {} escapes the storage folder", rel.display()),
            ));
        }
        let dest = storage.join(&rel);
        if let Some(parent) = dest.parent() {
            site_encrypt_proto::fs::create_private_dir(parent).map_err(|e| err(storage, e))?;
        }
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).map_err(|e| err(archive, e))?;
        site_encrypt_proto::fs::write_atomic(&dest, &data, 0o600).map_err(|e| err(&dest, e))?;
        n += 1;
    }
    Ok(n)
}
