//! The silence watch's memory: per channel, whether a `ChannelSilent` is outstanding. Stored as
//! a report of kind [`SILENCE_STATE_KIND`] with the channel as period (`R#silence-state`,
//! sort key `douyin`), so the watch needs no port of its own.
//!
//! ```text
//!            silent_channels() lists it
//!   quiet ───────────────────────────────▶ silent      publishes ChannelSilent (once)
//!     ▲                                      │
//!     └──────────────────────────────────────┘
//!      a callback arrived in a slot at or after silent_since
//!                                                      publishes ChannelRecovered
//! ```
//!
//! Recovery is "a callback arrived", not "no longer listed": a channel that goes quiet at
//! 21:55 and stays quiet after its active hours end at 22:00 is not listed any more, but it
//! has not recovered, and must not be reported silent again the next morning.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Timelike, Utc};
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};

use domain::Source;
use domain::events::DomainEvent;
use domain::health::{SLOT_MINUTES, SilentChannel};
use domain::stats::{DayCounters, StoredReport, names};
use domain::time::day_start;

/// The report kind the silence state is stored under.
pub const SILENCE_STATE_KIND: &str = "silence-state";

/// One channel's silence state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilenceState {
    /// Whether a `ChannelSilent` was published and no `ChannelRecovered` since.
    pub silent: bool,
    /// While silent: the start of the first empty slot of the quiet spell.
    pub since: Option<DateTime<Utc>>,
    /// While silent: the callbacks per slot the channel typically receives then.
    pub expected_per_slot: Option<f64>,
    /// When the state last changed.
    pub changed_at: DateTime<Utc>,
}

impl SilenceState {
    /// Reads a stored state; an unreadable one counts as "not silent" (the worst case is one
    /// repeated alert).
    pub fn from_stored(stored: &StoredReport) -> Option<Self> {
        serde_json::from_str(&stored.json).ok()
    }

    /// The item to store for `channel`.
    pub fn to_stored(&self, channel: Source) -> StoredReport {
        let rendered = match (self.silent, self.since) {
            (true, Some(since)) => {
                format!("{channel}: 自 {} (北京时间) 起无回调", since.with_timezone(&Shanghai).format("%Y-%m-%d %H:%M"))
            }
            _ => format!("{channel}: 回调正常"),
        };
        StoredReport {
            kind: SILENCE_STATE_KIND.to_owned(),
            period: channel.as_str().to_owned(),
            json: serde_json::to_string(self).unwrap_or_default(),
            rendered,
        }
    }
}

/// What one watch run decided for one channel: the events to publish and, once they are out,
/// the state to store (`None`: nothing changed).
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// `ChannelRecovered` and/or `ChannelSilent`, in that order.
    pub events: Vec<DomainEvent>,
    /// The new state.
    pub state: Option<SilenceState>,
}

/// One channel's transition. `silent` is this run's finding for the channel (from
/// [`domain::health::silent_channels`]); `days` its counters by Beijing day.
pub fn step(
    channel: Source,
    state: Option<&SilenceState>,
    silent: Option<&SilentChannel>,
    days: &BTreeMap<NaiveDate, &DayCounters>,
    now: DateTime<Utc>,
) -> Step {
    let mut events = Vec::new();
    let mut next = None;
    let outstanding = state.filter(|s| s.silent).and_then(|s| s.since);
    if let Some(since) = outstanding {
        match first_callback_since(days, since, now) {
            // Still quiet (listed or not): the alert stands, nothing to say.
            None => return Step { events, state: None },
            Some(back) => {
                events.push(DomainEvent::ChannelRecovered {
                    channel,
                    silent_for_minutes: (back - since).num_minutes().max(0),
                });
                next = Some(SilenceState { silent: false, since: None, expected_per_slot: None, changed_at: now });
            }
        }
    }
    if let Some(found) = silent {
        // A new quiet spell must start after the callback that ended the previous one.
        let after_previous = outstanding.is_none_or(|since| found.silent_since_slot > since);
        if after_previous {
            events.push(DomainEvent::ChannelSilent {
                channel,
                silent_since: found.silent_since_slot,
                expected_per_slot: found.expected_per_slot,
            });
            next = Some(SilenceState {
                silent: true,
                since: Some(found.silent_since_slot),
                expected_per_slot: Some(found.expected_per_slot),
                changed_at: now,
            });
        }
    }
    Step { events, state: next }
}

