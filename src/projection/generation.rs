//! Generations of the views file, so a rebuild can replace the live views
//! while the query service keeps answering. The views live in
//! `<data>/views/views-<n>.db`; the small file `CURRENT` names the live one.
//! A rebuild writes generation n+1 beside it and then swaps `CURRENT` with
//! one atomic rename: readers that started on generation n finish there,
//! new ones open n+1. Until the rename, the live views are untouched, so an
//! interrupted rebuild leaves nothing to repair.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const CURRENT: &str = "CURRENT";
const LOCK: &str = "rebuild.lock";
const PREFIX: &str = "views-";
const SUFFIX: &str = ".db";

/// The directory holding the generations of the views.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewsDir {
    dir: PathBuf,
}

/// Held while a rebuild writes a new generation; released on drop.
#[derive(Debug)]
pub struct RebuildLock {
    _file: File,
}

fn generation_of(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .parse()
        .ok()
}

fn file_name(generation: u64) -> String {
    format!("{PREFIX}{generation}{SUFFIX}")
}

impl ViewsDir {
    /// The views directory of a node's data directory.
    pub fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("views"),
        }
    }

    /// The directory itself.
    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// The live generation's file, creating the directory and the first
    /// generation's pointer on first use.
    pub fn current(&self) -> io::Result<PathBuf> {
        match fs::read_to_string(self.dir.join(CURRENT)) {
            Ok(name) => {
                let name = name.trim();
                if generation_of(name).is_none() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "{}: '{name}' does not name a views file",
                            self.dir.join(CURRENT).display()
                        ),
                    ));
                }
                Ok(self.dir.join(name))
            }
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(&self.dir)?;
                let first = file_name(1);
                self.write_pointer(&first)?;
                Ok(self.dir.join(first))
            }
            Err(error) => Err(error),
        }
    }

    /// The live generation's file if there is one, creating nothing: for
    /// tools that only look.
    pub fn live(&self) -> io::Result<Option<PathBuf>> {
        if !self.dir.join(CURRENT).exists() {
            return Ok(None);
        }
        let path = self.current()?;
        Ok(path.exists().then_some(path))
    }

    /// The file for the next generation (one past every file present),
    /// removed first if a previous attempt left it half-written.
    pub fn next(&self) -> io::Result<PathBuf> {
        self.current()?;
        let highest = self.generations()?.into_iter().max().unwrap_or(1);
        let path = self.dir.join(file_name(highest + 1));
        remove_db(&path)?;
        Ok(path)
    }

    /// Makes `path` (a file in this directory) the live generation.
    pub fn activate(&self, path: &Path) -> io::Result<()> {
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .filter(|n| generation_of(n).is_some())
            .ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "not a views generation file")
            })?;
        self.write_pointer(name)
    }

    /// Takes the rebuild lock, or says who holds it.
    pub fn lock_rebuild(&self) -> io::Result<RebuildLock> {
        fs::create_dir_all(&self.dir)?;
        let path = self.dir.join(LOCK);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .read(true)
            .open(&path)?;
        match file.try_lock() {
            Ok(()) => {
                file.set_len(0)?;
                writeln!(file, "pid {}", std::process::id())?;
                Ok(RebuildLock { _file: file })
            }
            Err(fs::TryLockError::WouldBlock) => {
                let holder = fs::read_to_string(&path).unwrap_or_default();
                Err(io::Error::new(
                    io::ErrorKind::WouldBlock,
                    format!(
                        "another rebuild holds {} ({}); wait for it or stop it",
                        path.display(),
                        holder.trim()
                    ),
                ))
            }
            Err(fs::TryLockError::Error(error)) => Err(error),
        }
    }

    /// Removes every generation but `keep`.
    pub fn remove_others(&self, keep: &[&Path]) -> io::Result<()> {
        for generation in self.generations()? {
            let path = self.dir.join(file_name(generation));
            if !keep.iter().any(|k| *k == path) {
                remove_db(&path)?;
            }
        }
        Ok(())
    }

    fn generations(&self) -> io::Result<Vec<u64>> {
        let mut found = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            if let Some(generation) = entry?.file_name().to_str().and_then(generation_of) {
                found.push(generation);
            }
        }
        Ok(found)
    }

    fn write_pointer(&self, name: &str) -> io::Result<()> {
        let temp = self.dir.join("CURRENT.tmp");
        let mut file = File::create(&temp)?;
        writeln!(file, "{name}")?;
        file.sync_all()?;
        fs::rename(&temp, self.dir.join(CURRENT))?;
        // The rename is durable once the directory is.
        File::open(&self.dir)?.sync_all()
    }
}

/// Removes a SQLite file with its WAL and shared-memory files.
fn remove_db(path: &Path) -> io::Result<()> {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        match fs::remove_file(PathBuf::from(name)) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_use_makes_generation_one_live() {
        let dir = tempfile::tempdir().unwrap();
        let views = ViewsDir::new(dir.path());
        assert_eq!(views.current().unwrap(), views.path().join("views-1.db"));
        assert_eq!(views.current().unwrap(), views.path().join("views-1.db"));
    }

    #[test]
    fn activating_the_next_generation_swaps_the_pointer() {
        let dir = tempfile::tempdir().unwrap();
        let views = ViewsDir::new(dir.path());
        let first = views.current().unwrap();
        fs::write(&first, b"x").unwrap();
        let next = views.next().unwrap();
        assert_eq!(next, views.path().join("views-2.db"));
        fs::write(&next, b"y").unwrap();
        views.activate(&next).unwrap();
        assert_eq!(views.current().unwrap(), next);
        views.remove_others(&[&next]).unwrap();
        assert!(!first.exists() && next.exists());
    }

    #[test]
    fn a_second_rebuild_is_refused_while_the_first_holds_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        let views = ViewsDir::new(dir.path());
        let held = views.lock_rebuild().unwrap();
        let error = views.lock_rebuild().unwrap_err();
        assert!(
            error.to_string().contains("another rebuild holds"),
            "{error}"
        );
        drop(held);
        assert!(views.lock_rebuild().is_ok());
    }

    #[test]
    fn a_pointer_to_anything_else_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let views = ViewsDir::new(dir.path());
        fs::create_dir_all(views.path()).unwrap();
        fs::write(views.path().join("CURRENT"), "../../etc/passwd\n").unwrap();
        assert!(views.current().is_err());
    }
}
