//! PostgreSQL and Redis for the tests: see `porter::testing::services`.

pub use porter::testing::services::*;
