//! The process's memory allocator, and handing memory that startup freed back to the OS.
//!
//! mimalloc rather than glibc's malloc: allocating and freeing per statement (plans,
//! batches, messages) was about a fifth of the server's CPU on cached lookups, much of it
//! glibc consolidating free chunks. Built without transparent huge pages (`no_thp`): where
//! the kernel gives them to every mapping, a few touched bytes would keep 2 MB resident and
//! an idle server would hold some 15 MB more. It is set here, in the library, so the test
//! suite runs on the allocator the server ships with. The `mimalloc` feature (on by default)
//! chooses it; `fuzz/` builds without it, for AddressSanitizer.

#[cfg(feature = "mimalloc")]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Building the catalog and the SQL engine allocates and frees tens of MB (schema and lock
/// parsing, PostgreSQL's catalog snapshot). Allocators keep freed pages resident for reuse,
/// so an idle server would hold them for good: this returns them, mimalloc's (Rust's
/// allocations) and glibc's (those of C libraries such as aws-lc).
pub fn release_free_memory() {
    #[cfg(feature = "mimalloc")]
    // SAFETY: mi_collect takes no pointers; it frees and decommits mimalloc's own unused
    // pages for this thread and the abandoned pages it can reach.
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointers; it only returns malloc's own free pages to the OS.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[cfg(feature = "mimalloc")]
    #[test]
    fn rust_allocations_come_from_mimalloc() {
        let block = Box::new([7u8; 100]);
        // SAFETY: only asks whether the address lies in mimalloc's heap; nothing is read.
        let ours = unsafe { libmimalloc_sys::mi_is_in_heap_region(block.as_ptr().cast()) };
        assert!(ours, "a boxed value is not in mimalloc's heap: the global allocator is not set");
    }

    #[test]
    fn memory_stays_usable_after_returning_free_pages() {
        let freed: Vec<Vec<u8>> = (0..1000).map(|i| vec![1u8; 1024 + i]).collect();
        let kept = Box::new([3u8; 4096]);
        drop(freed);
        super::release_free_memory();
        assert!(kept.iter().all(|&b| b == 3));
        let again = vec![5u8; 1 << 20];
        assert_eq!(again.iter().map(|&b| usize::from(b)).sum::<usize>(), 5 << 20);
    }
}
