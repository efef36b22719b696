//! A simulated disk for crash testing, behind `session-fs`'s `Storage` seam.
//!
//! It keeps two views: what the running process sees (volatile) and what a power cut
//! would leave (durable). File data becomes durable only at its `sync`; a new name, a
//! rename or a removal only at a `sync_dir` of a directory it touches. At a crash, every
//! pending directory operation may or may not have landed (any subset, applied in
//! order), and every file whose data was not synced may hold its new data whole, its
//! last synced data (empty if never synced), or a torn prefix of the new data (after
//! the synced part, when the file only grew: an append).

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use session_fs::{Entry, EntryKind, HeldLock, LockMode, ReadOutcome, Storage, WriteFile};

#[derive(Debug, Clone)]
struct Inode {
    data: Vec<u8>,
    synced: Option<Vec<u8>>,
}

#[derive(Debug, Clone)]
enum DirOp {
    Link {
        path: PathBuf,
        inode: usize,
    },
    Unlink {
        path: PathBuf,
        inode: usize,
    },
    Rename {
        from: PathBuf,
        to: PathBuf,
        inode: usize,
    },
}

impl DirOp {
    fn touches(&self, dir: &Path) -> bool {
        let parent = |p: &PathBuf| p.parent() == Some(dir);
        match self {
            DirOp::Link { path, .. } | DirOp::Unlink { path, .. } => parent(path),
            DirOp::Rename { from, to, .. } => parent(from) || parent(to),
        }
    }

    fn apply(&self, names: &mut BTreeMap<PathBuf, usize>) {
        match self {
            DirOp::Link { path, inode } => {
                names.insert(path.clone(), *inode);
            }
            DirOp::Unlink { path, inode } => {
                if names.get(path) == Some(inode) {
                    names.remove(path);
                }
            }
            DirOp::Rename { from, to, inode } => {
                if names.get(from) == Some(inode) {
                    names.remove(from);
                    names.insert(to.clone(), *inode);
                }
            }
        }
    }
}

/// Which protocol steps the simulated disk honours: turning one off models a store
/// whose write protocol lacks that step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Correct,
    NoFileSync,
    NoDirSync,
}

#[derive(Debug, Clone, Default)]
struct State {
    dirs: BTreeSet<PathBuf>,
    inodes: Vec<Inode>,
    volatile: BTreeMap<PathBuf, usize>,
    durable: BTreeMap<PathBuf, usize>,
    pending: Vec<DirOp>,
    /// Mutating calls made so far.
    calls: usize,
    crashed: bool,
}

/// The simulated disk. Clones share state.
#[derive(Debug, Clone)]
pub(crate) struct SimDisk {
    state: Arc<Mutex<State>>,
    protocol: Protocol,
    /// Crash right after this many mutating calls.
    crash_after: Option<usize>,
    /// Fail this mutating call (1-based) with this errno, without crashing.
    fail_call: Option<(usize, i32)>,
}

/// A file's content in one crash state.
#[derive(Debug, Clone, Copy)]
enum Landed {
    Whole,
    Old,
    Torn(usize),
}

fn crashed() -> io::Error {
    io::Error::other("simulated crash")
}

