//! Rebuilds the binary when a migration changes: they are embedded in it.
//! Also packs the release binary's relative relocations (see below).
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
}
