//! The list of configuration problems that every section's validation adds to.
//!
//! Each module owns its configuration section (`directory::settings`, `policy::settings`,
//! …) and checks it into one shared [`Problems`], so `ssprd check-config` reports every bad
//! key at once, each as `key: why`. A leaf module: it knows no section.

use std::fmt::Display;

/// Problems found so far, each naming its key.
#[derive(Debug, Default)]
pub struct Problems(Vec<String>);

impl Problems {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records that `key` is wrong, and why.
    pub fn bad(&mut self, key: &str, why: impl Into<String>) {
        self.0.push(format!("{key}: {}", why.into()));
    }

    /// Records `"{value} is outside {lo}..={hi}"` when `value` is out of range; says whether
    /// it was in range.
    pub fn in_range<T: PartialOrd + Display>(&mut self, key: &str, value: T, lo: T, hi: T) -> bool {
        let ok = lo <= value && value <= hi;
        if !ok {
            self.bad(key, format!("{value} is outside {lo}..={hi}"));
        }
        ok
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The problems, in the order they were found.
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_problem_names_its_key() {
        let mut p = Problems::new();
        assert!(p.in_range("a.b", 5u32, 1, 10));
        assert!(!p.in_range("a.c", 11u64, 1, 10));
        p.bad("a.d", "must not be empty");
        assert_eq!(
            p.into_vec(),
            ["a.c: 11 is outside 1..=10", "a.d: must not be empty"]
        );
    }
}
