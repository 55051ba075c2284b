//! Link-time layout of the release binary: the functions a server runs to start and answer
//! its first queries (`link/startup.order`, written by `bench/symbol_order.py`) are placed
//! side by side, so an idle server keeps a few MB of code resident instead of the tens of MB
//! the kernel maps around scattered functions.
//!
//! Only optimised builds on x86-64 Linux, whose default linker since Rust 1.90 is rust-lld
//! (the option is lld's). `CLOUDPG_SYMBOL_ORDER=0` turns it off for a build with another
//! linker; names the file has that the build does not are skipped without a warning.

use std::path::Path;

fn main() {
    let order = Path::new("link/startup.order");
    println!("cargo:rerun-if-changed={}", order.display());
    println!("cargo:rerun-if-env-changed=CLOUDPG_SYMBOL_ORDER");
    println!("cargo:rerun-if-env-changed=CLOUDPG_LINK_MAP");
    // The map `bench/symbol_order.py` reads. Asked for here rather than with `cargo rustc -- -C
    // link-arg=...`: extra rustc arguments change the binary's symbol hashes, which would then
    // not be the ones a normal release build links.
    if let Ok(map) = std::env::var("CLOUDPG_LINK_MAP") {
        println!("cargo:rustc-link-arg-bins=-Wl,-Map={map}");
    }
    let optimised = std::env::var("PROFILE").is_ok_and(|p| p == "release");
    let lld_target = std::env::var("TARGET").is_ok_and(|t| t == "x86_64-unknown-linux-gnu");
    let wanted = std::env::var("CLOUDPG_SYMBOL_ORDER").map_or(true, |v| v != "0");
    if !(optimised && lld_target && wanted && order.exists()) {
        return;
    }
    let Ok(path) = order.canonicalize() else { return };
    println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}", path.display());
    println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
}