/// The start of the first 10-minute slot at or after `since` (and not after `now`) in which
/// the channel received a callback, from the `rx_t{hh}{m}` counters.
pub fn first_callback_since(
    days: &BTreeMap<NaiveDate, &DayCounters>,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let since_local = since.with_timezone(&Shanghai).naive_local();
    let now_local = now.with_timezone(&Shanghai).naive_local();
    for (day, counters) in days.range(since_local.date()..=now_local.date()) {
        for minute in (0..24 * 60).step_by(SLOT_MINUTES as usize) {
            let Some(slot) = day.and_hms_opt(minute / 60, minute % 60, 0) else { continue };
            // Slots that ended before the silence began do not count (`since` is a slot start).
            if slot + Duration::minutes(SLOT_MINUTES) <= since_local {
                continue;
            }
            if slot > now_local {
                return None;
            }
            if counters.get(&names::received_in_slot(slot.hour(), slot.minute())) > 0 {
                return Some(day_start(*day) + Duration::minutes(i64::from(minute)));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    fn beijing(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        Shanghai.with_ymd_and_hms(2026, 11, d, h, m, 0).unwrap().with_timezone(&Utc)
    }

    fn day(d: u32, slots: &[(u32, u32)]) -> DayCounters {
        DayCounters {
            day: Some(date(d)),
            counters: slots.iter().map(|(h, m)| (names::received_in_slot(*h, *m), 3)).collect(),
        }
    }

    fn silent_since(d: u32, h: u32, m: u32) -> SilentChannel {
        SilentChannel { channel: Source::Douyin, silent_since_slot: beijing(d, h, m), expected_per_slot: 20.0 }
    }

    #[test]
    fn raised_once_then_recovered() {
        let today = day(11, &[(10, 10)]);
        let days = BTreeMap::from([(date(11), &today)]);
        let found = silent_since(11, 10, 20);
        let first = step(Source::Douyin, None, Some(&found), &days, beijing(11, 10, 35));
        assert_eq!(
            first.events,
            vec![DomainEvent::ChannelSilent {
                channel: Source::Douyin,
                silent_since: beijing(11, 10, 20),
                expected_per_slot: 20.0
            }]
        );
        let state = first.state.unwrap();
        assert!(state.silent);
        // Still silent five minutes later: nothing.
        let again = step(Source::Douyin, Some(&state), Some(&found), &days, beijing(11, 10, 40));
        assert_eq!(again, Step { events: vec![], state: None });
        // A callback at 10:47: recovered after 20 minutes (10:20 → the 10:40 slot).
        let back = day(11, &[(10, 10), (10, 40)]);
        let days = BTreeMap::from([(date(11), &back)]);
        let recovered = step(Source::Douyin, Some(&state), None, &days, beijing(11, 10, 50));
        assert_eq!(
            recovered.events,
            vec![DomainEvent::ChannelRecovered { channel: Source::Douyin, silent_for_minutes: 20 }]
        );
        assert!(!recovered.state.unwrap().silent);
    }

    #[test]
    fn quiet_after_active_hours_is_not_a_recovery() {
        let today = day(11, &[(21, 40)]);
        let days = BTreeMap::from([(date(11), &today)]);
        let state = SilenceState {
            silent: true,
            since: Some(beijing(11, 21, 50)),
            expected_per_slot: Some(8.0),
            changed_at: beijing(11, 22, 5),
        };
        // 23:00: no longer listed (outside active hours), but nothing arrived either.
        assert_eq!(step(Source::Douyin, Some(&state), None, &days, beijing(11, 23, 0)).events, vec![]);
        // The next morning, still nothing, listed again: no second alert.
        let tomorrow = day(12, &[]);
        let days = BTreeMap::from([(date(11), &today), (date(12), &tomorrow)]);
        let found = silent_since(12, 0, 0);
        assert_eq!(step(Source::Douyin, Some(&state), Some(&found), &days, beijing(12, 9, 30)).events, vec![]);
    }

    #[test]
    fn recovered_and_silent_again_between_two_runs() {
        let today = day(11, &[(10, 10), (10, 40)]);
        let days = BTreeMap::from([(date(11), &today)]);
        let state = SilenceState {
            silent: true,
            since: Some(beijing(11, 10, 20)),
            expected_per_slot: Some(20.0),
            changed_at: beijing(11, 10, 35),
        };
        let found = silent_since(11, 10, 50);
        let run = step(Source::Douyin, Some(&state), Some(&found), &days, beijing(11, 11, 5));
        let types: Vec<&str> = run.events.iter().map(DomainEvent::detail_type).collect();
        assert_eq!(types, vec!["ChannelRecovered", "ChannelSilent"]);
        assert_eq!(run.state.unwrap().since, Some(beijing(11, 10, 50)));
    }

    #[test]
    fn a_callback_across_beijing_midnight_ends_the_silence() {
        let yesterday = day(10, &[(23, 30)]);
        let today = day(11, &[(0, 10)]);
        let days = BTreeMap::from([(date(10), &yesterday), (date(11), &today)]);
        let since = beijing(10, 23, 40);
        assert_eq!(first_callback_since(&days, since, beijing(11, 0, 25)), Some(beijing(11, 0, 10)));
        assert_eq!(first_callback_since(&days, since, beijing(11, 0, 5)), None);
        // The 23:30 slot is before the silence began.
        assert_eq!(first_callback_since(&days, since, beijing(10, 23, 55)), None);
    }

    #[test]
    fn the_state_survives_storage() {
        let state = SilenceState {
            silent: true,
            since: Some(beijing(11, 10, 20)),
            expected_per_slot: Some(20.0),
            changed_at: beijing(11, 10, 35),
        };
        let stored = state.to_stored(Source::Pdd);
        assert_eq!((stored.kind.as_str(), stored.period.as_str()), ("silence-state", "pdd"));
        assert!(stored.rendered.contains("2026-11-11 10:20"), "{}", stored.rendered);
        assert_eq!(SilenceState::from_stored(&stored), Some(state));
        assert_eq!(SilenceState::from_stored(&StoredReport { json: "{".into(), ..stored }), None);
    }
}
