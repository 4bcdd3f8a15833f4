//! `file://DIR`: a local directory, durable across restarts and safe for several processes.
//!
//! Each object is one JSON file (`{"name", "generation", "metadata"}`) under `DIR/objects`,
//! one directory level per name segment. A write goes to `DIR/tmp`, is fsynced, and is renamed
//! into place, so a crash never leaves a half-written object. Conditional writes and deletes
//! hold an exclusive `flock` on one of a few lock files (chosen by the name's hash) while they
//! compare generations, which makes them atomic across threads and processes; reads need no
//! lock because renames are atomic.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{
    Generation, ListPage, Metadata, Object, PutMode, Storage, StorageError, validate_name,
};

/// How many lock files stripe the writers: enough that unrelated keys rarely wait on each other.
const LOCK_STRIPES: u64 = 64;
/// File names longer than this are replaced by a hash (file systems allow 255 bytes).
const MAX_SEGMENT_BYTES: usize = 200;
/// Temporary files older than this are debris of a crash and are removed on open.
const STALE_TMP: Duration = Duration::from_secs(3600);

/// A store in a local directory.
#[derive(Debug, Clone)]
pub struct DirStorage {
    root: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Record {
    name: String,
    generation: i64,
    metadata: Metadata,
}

impl DirStorage {
    /// Opens (creating if needed) the store in `root`.
    pub async fn open(root: PathBuf) -> Result<Self, StorageError> {
        let storage = Self { root };
        let this = storage.clone();
        blocking("open", storage.root.display().to_string(), move || {
            this.prepare()
        })
        .await?;
        Ok(storage)
    }

