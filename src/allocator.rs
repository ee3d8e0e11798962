//! The process' memory allocator: small blocks (under [`LARGE_BYTES`]) from mimalloc, large ones
//! (decoded images, resize buffers, socket read buffers) from the system allocator (glibc).
//!
//! Measured on the 2-core bench machine against glibc alone, in runs that take turns (the
//! workloads of `scripts/bench/ab.sh`):
//! - site proxy, 2 KB page, one thread: +14% requests/s, user CPU per request 20 -> 16.5 µs
//!   (glibc's `malloc_consolidate`, `_int_malloc` and `_int_free` were 11% of the samples: a
//!   request of 1 KiB or more, such as Pingora's 4 KiB head buffers, makes glibc consolidate the
//!   small blocks freed before it);
//! - cache hits: +3%, user CPU 9.4 -> 8.8 µs;
//! - misses (12 MP and 1080p JPEG): unchanged, because their buffers stay with glibc. mimalloc
//!   for everything made them 3-6% slower and the peak RSS 35-80 MB higher; jemalloc for
//!   everything made 1080p misses 6% slower.
//!
//! The split costs mimalloc's per-thread pages for small blocks: an idle server's RSS is about
//! 18 MB higher.

use std::alloc::{GlobalAlloc, Layout, System};

use mimalloc::MiMalloc;

/// Blocks of this size and more come from the system allocator.
pub const LARGE_BYTES: usize = 64 * 1024;

/// The global allocator `main` installs: each block goes to one allocator, chosen by its size,
/// which `dealloc` and `realloc` are given again (a `Layout` is the same at both ends).
pub struct SplitAllocator;

fn is_large(layout: &Layout) -> bool {
    layout.size() >= LARGE_BYTES
}

// SAFETY: every method forwards to the allocator that `is_large` picks for the block's layout,
// which is the same layout the block was allocated with (GlobalAlloc's contract), so each block
// is freed or resized by the allocator that made it; a resize that crosses `LARGE_BYTES` moves
// the block to the other allocator by allocate, copy, free.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for SplitAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            System.alloc(layout)
        } else {
            MiMalloc.alloc(layout)
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_large(&layout) {
            System.alloc_zeroed(layout)
        } else {
            MiMalloc.alloc_zeroed(layout)
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_large(&layout) {
            System.dealloc(ptr, layout)
        } else {
            MiMalloc.dealloc(ptr, layout)
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // The caller guarantees `new_size`, rounded up to `layout.align()`, fits in an isize.
        let new_layout = Layout::from_size_align_unchecked(new_size, layout.align());
        match (is_large(&layout), is_large(&new_layout)) {
            (true, true) => System.realloc(ptr, layout, new_size),
            (false, false) => MiMalloc.realloc(ptr, layout, new_size),
            _ => {
                let moved = self.alloc(new_layout);
                if !moved.is_null() {
                    std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                    self.dealloc(ptr, layout);
                }
                moved
            }
        }
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    fn fill(ptr: *mut u8, len: usize) {
        for i in 0..len {
            // SAFETY: `ptr` points to at least `len` bytes the test allocated.
            unsafe { ptr.add(i).write((i % 251) as u8) };
        }
    }

    fn check(ptr: *const u8, len: usize) {
        for i in 0..len {
            // SAFETY: as in `fill`.
            assert_eq!(unsafe { ptr.add(i).read() }, (i % 251) as u8, "byte {i}");
        }
    }

    #[test]
    fn blocks_of_both_sizes_keep_their_bytes_and_alignment() {
        for (size, align) in [(24, 8), (LARGE_BYTES - 1, 16), (LARGE_BYTES, 8), (3 << 20, 64), (100, 4096)] {
            let layout = Layout::from_size_align(size, align).unwrap();
            // SAFETY: a non-zero size; freed with the same layout.
            unsafe {
                let p = SplitAllocator.alloc(layout);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0, "{size} bytes aligned to {align}");
                fill(p, size);
                check(p, size);
                SplitAllocator.dealloc(p, layout);
                let z = SplitAllocator.alloc_zeroed(layout);
                assert!(std::slice::from_raw_parts(z, size).iter().all(|&b| b == 0));
                SplitAllocator.dealloc(z, layout);
            }
        }
    }

    #[test]
    fn resizing_across_the_threshold_moves_the_bytes() {
        // Small -> large -> larger -> small -> smaller, each step keeping what fits.
        let sizes = [1000, LARGE_BYTES + 10, 1 << 20, 500, 100];
        let align = 32;
        // SAFETY: each realloc gets the layout the block has at that point.
        unsafe {
            let mut layout = Layout::from_size_align(sizes[0], align).unwrap();
            let mut p = SplitAllocator.alloc(layout);
            fill(p, sizes[0]);
            for &new_size in &sizes[1..] {
                p = SplitAllocator.realloc(p, layout, new_size);
                assert!(!p.is_null());
                assert_eq!(p as usize % align, 0);
                check(p, layout.size().min(new_size));
                layout = Layout::from_size_align(new_size, align).unwrap();
                fill(p, new_size);
            }
            SplitAllocator.dealloc(p, layout);
        }
    }
}
