//! Packed byte storage for znode names and data.
//!
//! A million small allocations from the general allocator cost a header and
//! rounding each, and interleave with the short-lived buffers of the request path,
//! which strands freed memory between long-lived blobs. Here small blobs are carved
//! from 1 MiB pages in 8-byte size classes with a free list per class, so a
//! 110-byte blob takes 112 bytes and pages hold nothing else. Blobs above
//! [`MAX_SMALL`] get a page of their own, given back when they are freed.
//!
//! Pages are shared with a [`Blobs::frozen`] copy (a snapshot being written) until written:
//! the first write to a shared page copies it.

use std::sync::Arc;

/// Size of a page small blobs are carved from.
const PAGE: usize = 1 << 20;
/// Largest blob carved from shared pages.
const MAX_SMALL: usize = 4096;
/// Size classes are multiples of this.
const GRAIN: usize = 8;

/// Bits of [`BlobRef::slot`] that hold a small blob's length (MAX_SMALL < 2^13).
const LEN_BITS: u32 = 13;
/// Set in [`BlobRef::slot`] for a big blob, whose length is the rest of the word.
const BIG: u32 = 1 << 31;

/// Where a blob lives: 8 bytes, as every znode holds one. Only meaningful for the
/// [`Blobs`] that made it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BlobRef {
    page: u32,
    /// Small blob: `offset / GRAIN << LEN_BITS | len` (offsets are below 2^20, so this
    /// stays under 2^30). Big blob: `BIG | len`, at offset 0 of its own page.
    slot: u32,
}

impl BlobRef {
    fn small(page: u32, offset: usize, len: usize) -> BlobRef {
        BlobRef { page, slot: ((offset / GRAIN) as u32) << LEN_BITS | len as u32 }
    }

    pub(crate) fn len(self) -> usize {
        if self.slot & BIG != 0 {
            (self.slot & !BIG) as usize
        } else {
            (self.slot & ((1 << LEN_BITS) - 1)) as usize
        }
    }

    fn offset(self) -> usize {
        if self.slot & BIG != 0 {
            0
        } else {
            (self.slot >> LEN_BITS) as usize * GRAIN
        }
    }
}

/// The pages and free lists.
#[derive(Debug, Clone, Default)]
pub(crate) struct Blobs {
    pages: Vec<Arc<Box<[u8]>>>,
    /// Free small slots by size class (`len.div_ceil(GRAIN)`), as (page, offset).
    free: Vec<Vec<(u32, u32)>>,
    /// Page slots released by big blobs, reused first.
    free_pages: Vec<u32>,
    /// The page small blobs are currently carved from, and its used length.
    open: Option<(u32, usize)>,
}

impl Blobs {
    /// A copy for reading, sharing every page until this one writes it.
    pub(crate) fn frozen(&self) -> Blobs {
        Blobs { pages: self.pages.clone(), ..Blobs::default() }
    }

    /// Stores the concatenation of `parts` and returns where it went.
    pub(crate) fn alloc(&mut self, parts: &[&[u8]]) -> BlobRef {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let r = if len > MAX_SMALL { self.alloc_big(len) } else { self.alloc_small(len) };
        let mut at = r.offset();
        if let Some(page) = self.pages.get_mut(r.page as usize).map(Arc::make_mut) {
            for part in parts {
                if let Some(dst) = page.get_mut(at..at + part.len()) {
                    dst.copy_from_slice(part);
                }
                at += part.len();
            }
        }
        r
    }

    fn alloc_big(&mut self, len: usize) -> BlobRef {
        // Node data is bounded by the packet size limit, far below 2 GiB.
        let len = len.min((BIG - 1) as usize);
        let bytes = vec![0u8; len].into_boxed_slice();
        let page = match self.free_pages.pop() {
            Some(page) => {
                self.pages[page as usize] = Arc::new(bytes);
                page
            }
            None => self.push_page(bytes),
        };
        BlobRef { page, slot: BIG | len as u32 }
    }

