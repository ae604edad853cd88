//! The memory allocator: mimalloc, except for huge blocks, which are mapped
//! straight from the operating system and given straight back.
//!
//! Not a step of the dance, but what keeps its footprint small. The one
//! huge block Porter asks for is argon2's working memory: 19 MiB for each
//! password hashed or checked (sign-in, sign-up, password change, and the
//! dummy check that makes unknown usernames cost the same). An allocator
//! keeps freed memory for reuse; for a block that size, that would leave
//! 19 MiB resident per thread that ever hashed, for as long as the server
//! runs. Mapped and unmapped here instead, it is resident only while hashes
//! run (a hashing thread keeps it from one hash of a burst to the next), and
//! the number of hashes at once is bounded by the hashing threads
//! (`auth::hashers::HashingPool`).

// The one module with unsafe code: an allocator cannot be written without.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};

use mimalloc::MiMalloc;

/// Blocks at least this large are mapped from the operating system.
pub const HUGE_BLOCK: usize = 4 << 20;

/// mimalloc, with blocks of [`HUGE_BLOCK`] or more mapped from the
/// operating system. Install it in a binary with `#[global_allocator]`.
#[derive(Debug, Default)]
pub struct PorterAllocator;

fn is_huge(layout: &Layout) -> bool {
    // A mapping is page-aligned; stricter alignments stay with mimalloc.
    layout.size() >= HUGE_BLOCK && layout.align() <= 4096
}

/// Maps `size` bytes of zeroed memory, or returns null.
unsafe fn map(size: usize) -> *mut u8 {
    // SAFETY: an anonymous private mapping at an address of the kernel's
    // choosing touches no existing memory.
    let ptr = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            size,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if ptr == libc::MAP_FAILED {
        return std::ptr::null_mut();
    }
    // Huge pages, where the kernel offers them on request: a few faults
    // instead of thousands when argon2 first writes its memory. Only a hint.
    #[cfg(target_os = "linux")]
    // SAFETY: advice on a mapping made just above.
    unsafe {
        libc::madvise(ptr, size, libc::MADV_HUGEPAGE);
    }
    ptr.cast()
}

// SAFETY: every block is either mimalloc's or a mapping of exactly
// `layout.size()` bytes, told apart by the layout it is freed with, which
// `GlobalAlloc` guarantees is the one it was allocated with.
unsafe impl GlobalAlloc for PorterAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // SAFETY: see `map`.
            unsafe { map(layout.size()) }
        } else {
            // SAFETY: the caller's guarantees, passed on.
            unsafe { MiMalloc.alloc(layout) }
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if is_huge(&layout) {
            // SAFETY: see `map`; a fresh mapping is already zeroed.
            unsafe { map(layout.size()) }
        } else {
            // SAFETY: the caller's guarantees, passed on.
            unsafe { MiMalloc.alloc_zeroed(layout) }
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if is_huge(&layout) {
            // SAFETY: `ptr` is a mapping of `layout.size()` bytes made by
            // `map`, and the caller no longer uses it.
            let unmapped = unsafe { libc::munmap(ptr.cast(), layout.size()) };
            debug_assert_eq!(unmapped, 0, "munmap of a block this allocator mapped");
        } else {
            // SAFETY: the caller's guarantees, passed on.
            unsafe { MiMalloc.dealloc(ptr, layout) }
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller guarantees `new_size` with `layout.align()` is
        // a valid layout.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if !is_huge(&layout) && !is_huge(&new_layout) {
            // SAFETY: the caller's guarantees, passed on.
            return unsafe { MiMalloc.realloc(ptr, layout, new_size) };
        }
        // Crossing the line, or growing a mapping: move the block.
        // SAFETY: allocated and freed through this allocator with the
        // layouts that describe them; the copy stays within both blocks.
        unsafe {
            let new_ptr = self.alloc(new_layout);
            if !new_ptr.is_null() {
                std::ptr::copy_nonoverlapping(ptr, new_ptr, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            new_ptr
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_blocks_are_zeroed_and_keep_their_contents_across_the_line() {
        // One alignment throughout: a block is freed with the layout it
        // has, and `realloc` keeps the alignment.
        let small = Layout::from_size_align(1024, 64).expect("layout");
        let huge = Layout::from_size_align(HUGE_BLOCK * 2, 64).expect("layout");
        // SAFETY: each block is checked for null, used within its size and
        // freed once, with the layout it has at that moment.
        unsafe {
            let block = PorterAllocator.alloc_zeroed(huge);
            assert!(!block.is_null());
            assert!(
                std::slice::from_raw_parts(block, huge.size())
                    .iter()
                    .all(|&b| b == 0)
            );
            block.write_bytes(7, 1024);
            // Shrink across the line: into mimalloc, contents kept.
            let block = PorterAllocator.realloc(block, huge, small.size());
            assert!(!block.is_null());
            assert!(
                std::slice::from_raw_parts(block, small.size())
                    .iter()
                    .all(|&b| b == 7)
            );
            // Grow across the line: into a mapping, contents kept.
            let block = PorterAllocator.realloc(block, small, huge.size());
            assert!(!block.is_null());
            assert!(
                std::slice::from_raw_parts(block, small.size())
                    .iter()
                    .all(|&b| b == 7)
            );
            PorterAllocator.dealloc(block, huge);
        }
    }
}
