//! Unit tests of the ADS state machine.
