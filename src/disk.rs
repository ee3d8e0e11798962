//! A disk store: records (a key, two metadata blobs, a body) as files under one directory, bounded
//! in bytes by a segmented LRU (scan-resistant), written atomically, found again after a restart
//! or upgrade. The result cache's disk tier and the originals' disk tier are each one.
//!
//! # Layout
//! `dir/ab/<32 hex>`: one file per entry, named by its 128-bit key hash (`ab` = its first byte).
//! A file is a fixed header (magic, version, CRC-32 of everything after it, lengths), the
//! entry's own key (checked on read), the serialized [`CacheMeta`](pingora_cache::CacheMeta)
//! halves and the body. Files are written in `dir/tmp/` and renamed into place, so a reader (or a
//! restart after `kill -9`) sees a whole file or none; the CRC catches what a power cut can leave
//! behind (a renamed file whose blocks never reached the disk): such a file is deleted on read.
//!
//! # Eviction
//! A segmented LRU over the files' sizes (rounded up to the 4 KiB block they take on disk): new
//! entries go to the probation segment, a read moves an entry to the protected segment (at most
//! 80 % of the budget; its least recent entries fall back to probation). Eviction takes
//! probation's least recent first, so a scan of one-hit URLs replaces other one-hit URLs, never
//! the entries that are read again.
//!
//! # Restarts
//! The index (key, size, segment, in recency order) is saved to `dir/index.bin` every few seconds
//! while it changes; [`DiskStore::open`] loads it, so the first request after a start finds the
//! entries at once. A scan ([`DiskStore::reconcile`], run in the background at start and from time
//! to time) adds files the saved index lacks (written after its last save, or by the other
//! process during a graceful upgrade) and deletes leftover temporary files. Until the first scan
//! has finished, a key the index lacks is looked for on disk.
//!
//! Everything here blocks: callers run it on blocking threads.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use bytes::Bytes;
use lru::LruCache;
use pingora_cache::key::HashBinary;

const MAGIC: &[u8; 4] = b"TBRC";
const VERSION: u8 = 1;
/// magic, version, 3 reserved, crc32, key, meta internal, meta header lengths (u32), body (u64).
const HEADER_LEN: usize = 4 + 1 + 3 + 4 + 4 + 4 + 4 + 8;
const INDEX_MAGIC: &[u8; 4] = b"TBRI";
const INDEX_FILE: &str = "index.bin";
const TMP_DIR: &str = "tmp";
/// Files take whole blocks on disk; the budget counts what they take, not their length.
const BLOCK: u64 = 4096;
/// The protected segment's share of the budget, in percent.
const PROTECTED_PERCENT: u64 = 80;

/// One cache entry as stored: its key (for the collision check), its meta and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskRecord {
    pub key: Bytes,
    pub meta_internal: Bytes,
    pub meta_header: Bytes,
    pub body: Bytes,
}

/// Totals of a [`DiskStore`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DiskStats {
    pub entries: usize,
    /// The budgeted bytes: file sizes rounded up to whole blocks.
    pub bytes: u64,
    /// Files found damaged (deleted when read).
    pub corrupt: u64,
    /// Entries evicted to stay within the budget.
    pub evicted: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Segment {
    Probation = 0,
    Protected = 1,
}

/// The segmented LRU index: key → budgeted bytes, in recency order.
struct Index {
    probation: LruCache<HashBinary, u64>,
    protected: LruCache<HashBinary, u64>,
    probation_bytes: u64,
    protected_bytes: u64,
    /// Changed since the last save.
    dirty: bool,
}

impl Index {
    fn new() -> Self {
        Index {
            probation: LruCache::unbounded(),
            protected: LruCache::unbounded(),
            probation_bytes: 0,
            protected_bytes: 0,
            dirty: false,
        }
    }

    fn bytes(&self) -> u64 {
        self.probation_bytes + self.protected_bytes
    }

    fn len(&self) -> usize {
        self.probation.len() + self.protected.len()
    }

    fn contains(&self, key: &HashBinary) -> bool {
        self.probation.contains(key) || self.protected.contains(key)
    }

    fn remove(&mut self, key: &HashBinary) -> bool {
        self.dirty = true;
        if let Some(size) = self.probation.pop(key) {
            self.probation_bytes -= size;
            true
        } else if let Some(size) = self.protected.pop(key) {
            self.protected_bytes -= size;
            true
        } else {
            false
        }
    }