impl SimDisk {
    pub(crate) fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State::default())),
            protocol: Protocol::Correct,
            crash_after: None,
            fail_call: None,
        }
    }

    /// The same disk contents, with a new crash budget and protocol, sharing nothing.
    pub(crate) fn fork(&self, protocol: Protocol, crash_after: Option<usize>) -> Self {
        let mut state = self.state.lock().unwrap().clone();
        state.calls = 0;
        state.crashed = false;
        Self {
            state: Arc::new(Mutex::new(state)),
            protocol,
            crash_after,
            fail_call: None,
        }
    }

    pub(crate) fn failing(mut self, call: usize, errno: i32) -> Self {
        self.fail_call = Some((call, errno));
        self
    }

    pub(crate) fn calls(&self) -> usize {
        self.state.lock().unwrap().calls
    }

    pub(crate) fn has_crashed(&self) -> bool {
        self.state.lock().unwrap().crashed
    }

    /// Counts one mutating call: fails it if it is the injected failure, and crashes
    /// after it if the budget is spent.
    fn step<T>(&self, f: impl FnOnce(&mut State) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.state.lock().unwrap();
        if state.crashed {
            return Err(crashed());
        }
        state.calls += 1;
        if let Some((_, errno)) = self.fail_call.filter(|(call, _)| *call == state.calls) {
            return Err(io::Error::from_raw_os_error(errno));
        }
        let result = f(&mut state);
        if self.crash_after == Some(state.calls) {
            state.crashed = true;
        }
        result
    }

    fn read_only<T>(&self, f: impl FnOnce(&State) -> io::Result<T>) -> io::Result<T> {
        let state = self.state.lock().unwrap();
        if state.crashed {
            return Err(crashed());
        }
        f(&state)
    }

    /// How many distinct crash states the current moment has (before sampling).
    fn shape(&self) -> (Vec<DirOp>, Vec<usize>) {
        let state = self.state.lock().unwrap();
        let unsynced: Vec<usize> = (0..state.inodes.len())
            .filter(|&i| state.inodes[i].synced.as_ref() != Some(&state.inodes[i].data))
            .collect();
        (state.pending.clone(), unsynced)
    }

    /// Every disk a power cut at this moment may leave, or `limit` of them sampled with
    /// `seed` when there are more.
    pub(crate) fn crash_states(&self, limit: usize, seed: u64) -> Vec<SimDisk> {
        let (pending, unsynced) = self.shape();
        let total = 2usize
            .checked_pow(pending.len() as u32)
            .and_then(|n| n.checked_mul(3usize.checked_pow(unsynced.len() as u32)?));
        let mut states = Vec::new();
        match total {
            Some(total) if total <= limit => {
                for n in 0..total {
                    let subset = n % (1 << pending.len());
                    let mut rest = n >> pending.len();
                    let landed: Vec<Landed> = unsynced
                        .iter()
                        .map(|_| {
                            let choice = rest % 3;
                            rest /= 3;
                            [Landed::Whole, Landed::Old, Landed::Torn(usize::MAX)][choice]
                        })
                        .collect();
                    states.push(self.materialise(&pending, subset as u64, &unsynced, &landed));
                }
            }
            _ => {
                let mut rng = StdRng::seed_from_u64(seed);
                for _ in 0..limit {
                    let subset: u64 = rng.random();
                    let landed: Vec<Landed> = unsynced
                        .iter()
                        .map(|_| match rng.random_range(0..3) {
                            0 => Landed::Whole,
                            1 => Landed::Old,
                            _ => Landed::Torn(rng.random::<u32>() as usize),
                        })
                        .collect();
                    states.push(self.materialise(&pending, subset, &unsynced, &landed));
                }
            }
        }
        states
    }

    fn materialise(&self, pending: &[DirOp], subset: u64, unsynced: &[usize], landed: &[Landed]) -> SimDisk {
        let state = self.state.lock().unwrap();
        let mut names = state.durable.clone();
        for (i, op) in pending.iter().enumerate() {
            if i >= 64 || subset & (1 << i) != 0 {
                op.apply(&mut names);
            }
        }
        let mut inodes: Vec<Inode> = state
            .inodes
            .iter()
            .map(|inode| {
                let data = inode.synced.clone().unwrap_or_default();
                Inode {
                    synced: Some(data.clone()),
                    data,
                }
            })
            .collect();
        for (&i, &how) in unsynced.iter().zip(landed) {
            let new = &state.inodes[i].data;
            let content = match how {
                Landed::Whole => new.clone(),
                Landed::Old => continue,
                Landed::Torn(at) => {
                    // Data already synced stays (an append never un-persists what
                    // fsync made durable); of the rest, a strict, non-empty prefix where
                    // there is one.
                    let kept = state.inodes[i]
                        .synced
                        .as_ref()
                        .filter(|synced| new.starts_with(synced))
                        .map_or(0, Vec::len);
                    let unsynced = new.len() - kept;
                    let cut = if unsynced < 2 { 0 } else { 1 + at % (unsynced - 1) };
                    new[..kept + cut].to_vec()
                }
            };
            inodes[i] = Inode {
                data: content.clone(),
                synced: Some(content),
            };
        }
        SimDisk {
            state: Arc::new(Mutex::new(State {
                dirs: state.dirs.clone(),
                inodes,
                volatile: names.clone(),
                durable: names,
                ..State::default()
            })),
            protocol: Protocol::Correct,
            crash_after: None,
            fail_call: None,
        }
    }

    /// The visible files: path -> content.
    pub(crate) fn files(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        let state = self.state.lock().unwrap();
        state
            .volatile
            .iter()
            .map(|(p, &i)| (p.clone(), state.inodes[i].data.clone()))
            .collect()
    }

    /// Puts a file on disk, durably (test set-up).
    pub(crate) fn put_durable(&self, path: &Path, data: &[u8]) {
        let mut state = self.state.lock().unwrap();
        state.inodes.push(Inode {
            data: data.to_vec(),
            synced: Some(data.to_vec()),
        });
        let inode = state.inodes.len() - 1;
        state.volatile.insert(path.to_owned(), inode);
        state.durable.insert(path.to_owned(), inode);
    }
}

struct SimFile {
    disk: SimDisk,
    inode: usize,
}