    fn prepare(&self) -> io::Result<()> {
        for dir in ["objects", "locks", "tmp"] {
            fs::create_dir_all(self.root.join(dir))?;
        }
        let now = SystemTime::now();
        for entry in fs::read_dir(self.root.join("tmp"))? {
            let entry = entry?;
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .map(|modified| now.duration_since(modified).unwrap_or_default() > STALE_TMP)
                .unwrap_or(false);
            if old {
                let _ = fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    fn path_of(&self, name: &str) -> PathBuf {
        let mut path = self.root.join("objects");
        for segment in name.split('/') {
            path.push(encode_segment(segment));
        }
        path
    }

    fn lock(&self, name: &str) -> io::Result<File> {
        let digest = Sha256::digest(name.as_bytes());
        let stripe = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes")) % LOCK_STRIPES;
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.root.join("locks").join(format!("{stripe:02}.lock")))?;
        file.lock()?;
        Ok(file)
    }

    fn read(path: &Path) -> io::Result<Option<Record>> {
        match fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// [`DirStorage::read`] for a listing: a file that is not an object (a foreign or damaged
    /// file) is skipped with a warning instead of failing every listing after it.
    fn read_listed(path: &Path) -> io::Result<Option<Record>> {
        match Self::read(path) {
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                tracing::warn!(path = %path.display(), error = %e, "skipping a file that is not a stored object");
                Ok(None)
            }
            other => other,
        }
    }

    fn write(&self, path: &Path, record: &Record) -> io::Result<()> {
        let tmp = self
            .root
            .join("tmp")
            .join(format!("{:016x}.tmp", rand::random::<u64>()));
        let mut file = File::create(&tmp)?;
        file.write_all(&serde_json::to_vec(record).map_err(io::Error::other)?)?;
        file.sync_all()?;
        drop(file);
        let parent = path.parent().expect("objects live below the root");
        if !parent.is_dir() {
            fs::create_dir_all(parent)?;
            // A new directory is durable once its own parent is synced.
            let grandparent = parent.parent().expect("below the root");
            File::open(grandparent)?.sync_all()?;
        }
        fs::rename(&tmp, path)?;
        File::open(parent)?.sync_all()
    }

    fn put_sync(&self, name: &str, metadata: Metadata, mode: PutMode) -> Result<Generation, Op> {
        let path = self.path_of(name);
        let _lock = self.lock(name)?;
        let current = Self::read(&path)?.map(|r| Generation(r.generation));
        let allowed = match mode {
            PutMode::Create => current.is_none(),
            PutMode::Replace(expected) => current == Some(expected),
        };
        if !allowed {
            return Err(Op::Precondition);
        }
        let generation = new_generation(current);
        let record = Record {
            name: name.to_owned(),
            generation: generation.0,
            metadata,
        };
        self.write(&path, &record)?;
        Ok(generation)
    }

    fn delete_sync(&self, name: &str, generation: Generation) -> Result<(), Op> {
        let path = self.path_of(name);
        let _lock = self.lock(name)?;
        match Self::read(&path)? {
            None => Err(Op::NotFound),
            Some(record) if record.generation != generation.0 => Err(Op::Precondition),
            Some(_) => {
                fs::remove_file(&path)?;
                File::open(path.parent().expect("below the root"))?.sync_all()?;
                Ok(())
            }
        }
    }

    fn list_sync(&self, prefix: &str, after: Option<&str>, max: usize) -> io::Result<ListPage> {
        // Walk only the directory of the prefix's complete segments.
        let (dir_part, _) = prefix.rsplit_once('/').unwrap_or(("", prefix));
        let mut dir = self.root.join("objects");
        let mut base = String::new();
        if !dir_part.is_empty() {
            for segment in dir_part.split('/') {
                dir.push(encode_segment(segment));
            }
            base = format!("{dir_part}/");
        }
        let mut names = Vec::new();
        collect(&dir, &base, &mut names)?;
        names.retain(|(name, _)| {
            name.starts_with(prefix) && after.is_none_or(|after| name.as_str() > after)
        });
        names.sort();
        let mut objects = Vec::new();
        let mut more = false;
        for (_, path) in names {
            if objects.len() == max.max(1) {
                more = true;
                break;
            }
            // An object deleted since the directory was read is simply not listed.
            if let Some(record) = Self::read_listed(&path)? {
                objects.push(Object {
                    name: record.name,
                    generation: Generation(record.generation),
                    metadata: record.metadata,
                });
            }
        }
        let next_page_token = more
            .then(|| objects.last().map(|o| o.name.clone()))
            .flatten();
        Ok(ListPage {
            objects,
            next_page_token,
        })
    }
}

/// Collects `(object name, path)` below `dir`, whose objects' names start with `base`.
fn collect(dir: &Path, base: &str, out: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let file_name = entry.file_name();
        let Some(file_name) = file_name.to_str() else {
            continue;
        };
        let path = entry.path();
        let decoded = decode_segment(file_name);
        let file_type = match entry.file_type() {
            Ok(file_type) => file_type,
            // Deleted since the directory was read.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if file_type.is_dir() {
            match decoded {
                Some(segment) => collect(&path, &format!("{base}{segment}/"), out)?,
                // A hashed directory: its objects carry their own names.
                None => collect_hashed(&path, out)?,
            }
        } else {
            match decoded {
                Some(segment) => out.push((format!("{base}{segment}"), path)),
                None => {
                    if let Some(record) = DirStorage::read_listed(&path)? {
                        out.push((record.name, path));
                    }
                }
            }
        }
    }
    Ok(())
}

fn collect_hashed(dir: &Path, out: &mut Vec<(String, PathBuf)>) -> io::Result<()> {
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let is_dir = match entry.file_type() {
            Ok(file_type) => file_type.is_dir(),
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        if is_dir {
            collect_hashed(&path, out)?;
        } else if let Some(record) = DirStorage::read_listed(&path)? {
            out.push((record.name, path));
        }
    }
    Ok(())
}

/// Turns a name segment into a portable file name: unreserved bytes stay, others become
/// `%XX`, a leading dot is escaped (so `.` and `..` stay ordinary names), and anything too long
/// becomes `~` and its SHA-256.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for (i, byte) in segment.bytes().enumerate() {
        let keep =
            byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' || (byte == b'.' && i > 0);
        if keep {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    if out.len() > MAX_SEGMENT_BYTES {
        format!("~{}", hex::encode(Sha256::digest(segment.as_bytes())))
    } else {
        out
    }
}

/// The segment a file name stands for, or `None` for a hashed one (read the file instead).
fn decode_segment(file_name: &str) -> Option<String> {
    if file_name.starts_with('~') {
        return None;
    }
    let bytes = file_name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A fresh random generation, different from the current one; randomness (not a clock) keeps
/// generations unique across processes and after a delete and re-create.
fn new_generation(current: Option<Generation>) -> Generation {
    loop {
        let candidate = Generation((rand::random::<u64>() >> 1) as i64);
        if candidate.0 != 0 && Some(candidate) != current {
            return candidate;
        }
    }
}

/// The outcome of a blocking operation before it is named for the caller.
enum Op {
    NotFound,
    Precondition,
    Io(io::Error),
}

impl From<io::Error> for Op {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

fn backend(op: &'static str, name: &str, e: io::Error) -> StorageError {
    let transient = !matches!(
        e.kind(),
        io::ErrorKind::InvalidData | io::ErrorKind::PermissionDenied
    );
    StorageError::Backend {
        op,
        name: name.to_owned(),
        transient,
        source: Box::new(e),
    }
}

async fn blocking<T: Send + 'static>(
    op: &'static str,
    name: String,
    f: impl FnOnce() -> io::Result<T> + Send + 'static,
) -> Result<T, StorageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(|e| backend(op, &name, e)),
        Err(join) => Err(backend(op, &name, io::Error::other(join))),
    }
}

async fn blocking_op<T: Send + 'static>(
    op: &'static str,
    name: &str,
    f: impl FnOnce() -> Result<T, Op> + Send + 'static,
) -> Result<T, StorageError> {
    let owned = name.to_owned();
    match tokio::task::spawn_blocking(f).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(Op::NotFound)) => Err(StorageError::NotFound { name: owned }),
        Ok(Err(Op::Precondition)) => Err(StorageError::Precondition { name: owned }),
        Ok(Err(Op::Io(e))) => Err(backend(op, &owned, e)),
        Err(join) => Err(backend(op, &owned, io::Error::other(join))),
    }
}

