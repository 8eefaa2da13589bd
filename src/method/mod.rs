//! Verification methods. One module per method; this version implements security questions.

pub mod questions;

use serde::{Deserialize, Serialize};

/// A verification method (mirrors `ssprd.v1.Method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    SecurityQuestions,
}
