//! A vector whose copies share memory until written, so that a snapshot of the tree is a
//! copy taken in microseconds and serialized while the tree goes on changing.
//!
//! Elements live in chunks of [`CHUNK`] behind an `Arc`. Cloning the vector clones the
//! chunk pointers only; the first write to a chunk that a copy still shares copies that
//! chunk (`Arc::make_mut`), and only that one. Writes to chunks nobody shares cost one
//! reference-count check. While a snapshot is serialized, apply pays one chunk copy per
//! chunk it touches first, and memory grows by those chunks until the snapshot is done.

use std::ops::{Index, IndexMut};
use std::sync::Arc;

const CHUNK_BITS: usize = 10;
/// Elements per chunk: 96 KiB of znodes, small enough that a write copies little, large
/// enough that a copy of millions of elements is a few thousand pointers.
pub(crate) const CHUNK: usize = 1 << CHUNK_BITS;
const MASK: usize = CHUNK - 1;

#[derive(Debug)]
pub(crate) struct CowVec<T> {
    chunks: Vec<Arc<Vec<T>>>,
    len: usize,
}

impl<T> Default for CowVec<T> {
    fn default() -> Self {
        CowVec { chunks: Vec::new(), len: 0 }
    }
}

/// A copy that shares every chunk with the original.
impl<T> Clone for CowVec<T> {
    fn clone(&self) -> Self {
        CowVec { chunks: self.chunks.clone(), len: self.len }
    }
}

impl<T: Clone> CowVec<T> {
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i >> CHUNK_BITS)?.get(i & MASK)
    }

    /// The element, its chunk copied first if a copy of this vector shares it.
    pub(crate) fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        Arc::make_mut(self.chunks.get_mut(i >> CHUNK_BITS)?).get_mut(i & MASK)
    }

    pub(crate) fn push(&mut self, value: T) {
        if self.len & MASK == 0 {
            self.chunks.push(Arc::new(Vec::with_capacity(CHUNK)));
        }
        if let Some(last) = self.chunks.last_mut() {
            Arc::make_mut(last).push(value);
            self.len += 1;
        }
    }

    pub(crate) fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }

    /// Room for `additional` more elements' chunk pointers.
    pub(crate) fn reserve(&mut self, additional: usize) {
        self.chunks.reserve(additional.div_ceil(CHUNK));
    }
}

impl<T: Clone> Index<usize> for CowVec<T> {
    type Output = T;

    /// Panics when out of bounds, as a slice does.
    fn index(&self, i: usize) -> &T {
        &self.chunks[i >> CHUNK_BITS][i & MASK]
    }
}

impl<T: Clone> IndexMut<usize> for CowVec<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut Arc::make_mut(&mut self.chunks[i >> CHUNK_BITS])[i & MASK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_keep_their_index_across_chunks() {
        let mut v = CowVec::default();
        for i in 0..3 * CHUNK + 5 {
            v.push(i);
        }
        assert_eq!(v.len(), 3 * CHUNK + 5);
        assert_eq!((v[0], v[CHUNK - 1], v[CHUNK], v[3 * CHUNK + 4]), (0, CHUNK - 1, CHUNK, 3 * CHUNK + 4));
        assert_eq!(v.get(3 * CHUNK + 5), None);
        v[CHUNK] = 7;
        *v.get_mut(1).unwrap() = 8;
        assert_eq!((v[CHUNK], v[1]), (7, 8));
    }

    #[test]
    fn a_copy_keeps_its_contents_while_the_original_changes() {
        let mut v = CowVec::default();
        for i in 0..2 * CHUNK {
            v.push(i);
        }
        let copy = v.clone();
        v[3] = 1000;
        v.push(99);
        assert_eq!(copy[3], 3, "the written chunk was copied, not shared");
        assert_eq!(copy.len(), 2 * CHUNK);
        assert_eq!(v[3], 1000);
        // The chunk nobody wrote is still one allocation.
        assert!(Arc::ptr_eq(&v.chunks[1], &copy.chunks[1]));
        assert!(!Arc::ptr_eq(&v.chunks[0], &copy.chunks[0]));
    }
}
