//! Timing policy: how long an order may stay in a state (SLA), when a refund is asked about,
//! when a downgraded sign is looked at again, how fast stock must be released.

use std::collections::BTreeMap;

use chrono::Duration;

use crate::model::ids::Source;
use crate::model::lifecycle::Lifecycle;

/// How long a held order waits before its lines are asked for again, by default
/// ([`Rules::lines_retry_after`]).
pub const LINES_RETRY_AFTER: Duration = Duration::minutes(5);

/// How long an order may stay in a state before an `SlaBreached`, per channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaRules {
    /// Limits for every channel.
    pub default: BTreeMap<Lifecycle, Duration>,
    /// Per-channel overrides.
    pub per_channel: BTreeMap<Source, BTreeMap<Lifecycle, Duration>>,
}

impl Default for SlaRules {
    /// Paid → warehouse in 30 minutes; any other stall before shipment 2 hours. Transit states
    /// have no default limit: carriers take days and the trust check watches signs.
    fn default() -> Self {
        let two_hours = Duration::hours(2);
        Self {
            default: BTreeMap::from([
                (Lifecycle::Paid, Duration::minutes(30)),
                (Lifecycle::RiskHold, two_hours),
                (Lifecycle::WarehouseAccepted, two_hours),
                (Lifecycle::Packing, two_hours),
            ]),
            per_channel: BTreeMap::new(),
        }
    }
}

impl SlaRules {
    /// The limit for `state` on `channel`, if any.
    pub fn limit(&self, channel: Source, state: Lifecycle) -> Option<Duration> {
        self.per_channel.get(&channel).and_then(|l| l.get(&state)).or_else(|| self.default.get(&state)).copied()
    }

    /// Parses `{"default": {"Paid": 30, …}, "douyin": {"Packing": 240}}` (minutes) over the
    /// defaults. A limit of 0 removes it.
    pub fn from_json(json: &str) -> Result<Self, String> {
        let raw: BTreeMap<String, BTreeMap<String, i64>> =
            serde_json::from_str(json).map_err(|e| format!("not a JSON object of minutes: {e}"))?;
        let mut rules = SlaRules::default();
        for (scope, limits) in raw {
            let mut parsed = BTreeMap::new();
            for (state, minutes) in limits {
                let state = Lifecycle::ALL
                    .into_iter()
                    .find(|s| s.as_str() == state)
                    .ok_or_else(|| format!("unknown state `{state}`"))?;
                parsed.insert(state, Duration::minutes(minutes));
            }
            let target = if scope == "default" {
                &mut rules.default
            } else {
                let channel: Source = scope.parse().map_err(|e| format!("{e}"))?;
                rules.per_channel.entry(channel).or_default()
            };
            target.extend(parsed);
        }
        for limits in std::iter::once(&mut rules.default).chain(rules.per_channel.values_mut()) {
            limits.retain(|_, d| *d > Duration::zero());
        }
        Ok(rules)
    }
}

/// The rules status-normalize applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// SLA limits.
    pub sla: SlaRules,
    /// A refund asked for or approved this long ago with no outcome gets a platform check.
    pub refund_check_after: Duration,
    /// Stock must be released within this of a refund's success to count as on time.
    pub release_within: Duration,
    /// Shards of counters and due markers.
    pub shards: u16,
    /// Attempts per event when concurrent writers collide.
    pub max_attempts: u32,
    /// A sign downgraded to SignPendingConfirmation is looked at again after this.
    pub trust_recheck_after: Duration,
    /// A paid order held for its lines (the fetch failed) is asked about again after this.
    pub lines_retry_after: Duration,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            sla: SlaRules::default(),
            refund_check_after: Duration::hours(2),
            release_within: Duration::minutes(30),
            shards: crate::model::counters::DEFAULT_SHARDS,
            max_attempts: 8,
            trust_recheck_after: Duration::hours(2),
            lines_retry_after: LINES_RETRY_AFTER,
        }
    }
}
