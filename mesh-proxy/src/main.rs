//! Placeholder, replaced by the crate's real entry point.
fn main() {}