    /// A new or rewritten entry: probation's most recent end (a rewrite of a protected entry stays
    /// protected, with its new size).
    fn insert(&mut self, key: HashBinary, size: u64) {
        self.dirty = true;
        if let Some(old) = self.protected.peek_mut(&key) {
            self.protected_bytes = self.protected_bytes - *old + size;
            *old = size;
            self.protected.promote(&key);
            return;
        }
        if let Some(old) = self.probation.put(key, size) {
            self.probation_bytes -= old;
        }
        self.probation_bytes += size;
    }

    /// An entry found by scanning, of unknown recency: probation's least recent end.
    fn insert_cold(&mut self, key: HashBinary, size: u64) {
        if self.contains(&key) {
            return;
        }
        self.insert(key, size);
        self.probation.demote(&key);
    }

    /// A read: promote to the protected segment, keeping it within its share of `budget`.
    fn touch(&mut self, key: &HashBinary, budget: u64) {
        self.dirty = true;
        if self.protected.promote(key) {
            return;
        }
        let Some(size) = self.probation.pop(key) else { return };
        self.probation_bytes -= size;
        self.protected.put(*key, size);
        self.protected_bytes += size;
        let protected_cap = budget / 100 * PROTECTED_PERCENT;
        while self.protected_bytes > protected_cap && self.protected.len() > 1 {
            let Some((old, old_size)) = self.protected.pop_lru() else { break };
            self.protected_bytes -= old_size;
            self.probation.put(old, old_size);
            self.probation_bytes += old_size;
        }
    }

    /// Remove least valuable entries until the total is within `budget`; returns them.
    fn evict_to(&mut self, budget: u64) -> Vec<HashBinary> {
        let mut victims = Vec::new();
        while self.bytes() > budget {
            let popped = match self.probation.pop_lru() {
                Some((key, size)) => {
                    self.probation_bytes -= size;
                    key
                }
                None => match self.protected.pop_lru() {
                    Some((key, size)) => {
                        self.protected_bytes -= size;
                        key
                    }
                    None => break,
                },
            };
            victims.push(popped);
        }
        if !victims.is_empty() {
            self.dirty = true;
        }
        victims
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.len() * 25);
        out.extend_from_slice(INDEX_MAGIC);
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        // Least recent first, so loading in file order rebuilds the same order.
        for (segment, lru) in [(Segment::Probation, &self.probation), (Segment::Protected, &self.protected)] {
            for (key, size) in lru.iter().rev() {
                out.extend_from_slice(key);
                out.extend_from_slice(&size.to_le_bytes());
                out.push(segment as u8);
            }
        }
        out
    }

    fn decode(data: &[u8]) -> Option<Index> {
        let rest = data.strip_prefix(INDEX_MAGIC.as_slice())?;
        let (count, mut rest) = rest.split_first_chunk::<8>()?;
        let count = u64::from_le_bytes(*count);
        let mut index = Index::new();
        for _ in 0..count {
            let (key, tail) = rest.split_first_chunk::<16>()?;
            let (size, tail) = tail.split_first_chunk::<8>()?;
            let (segment, tail) = tail.split_first()?;
            rest = tail;
            let size = u64::from_le_bytes(*size);
            if *segment == Segment::Protected as u8 {
                index.protected.put(*key, size);
                index.protected_bytes += size;
            } else {
                index.probation.put(*key, size);
                index.probation_bytes += size;
            }
        }
        Some(index)
    }
}

/// Complete cache entries as files under one directory, within a byte budget.
pub struct DiskStore {
    dir: PathBuf,
    max_bytes: u64,
    index: Mutex<Index>,
    /// The first scan has finished: a key the index lacks is not on disk.
    scanned: AtomicBool,
    next_tmp: AtomicU64,
    corrupt: AtomicU64,
    evicted: AtomicU64,
}

