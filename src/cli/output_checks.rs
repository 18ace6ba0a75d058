//! Checks every command that writes a file makes before any work: the output can be
//! written there, and it is none of the command's inputs (by any path or hard link).

use std::path::Path;

use anyhow::bail;
use detlab::file_id::FileId;

/// Checks, before any work, that a file can be written at `path` (the option `flag`):
/// it is not a folder and its folder exists.
pub fn check_output_file(flag: &str, path: &Path) -> anyhow::Result<()> {
    let text = path.to_string_lossy();
    if text.is_empty() {
        bail!("{flag} is empty: give a file name");
    }
    if path.is_dir() || text.ends_with(std::path::is_separator) {
        bail!(
            "{flag} {} is a folder; give a file name (nothing was written)",
            path.display()
        );
    }
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !folder.exists() {
        bail!(
            "{flag} {}: the folder {} does not exist (nothing was written)",
            path.display(),
            folder.display()
        );
    }
    if !folder.is_dir() {
        bail!(
            "{flag} {}: {} is not a folder (nothing was written)",
            path.display(),
            folder.display()
        );
    }
    Ok(())
}

/// Refuses an output `out` (the option `flag`) that is one of `inputs`, each given with
/// what it is ("the model file", "the input image", …).
pub fn check_not_an_input<'a>(
    flag: &str,
    out: &Path,
    inputs: impl IntoIterator<Item = (&'a str, &'a Path)>,
) -> anyhow::Result<()> {
    let id = FileId::of(out);
    for (what, input) in inputs {
        if id.is(&FileId::of(input)) {
            bail!(
                "{flag} {} is {what} {}: the output would replace it; choose another {flag} \
                 (nothing was written)",
                out.display(),
                input.display()
            );
        }
    }
    Ok(())
}