#[async_trait]
impl Storage for DirStorage {
    async fn get(&self, name: &str) -> Result<Option<Object>, StorageError> {
        validate_name(name)?;
        let path = self.path_of(name);
        let record = blocking("read", name.to_owned(), move || DirStorage::read(&path)).await?;
        Ok(record.map(|r| Object {
            name: r.name,
            generation: Generation(r.generation),
            metadata: r.metadata,
        }))
    }

    async fn put(
        &self,
        name: &str,
        metadata: &Metadata,
        mode: PutMode,
    ) -> Result<Generation, StorageError> {
        validate_name(name)?;
        let (this, owned, metadata) = (self.clone(), name.to_owned(), metadata.clone());
        blocking_op("write", name, move || this.put_sync(&owned, metadata, mode)).await
    }

    async fn delete(&self, name: &str, generation: Generation) -> Result<(), StorageError> {
        validate_name(name)?;
        let (this, owned) = (self.clone(), name.to_owned());
        blocking_op("delete", name, move || this.delete_sync(&owned, generation)).await
    }

    async fn list(
        &self,
        prefix: &str,
        page_token: Option<&str>,
        max_results: usize,
    ) -> Result<ListPage, StorageError> {
        let (this, owned, token) = (
            self.clone(),
            prefix.to_owned(),
            page_token.map(str::to_owned),
        );
        blocking("list", prefix.to_owned(), move || {
            this.list_sync(&owned, token.as_deref(), max_results)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_segment_should_round_trip_any_segment() {
        for segment in [
            "plain",
            "a b",
            "..",
            ".",
            "50%",
            "ü/ñ",
            "https:%2F%2Fx",
            "-_.x",
        ] {
            let encoded = encode_segment(segment);
            assert!(
                !encoded.contains('/') && !encoded.starts_with('.'),
                "{encoded}"
            );
            assert_eq!(decode_segment(&encoded).as_deref(), Some(segment));
        }
    }

    #[tokio::test]
    async fn list_should_skip_a_file_that_is_not_an_object() {
        let dir = tempfile::tempdir().unwrap();
        let storage = DirStorage::open(dir.path().to_owned()).await.unwrap();
        storage
            .put("p/good", &Metadata::new(), PutMode::Create)
            .await
            .unwrap();
        fs::write(dir.path().join("objects/p/bad"), b"not json").unwrap();
        let page = storage.list("p/", None, 10).await.unwrap();
        let names: Vec<&str> = page.objects.iter().map(|o| o.name.as_str()).collect();
        assert_eq!(names, ["p/good"]);
    }

    #[test]
    fn encode_segment_should_hash_long_segments() {
        let long = "k".repeat(300);
        let encoded = encode_segment(&long);
        assert!(encoded.starts_with('~') && encoded.len() == 65);
        assert_eq!(decode_segment(&encoded), None);
    }
}