impl DiskStore {
    /// Open (creating it if needed) the store in `dir`, with its saved index. Fails when the
    /// directory cannot be created or written.
    pub fn open(dir: &Path, max_bytes: u64) -> io::Result<DiskStore> {
        fs::create_dir_all(dir.join(TMP_DIR))?;
        // Writable: the same check `-t` makes, at start.
        let probe = dir.join(TMP_DIR).join(format!("probe.{}", std::process::id()));
        fs::write(&probe, b"")?;
        fs::remove_file(&probe)?;
        let index = match fs::read(dir.join(INDEX_FILE)) {
            Ok(data) => Index::decode(&data).unwrap_or_else(|| {
                log::warn!("{}: damaged index; rebuilding it from the files", dir.join(INDEX_FILE).display());
                Index::new()
            }),
            Err(_) => Index::new(),
        };
        Ok(DiskStore {
            dir: dir.to_path_buf(),
            max_bytes,
            index: Mutex::new(index),
            scanned: AtomicBool::new(false),
            next_tmp: AtomicU64::new(0),
            corrupt: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    pub fn stats(&self) -> DiskStats {
        let index = self.lock();
        DiskStats {
            entries: index.len(),
            bytes: index.bytes(),
            corrupt: self.corrupt.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Index> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn path(&self, key: &HashBinary) -> PathBuf {
        let hex = hex(key);
        self.dir.join(&hex[..2]).join(hex)
    }

    /// Whether a read of `key` can find anything (no disk access).
    pub fn may_contain(&self, key: &HashBinary) -> bool {
        !self.scanned.load(Ordering::Acquire) || self.lock().contains(key)
    }

    /// The entry stored under `key`, whole and checked; `None` when there is none or it is damaged
    /// (then deleted). A read counts as a use for eviction.
    pub fn get(&self, key: &HashBinary, expected_key: &[u8]) -> Option<DiskRecord> {
        if !self.may_contain(key) {
            return None;
        }
        let path = self.path(key);
        let data = match fs::read(&path) {
            Ok(data) => data,
            Err(_) => {
                // Evicted by another process sharing the directory (an upgrade), or never there.
                self.lock().remove(key);
                return None;
            }
        };
        let size = blocks(data.len() as u64);
        match decode(Bytes::from(data)) {
            Some(record) if record.key == expected_key => {
                let mut index = self.lock();
                if !index.contains(key) {
                    index.insert(*key, size);
                }
                index.touch(key, self.max_bytes);
                Some(record)
            }
            Some(_) => None, // another key with the same 128-bit hash: leave it
            None => {
                log::warn!("{}: damaged cache file, deleted", path.display());
                self.corrupt.fetch_add(1, Ordering::Relaxed);
                self.lock().remove(key);
                let _ = fs::remove_file(&path);
                None
            }
        }
    }

    /// Store `record` under `key`, replacing any entry, and evict to the budget. An entry larger
    /// than the whole budget is not stored.
    pub fn put(&self, key: &HashBinary, record: &DiskRecord) -> io::Result<()> {
        let data = encode(record);
        let size = blocks(data.len() as u64);
        if size > self.max_bytes {
            return Ok(());
        }
        let n = self.next_tmp.fetch_add(1, Ordering::Relaxed);
        let tmp = self.dir.join(TMP_DIR).join(format!("{}.{}.{n}.tmp", hex(key), std::process::id()));
        let written = (|| {
            let mut file = File::create(&tmp)?;
            file.write_all(&data)?;
            drop(file);
            let path = self.path(key);
            match fs::rename(&tmp, &path) {
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir_all(path.parent().expect("a file under a shard directory"))?;
                    fs::rename(&tmp, &path)
                }
                other => other,
            }
        })();
        if let Err(e) = written {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        let victims = {
            let mut index = self.lock();
            index.insert(*key, size);
            index.evict_to(self.max_bytes)
        };
        self.delete_files(&victims);
        Ok(())
    }

    /// Delete the entry under `key`; whether there was one in the index.
    pub fn remove(&self, key: &HashBinary) -> bool {
        let known = self.lock().remove(key);
        let deleted = fs::remove_file(self.path(key)).is_ok();
        known || deleted
    }

    fn delete_files(&self, victims: &[HashBinary]) {
        for key in victims {
            // Already gone is fine: another process sharing the directory deleted it.
            let _ = fs::remove_file(self.path(key));
        }
        self.evicted.fetch_add(victims.len() as u64, Ordering::Relaxed);
    }

    /// Save the index when it changed since the last save (written aside, then renamed).
    pub fn save_index(&self) -> io::Result<()> {
        let data = {
            let mut index = self.lock();
            if !index.dirty {
                return Ok(());
            }
            index.dirty = false;
            index.encode()
        };
        let tmp = self.dir.join(TMP_DIR).join(format!("index.{}.tmp", std::process::id()));
        let saved = fs::write(&tmp, &data).and_then(|()| fs::rename(&tmp, self.dir.join(INDEX_FILE)));
        if saved.is_err() {
            let _ = fs::remove_file(&tmp);
            self.lock().dirty = true;
        }
        saved
    }

    /// Walk the directory: add entries the index lacks (least recent), delete temporary files
    /// older than a minute (a crashed write), then evict to the budget. Returns the files seen.
    pub fn reconcile(&self) -> io::Result<usize> {
        let mut seen = 0;
        for shard in fs::read_dir(&self.dir)? {
            let shard = shard?;
            let name = shard.file_name();
            let Some(name) = name.to_str() else { continue };
            if name == TMP_DIR {
                self.clear_tmp(&shard.path());
                continue;
            }
            if name.len() != 2 || !shard.file_type()?.is_dir() {
                continue;
            }
            let Ok(files) = fs::read_dir(shard.path()) else { continue };
            for file in files.flatten() {
                let Some(key) = file.file_name().to_str().and_then(unhex) else { continue };
                let Ok(meta) = file.metadata() else { continue };
                seen += 1;
                self.lock().insert_cold(key, blocks(meta.len()));
            }
        }
        self.scanned.store(true, Ordering::Release);
        let victims = self.lock().evict_to(self.max_bytes);
        self.delete_files(&victims);
        Ok(seen)
    }

    fn clear_tmp(&self, tmp: &Path) {
        let Ok(files) = fs::read_dir(tmp) else { return };
        for file in files.flatten() {
            let old = file
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() >= 60);
            if old {
                let _ = fs::remove_file(file.path());
            }
        }
    }
}

fn blocks(len: u64) -> u64 {
    len.div_ceil(BLOCK).max(1) * BLOCK
}

fn hex(key: &HashBinary) -> String {
    key.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(name: &str) -> Option<HashBinary> {
    if name.len() != 32 {
        return None;
    }
    let mut key = [0u8; 16];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(name.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(key)
}

/// The file (or object) bytes of a record.
pub fn encode(record: &DiskRecord) -> Vec<u8> {
    let parts = [&record.key, &record.meta_internal, &record.meta_header, &record.body];
    let payload_len: usize = parts.iter().map(|p| p.len()).sum();
    let mut out = Vec::with_capacity(HEADER_LEN + payload_len);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[VERSION, 0, 0, 0]);
    out.extend_from_slice(&[0; 4]); // CRC, filled below
    for part in &parts[..3] {
        out.extend_from_slice(&(part.len() as u32).to_le_bytes());
    }
    out.extend_from_slice(&(record.body.len() as u64).to_le_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
    let crc = crc32fast::hash(&out[12..]);
    out[8..12].copy_from_slice(&crc.to_le_bytes());
    out
}

/// A record from its bytes, or `None` when they are not a whole, undamaged record.
pub fn decode(data: Bytes) -> Option<DiskRecord> {
    if data.len() < HEADER_LEN || &data[..4] != MAGIC || data[4] != VERSION || data[5..8] != [0, 0, 0] {
        return None;
    }
    let crc = u32::from_le_bytes(data[8..12].try_into().ok()?);
    let len32 = |at: usize| u32::from_le_bytes(data[at..at + 4].try_into().expect("4 bytes")) as usize;
    let (key_len, internal_len, header_len) = (len32(12), len32(16), len32(20));
    let body_len = usize::try_from(u64::from_le_bytes(data[24..32].try_into().ok()?)).ok()?;
    let total =
        HEADER_LEN.checked_add(key_len)?.checked_add(internal_len)?.checked_add(header_len)?.checked_add(body_len)?;
    if total != data.len() || crc32fast::hash(&data[12..]) != crc {
        return None;
    }
    let mut at = HEADER_LEN;
    let mut take = |len: usize| {
        let part = data.slice(at..at + len);
        at += len;
        part
    };
    Some(DiskRecord {
        key: take(key_len),
        meta_internal: take(internal_len),
        meta_header: take(header_len),
        body: take(body_len),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(key: &str, body_len: usize) -> DiskRecord {
        DiskRecord {
            key: Bytes::from(key.to_string()),
            meta_internal: Bytes::from_static(b"internal"),
            meta_header: Bytes::from_static(b"header"),
            body: Bytes::from(vec![7u8; body_len]),
        }
    }

    fn key(n: u8) -> HashBinary {
        [n; 16]
    }

    #[test]
    fn record_round_trip_and_damage() {
        let r = record("k", 1000);
        let data = encode(&r);
        assert_eq!(decode(Bytes::from(data.clone())), Some(r));
        // Truncated, extended, or a flipped bit anywhere: refused.
        assert_eq!(decode(Bytes::from(data[..data.len() - 1].to_vec())), None);
        let mut longer = data.clone();
        longer.push(0);
        assert_eq!(decode(Bytes::from(longer)), None);
        for at in [0, 5, 9, 14, 40, data.len() - 1] {
            let mut flipped = data.clone();
            flipped[at] ^= 1;
            assert_eq!(decode(Bytes::from(flipped)), None, "bit flipped at {at}");
        }
    }

    #[test]
    fn put_get_remove_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path(), 1 << 20).unwrap();
        store.reconcile().unwrap();
        store.put(&key(1), &record("one", 100)).unwrap();
        assert_eq!(store.get(&key(1), b"one").unwrap().body.len(), 100);
        assert!(store.get(&key(1), b"other").is_none(), "key checked");
        assert!(store.get(&key(2), b"two").is_none());
        store.save_index().unwrap();
        let reopened = DiskStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(reopened.stats().entries, 1, "index loaded");
        assert!(reopened.get(&key(1), b"one").is_some());
        assert!(reopened.remove(&key(1)));
        assert!(reopened.get(&key(1), b"one").is_none());
    }

    #[test]
    fn unsaved_entries_found_before_and_after_the_scan() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path(), 1 << 20).unwrap();
        store.put(&key(3), &record("three", 10)).unwrap();
        // No save: a crash. The new process finds the file before its scan and after it.
        let reopened = DiskStore::open(dir.path(), 1 << 20).unwrap();
        assert!(reopened.get(&key(3), b"three").is_some());
        let reopened = DiskStore::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(reopened.reconcile().unwrap(), 1);
        assert_eq!(reopened.stats().entries, 1);
        assert!(reopened.get(&key(3), b"three").is_some());
    }

    #[test]
    fn damaged_file_is_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = DiskStore::open(dir.path(), 1 << 20).unwrap();
        store.put(&key(4), &record("four", 5000)).unwrap();
        let path = store.path(&key(4));
        let data = fs::read(&path).unwrap();
        fs::write(&path, &data[..data.len() / 2]).unwrap();
        assert!(store.get(&key(4), b"four").is_none());
        assert!(!path.exists());
        assert_eq!(store.stats().corrupt, 1);
    }

    #[test]
    fn budget_holds_and_scans_do_not_evict_what_is_read() {
        let dir = tempfile::tempdir().unwrap();
        // 20 blocks; each record takes one block.
        let store = DiskStore::open(dir.path(), 20 * BLOCK).unwrap();
        store.reconcile().unwrap();
        for n in 0..5 {
            store.put(&key(n), &record(&format!("hot{n}"), 100)).unwrap();
            assert!(store.get(&key(n), format!("hot{n}").as_bytes()).is_some());
        }
        // A scan of 200 one-hit entries.
        for n in 5..205u8 {
            store.put(&key(n), &record(&format!("cold{n}"), 100)).unwrap();
            assert!(store.stats().bytes <= 20 * BLOCK);
        }
        for n in 0..5 {
            assert!(store.get(&key(n), format!("hot{n}").as_bytes()).is_some(), "hot entry {n} kept");
        }
        let files = fs::read_dir(dir.path()).unwrap().flatten().filter(|e| e.file_name().len() == 2);
        let on_disk: usize = files.map(|d| fs::read_dir(d.path()).unwrap().count()).sum();
        assert_eq!(on_disk, store.stats().entries);
        assert_eq!(on_disk, 20);
    }

    #[test]
    fn index_encoding_keeps_order_and_segments() {
        let mut index = Index::new();
        for n in 0..4 {
            index.insert(key(n), BLOCK);
        }
        index.touch(&key(1), 1 << 30);
        let decoded = Index::decode(&index.encode()).unwrap();
        assert_eq!(decoded.protected.len(), 1);
        assert!(decoded.protected.contains(&key(1)));
        let order: Vec<_> = decoded.probation.iter().map(|(k, _)| k[0]).collect();
        assert_eq!(order, vec![3, 2, 0], "most recent first");
        assert_eq!(decoded.bytes(), 4 * BLOCK);
    }
}