    fn alloc_small(&mut self, len: usize) -> BlobRef {
        let class = len.div_ceil(GRAIN);
        if let Some((page, offset)) = self.free.get_mut(class).and_then(Vec::pop) {
            return BlobRef::small(page, offset as usize, len);
        }
        let size = class * GRAIN;
        let (page, used) = match self.open {
            Some((page, used)) if used + size <= PAGE => (page, used),
            // The unused tail of a full page (under MAX_SMALL bytes of 1 MiB) is left.
            // Zeroed pages are not resident until written.
            _ => (self.push_page(vec![0u8; PAGE].into_boxed_slice()), 0),
        };
        self.open = Some((page, used + size));
        BlobRef::small(page, used, len)
    }

    fn push_page(&mut self, bytes: Box<[u8]>) -> u32 {
        self.pages.push(Arc::new(bytes));
        (self.pages.len() - 1) as u32
    }

    pub(crate) fn get(&self, r: BlobRef) -> &[u8] {
        let start = r.offset();
        self.pages.get(r.page as usize).and_then(|p| p.get(start..start + r.len())).unwrap_or_default()
    }

    pub(crate) fn free(&mut self, r: BlobRef) {
        let len = r.len();
        if r.slot & BIG != 0 {
            if let Some(page) = self.pages.get_mut(r.page as usize) {
                *page = Arc::default();
                self.free_pages.push(r.page);
            }
            return;
        }
        let class = len.div_ceil(GRAIN);
        if self.free.len() <= class {
            self.free.resize_with(class + 1, Vec::new);
        }
        self.free[class].push((r.page, r.offset() as u32));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_stored_back_to_back_and_read_back() {
        let mut b = Blobs::default();
        let r = b.alloc(&[b"name", b"data"]);
        assert_eq!(b.get(r), b"namedata");
        let empty = b.alloc(&[b"", b""]);
        assert_eq!(b.get(empty), b"");
        assert_eq!(b.get(r), b"namedata", "a later blob does not overwrite an earlier one");
    }

    #[test]
    fn freed_small_slots_are_reused_by_the_same_class() {
        let mut b = Blobs::default();
        let first = b.alloc(&[&[1u8; 100]]);
        let _other = b.alloc(&[&[2u8; 100]]);
        b.free(first);
        let again = b.alloc(&[&[3u8; 97]]);
        assert_eq!((again.page, again.offset()), (first.page, first.offset()), "97 and 100 share the 104-byte class");
        assert_eq!(b.get(again), &[3u8; 97][..]);
        let bigger = b.alloc(&[&[4u8; 120]]);
        assert_ne!((bigger.page, bigger.offset()), (first.page, first.offset()));
    }

    #[test]
    fn big_blobs_get_their_own_page_and_give_it_back() {
        let mut b = Blobs::default();
        let small = b.alloc(&[b"x"]);
        let big = b.alloc(&[&vec![7u8; 100_000]]);
        assert_ne!(big.page, small.page);
        assert_eq!(b.get(big).len(), 100_000);
        b.free(big);
        assert!(b.pages[big.page as usize].is_empty(), "the page's memory is released");
        let again = b.alloc(&[&vec![8u8; 5000]]);
        assert_eq!(again.page, big.page, "the page slot is reused");
        assert_eq!(b.get(small), b"x");
    }

    #[test]
    fn pages_fill_before_a_new_one_is_opened() {
        let mut b = Blobs::default();
        let refs: Vec<BlobRef> = (0..20_000).map(|i: u32| b.alloc(&[&i.to_le_bytes(), &[0u8; 100]])).collect();
        assert_eq!(refs[19_999].len(), 104);
        assert_eq!(b.pages.len(), 2, "20,000 blobs of 104 bytes fit in two 1 MiB pages");
        for (i, r) in refs.iter().enumerate() {
            assert_eq!(&b.get(*r)[..4], &(i as u32).to_le_bytes());
        }
    }
}
