//! The shared test helpers live in `porter::testing`, so that forks can use
//! them too.

pub use porter::testing::*;
