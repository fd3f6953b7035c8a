//! Temporal row versioning, as a batch sees it: an update never
//! overwrites. It closes the entity's current row at the event's position
//! and adds the changed copy from that position, so every earlier position
//! can still be read (see `schema`).
//!
//! A [`Slot`] holds one entity's current version and the versions the batch
//! replaced; [`Slot::write`] inserts each new version once, already closed
//! when a later event of the batch replaced it, and closes a stored version
//! with one update. A [`Table`] holds the slots of one table and the keys
//! the batch changed.

use std::collections::HashMap;

use super::ProjectionError;

/// One entity as a batch sees it: its current version, the versions it
/// replaced during the batch, and whether the oldest of those (or the
/// current one, if none) is already stored in the file.
#[derive(Debug)]
pub(super) struct Slot<R> {
    stored: bool,
    /// Replaced versions, oldest first, with the position each became valid.
    earlier: Vec<(u64, R)>,
    /// The position the current version became valid.
    from: u64,
    /// The entity as of the last event of the batch that changed it.
    pub(super) current: R,
}

impl<R: Clone> Slot<R> {
    /// An entity whose current version became valid at `from`; `stored`
    /// if it was read from the file rather than created by the batch.
    pub(super) fn new(from: u64, current: R, stored: bool) -> Self {
        Self {
            stored,
            earlier: Vec::new(),
            from,
            current,
        }
    }

    /// Replaces the current version by `change` applied to it, from `at`.
    pub(super) fn revise(&mut self, at: u64, change: impl FnOnce(&mut R)) {
        let previous = self.current.clone();
        change(&mut self.current);
        self.earlier
            .push((std::mem::replace(&mut self.from, at), previous));
    }

    /// Whether the batch made anything that is not in the file yet.
    fn is_dirty(&self) -> bool {
        !self.stored || !self.earlier.is_empty()
    }

    /// Writes what the batch made: closes the stored version if it was
    /// replaced, then inserts each new version with the position that
    /// ended it.
    pub(super) fn write(
        &self,
        key: &str,
        close: impl FnOnce(&str, u64) -> rusqlite::Result<usize>,
        mut insert: impl FnMut(&str, u64, Option<u64>, &R) -> Result<(), ProjectionError>,
    ) -> Result<(), ProjectionError> {
        let versions: Vec<(u64, &R)> = self
            .earlier
            .iter()
            .map(|(from, row)| (*from, row))
            .chain(std::iter::once((self.from, &self.current)))
            .collect();
        // Each version ends where the next one starts; the last is current.
        let mut ends = versions
            .iter()
            .skip(1)
            .map(|(from, _)| Some(*from))
            .chain([None]);
        let mut starts = versions.iter();
        if self.stored {
            // The oldest version is the file's current row: close it if the
            // batch replaced it, and insert only what came after.
            starts.next();
            if let Some(Some(to)) = ends.next() {
                close(key, to)?;
            }
        }
        for ((from, row), to) in starts.zip(ends) {
            insert(key, *from, to, row)?;
        }
        Ok(())
    }

    /// After a commit: only the current version remains, and it is stored.
    fn settle(&mut self) {
        self.earlier.clear();
        self.stored = true;
    }
}

/// The slots of one table, and the keys the batch changed: writing and
/// settling a batch visit those only, not the whole cache.
#[derive(Debug)]
pub(super) struct Table<R> {
    /// Every entity in memory, by key: the batch's and the cached ones.
    pub(super) slots: HashMap<String, Slot<R>>,
    /// Keys of the entities the batch created or revised.
    pub(super) changed: Vec<String>,
}

impl<R> Default for Table<R> {
    fn default() -> Self {
        Self {
            slots: HashMap::new(),
            changed: Vec::new(),
        }
    }
}

impl<R: Clone> Table<R> {
    /// Adds an entity the batch creates.
    pub(super) fn create(&mut self, key: String, from: u64, row: R) {
        self.changed.push(key.clone());
        self.slots.insert(key, Slot::new(from, row, false));
    }

    /// The changed slots, in key order, so inserts walk the table's primary
    /// key from left to right.
    pub(super) fn changed(&mut self) -> Vec<(&str, &Slot<R>)> {
        self.changed.sort_unstable();
        self.changed.dedup();
        self.changed
            .iter()
            .filter_map(|key| Some((key.as_str(), self.slots.get(key)?)))
            .filter(|(_, slot)| slot.is_dirty())
            .collect()
    }

    /// After a commit: settles every changed slot.
    pub(super) fn settle(&mut self) {
        for key in self.changed.drain(..) {
            if let Some(slot) = self.slots.get_mut(&key) {
                slot.settle();
            }
        }
    }
}
