//! Unit tests of the conversions.
