//! Shared code of the postcard sample.
