//! Rebuilds the binary when a migration changes: they are embedded in it.
//! Also the binary's layout, when scripts/build-release.sh asks: packed
//! relocations, and the order of its functions.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    // A position-independent binary lists, for the loader, every pointer it
    // must move to where the binary was loaded: 1.2 MiB of `.rela.dyn` here,
    // read in full at every start. DT_RELR packs that list into a few KiB,
    // with no cost at run time, but the binary then starts only on glibc
    // 2.36 or later: scripts/build-release.sh asks for it where the machine
    // building has such a glibc.
    println!("cargo:rerun-if-env-changed=PORTER_PACK_RELOCATIONS");
    if std::env::var_os("PORTER_PACK_RELOCATIONS").is_some() {
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
