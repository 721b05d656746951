//! Envoy's response flags (`%RESPONSE_FLAGS%`): the short codes of why a
//! request or connection ended as it did, printed in Envoy's order.

use std::fmt;

/// A set of response flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponseFlags(u32);

/// Envoy's flags in the order Envoy prints them (the order of its
/// `ResponseFlag` enum).
const NAMES: [&str; 29] = [
    "LH", "UH", "UT", "LR", "UR", "UF", "UC", "UO", "NR", "DI", "FI", "RL", "UAEX", "RLSE", "DC",
    "URX", "SI", "IH", "DPE", "UMSDR", "RFCF", "NFCF", "DT", "UPE", "NC", "OM", "DF", "DO", "DR",
];

impl ResponseFlags {
    /// No flag.
    pub const NONE: ResponseFlags = ResponseFlags(0);

    /// The flag named `code` (`UH`, `URX`, ...); `None` for a name Envoy
    /// does not have.
    pub fn from_code(code: &str) -> Option<ResponseFlags> {
        NAMES
            .iter()
            .position(|n| *n == code)
            .map(|i| ResponseFlags(1 << i))
    }

    /// Add the flag named `code`; unknown and empty names are ignored
    /// (they come from [`crate::error::ProxyError::flag`], which returns
    /// `""` for failures Envoy has no flag for).
    pub fn insert_code(&mut self, code: &str) {
        if let Some(flag) = Self::from_code(code) {
            self.0 |= flag.0;
        }
    }

    /// Add every flag of `other`.
    pub fn insert(&mut self, other: ResponseFlags) {
        self.0 |= other.0;
    }

    /// Whether no flag is set.
    pub fn is_empty(&self) -> bool {
        self.0 == 0
    }

    /// Whether the flag named `code` is set.
    pub fn contains_code(&self, code: &str) -> bool {
        Self::from_code(code).is_some_and(|f| self.0 & f.0 != 0)
    }
}

impl fmt::Display for ResponseFlags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("-");
        }
        let mut first = true;
        for (i, name) in NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(name)?;
                first = false;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printed_in_envoys_order() {
        let mut flags = ResponseFlags::NONE;
        assert_eq!(flags.to_string(), "-");
        flags.insert_code("URX");
        flags.insert_code("UF");
        flags.insert_code("");
        flags.insert_code("nonsense");
        assert_eq!(flags.to_string(), "UF,URX");
        assert!(flags.contains_code("URX") && !flags.contains_code("UH"));
    }
}