impl WriteFile for SimFile {
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        let inode = self.inode;
        self.disk.step(|s| {
            s.inodes[inode].data.extend_from_slice(data);
            Ok(())
        })
    }

    fn sync(&mut self) -> io::Result<()> {
        let (inode, honoured) = (self.inode, self.disk.protocol != Protocol::NoFileSync);
        self.disk.step(|s| {
            if honoured {
                s.inodes[inode].synced = Some(s.inodes[inode].data.clone());
            }
            Ok(())
        })
    }
}

struct NoLock;
impl HeldLock for NoLock {}

fn not_found(path: &Path) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{} not found", path.display()))
}

impl Storage for SimDisk {
    fn create_dir(&self, path: &Path) -> io::Result<()> {
        // Directories are created once at set-up and never lost.
        self.state.lock().unwrap().dirs.insert(path.to_owned());
        Ok(())
    }

    fn create_new(&self, path: &Path) -> io::Result<Box<dyn WriteFile>> {
        let inode = self.step(|s| {
            if s.volatile.contains_key(path) {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            s.inodes.push(Inode {
                data: Vec::new(),
                synced: None,
            });
            let inode = s.inodes.len() - 1;
            s.volatile.insert(path.to_owned(), inode);
            s.pending.push(DirOp::Link {
                path: path.to_owned(),
                inode,
            });
            Ok(inode)
        })?;
        Ok(Box::new(SimFile {
            disk: self.clone(),
            inode,
        }))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step(|s| {
            let inode = *s.volatile.get(from).ok_or_else(|| not_found(from))?;
            s.volatile.remove(from);
            s.volatile.insert(to.to_owned(), inode);
            s.pending.push(DirOp::Rename {
                from: from.to_owned(),
                to: to.to_owned(),
                inode,
            });
            Ok(())
        })
    }

    fn hard_link(&self, from: &Path, to: &Path) -> io::Result<()> {
        self.step(|s| {
            let inode = *s.volatile.get(from).ok_or_else(|| not_found(from))?;
            if s.volatile.contains_key(to) {
                return Err(io::Error::from(io::ErrorKind::AlreadyExists));
            }
            s.volatile.insert(to.to_owned(), inode);
            s.pending.push(DirOp::Link {
                path: to.to_owned(),
                inode,
            });
            Ok(())
        })
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        self.step(|s| {
            let inode = s.volatile.remove(path).ok_or_else(|| not_found(path))?;
            s.pending.push(DirOp::Unlink {
                path: path.to_owned(),
                inode,
            });
            Ok(())
        })
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let honoured = self.protocol != Protocol::NoDirSync;
        self.step(|s| {
            if honoured {
                let (now, later): (Vec<DirOp>, Vec<DirOp>) =
                    s.pending.drain(..).partition(|op| op.touches(dir));
                for op in now {
                    op.apply(&mut s.durable);
                }
                s.pending = later;
            }
            Ok(())
        })
    }

    fn read(&self, path: &Path, limit: u64) -> io::Result<ReadOutcome> {
        self.read_only(|s| {
            let inode = *s.volatile.get(path).ok_or_else(|| not_found(path))?;
            let data = &s.inodes[inode].data;
            Ok(if data.len() as u64 > limit {
                ReadOutcome::TooLarge {
                    size: data.len() as u64,
                }
            } else {
                ReadOutcome::Bytes(data.clone())
            })
        })
    }

    fn list(&self, dir: &Path, _sizes: bool) -> io::Result<Vec<Entry>> {
        self.read_only(|s| {
            let files = s
                .volatile
                .iter()
                .filter(|(p, _)| p.parent() == Some(dir))
                .map(|(p, &i)| {
                    Entry::new(
                        p.file_name().unwrap_or_default().to_owned(),
                        EntryKind::File,
                        s.inodes[i].data.len() as u64,
                    )
                });
            let dirs = s
                .dirs
                .iter()
                .filter(|p| p.parent() == Some(dir))
                .map(|p| Entry::new(p.file_name().unwrap_or_default().to_owned(), EntryKind::Dir, 0));
            Ok(files.chain(dirs).collect())
        })
    }

    fn lock(&self, _path: &Path, _mode: LockMode, _wait: bool) -> io::Result<Option<Box<dyn HeldLock>>> {
        // One simulated process: the store's in-process locks are what matters here.
        Ok(Some(Box::new(NoLock)))
    }

    fn kind(&self, path: &Path) -> io::Result<Option<EntryKind>> {
        self.read_only(|s| {
            Ok(if s.dirs.contains(path) {
                Some(EntryKind::Dir)
            } else if s.volatile.contains_key(path) {
                Some(EntryKind::File)
            } else {
                None
            })
        })
    }

    fn set_mode(&self, path: &Path, _mode: u32) -> io::Result<()> {
        // Permissions are not part of what a power cut can lose; the name must exist.
        self.kind(path)?.map(|_| ()).ok_or_else(|| not_found(path))
    }
}
