//! Rebuilds the binary when a migration changes: they are embedded in it.
//! Also the release binary's layout: packed relocations, and the order of
//! its functions when scripts/build-release.sh names one.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    // A position-independent binary lists, for the loader, every pointer it
    // must move to where the binary was loaded: 1.2 MiB of `.rela.dyn` here,
    // read in full at every start. DT_RELR packs that list into a few KiB,
    // with no cost at run time (binutils 2.38 or lld 15, glibc 2.36: Debian
    // 12, Ubuntu 22.04 and later). Release builds only, so that the test
    // suite links anywhere.
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").as_deref() == Ok("gnu");
    if linux_gnu && std::env::var("PROFILE").as_deref() == Ok("release") {
        println!("cargo:rustc-link-arg-bins=-Wl,-z,pack-relative-relocs");
    }
    // scripts/build-release.sh: the functions start-up and pages run, laid
    // out together so that less of the binary becomes resident. Needs lld
    // (Rust's default linker on x86-64 Linux).
    println!("cargo:rerun-if-env-changed=PORTER_SYMBOL_ORDER");
    if let Ok(order) = std::env::var("PORTER_SYMBOL_ORDER") {
        println!("cargo:rerun-if-changed={order}");
        println!("cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={order}");
        // Names the build no longer has (a function inlined away) are skipped.
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}
