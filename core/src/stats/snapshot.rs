//! The snapshot served to the browser viewer: per target, the last decoded
//! document (without `vars`, which the model never holds) and whether it is
//! current. A failed poll keeps the last document but marks it `stale` with
//! the error, so a viewer never shows old numbers as live.

use serde::{Deserialize, Serialize};

use super::model::StatsDocument;

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Snapshot {
    /// Unix milliseconds when this snapshot was written.
    pub generated_at_ms: u64,
    pub targets: Vec<TargetSnapshot>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct TargetSnapshot {
    pub target: String,
    /// The last poll succeeded.
    pub up: bool,
    /// `document` is from an earlier poll than the last one.
    pub stale: bool,
    /// Unix milliseconds of the last successful poll.
    pub last_success_ms: Option<u64>,
    /// `reason: message` of the last failed poll, cleared on success.
    pub last_error: Option<String>,
    /// Strings repaired in `document` (see `stats::repair`).
    pub repairs: u64,
    pub document: Option<StatsDocument>,
}

impl Snapshot {
    pub fn to_json(&self) -> Vec<u8> {
        // Serialising plain data into a Vec cannot fail.
        serde_json::to_vec(self).unwrap_or_default()
    }

    pub fn target(&self, name: &str) -> Option<&TargetSnapshot> {
        self.targets.iter().find(|t| t.target == name)
    }
}
