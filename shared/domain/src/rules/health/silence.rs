//! The channel-silence watch: a channel that normally receives callbacks at this time of the
//! Beijing day and has received none for `silence` minutes is probably failing verification,
//! misconfigured or down.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Asia::Shanghai;
use serde::{Deserialize, Serialize};

use super::indicator::count;
use crate::model::counters::{DayCounters, StoredReport, names};
use crate::model::domain_event::DomainEvent;
use crate::model::ids::Source;
use crate::model::time::day_start;

/// Length of a receipt slot (`rx_t{hh}{m}` counters), minutes.
pub const SLOT_MINUTES: i64 = 10;
/// The longest look-back honoured, days.
pub const MAX_LOOKBACK_DAYS: u32 = 92;

/// When a channel counts as silent.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SilenceRules {
    /// Minutes without any callback (default 10). Checked to slot resolution: the slots that
    /// overlap the last `silence_minutes` must all be empty.
    pub silence_minutes: u32,
    /// A slot is in the channel's active hours when the typical count of callbacks in it (the
    /// median over the look-back days, days without counters counting as zero) is at least this
    /// (default 5: with 5 expected, a quiet slot happens by chance less than 1 % of the time).
    pub min_expected_per_slot: f64,
    /// Days of history the active hours are derived from (default 7, at most
    /// [`MAX_LOOKBACK_DAYS`]).
    pub lookback_days: u32,
}

impl Default for SilenceRules {
    fn default() -> Self {
        Self { silence_minutes: 10, min_expected_per_slot: 5.0, lookback_days: 7 }
    }
}

/// A channel that went quiet in its active hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SilentChannel {
    /// The channel (or other source).
    pub channel: Source,
    /// The start of the first empty slot of the current quiet run (at most a day back).
    pub silent_since_slot: DateTime<Utc>,
    /// The typical callbacks per slot in the watched window (the smallest of its slots).
    pub expected_per_slot: f64,
}

/// The channels that are silent at `now`: for every slot overlapping the last
/// `rules.silence_minutes` (Beijing time), history says the channel typically receives at least
/// `rules.min_expected_per_slot` callbacks, and it received none in any of them. A slot without
/// such history (outside the channel's active hours) is never silent. `today` holds today's
/// counters; `history` the previous days (days on or after today there are ignored in favour of
/// `today`). Sorted by channel.
pub fn silent_channels(
    now: DateTime<Utc>,
    today: &BTreeMap<Source, DayCounters>,
    history: &BTreeMap<Source, Vec<DayCounters>>,
    rules: &SilenceRules,
) -> Vec<SilentChannel> {
    let lookback = rules.lookback_days.min(MAX_LOOKBACK_DAYS);
    if rules.silence_minutes == 0 || lookback == 0 {
        return Vec::new();
    }
    let local = now.with_timezone(&Shanghai).naive_local();
    let silence = Duration::minutes(i64::from(rules.silence_minutes).min(24 * 60));
    // The slots that overlap [now − silence, now): a slot that started this very second holds
    // nothing yet and is not one of them.
    let first = slot_start(local - silence);
    let last = slot_start(local - Duration::seconds(1));
    let window: Vec<NaiveDateTime> = slots_between(first, last).collect();

    let sources: BTreeSet<Source> = today.keys().chain(history.keys()).copied().collect();
    let mut silent = Vec::new();
    for source in sources {
        let days = DayIndex::new(local.date(), today.get(&source), history.get(&source));
        if window.iter().any(|slot| days.received(*slot) > 0) {
            continue;
        }
        // A zero threshold must not make a slot without history "active".
        let active = |expected: f64| expected > 0.0 && expected >= rules.min_expected_per_slot;
        let mut expected = f64::INFINITY;
        for slot in &window {
            expected = expected.min(days.typical(*slot, lookback));
            if !active(expected) {
                break;
            }
        }
        if !active(expected) {
            continue;
        }
        let mut since = first;
        for _ in 0..(24 * 60 / SLOT_MINUTES) {
            let before = since - Duration::minutes(SLOT_MINUTES);
            if days.received(before) > 0 {
                break;
            }
            since = before;
        }
        silent.push(SilentChannel { channel: source, silent_since_slot: to_utc(since), expected_per_slot: expected });
    }
    silent
}

/// The start of the 10-minute slot holding a Beijing local time.
fn slot_start(local: NaiveDateTime) -> NaiveDateTime {
    let minute = local.minute() - local.minute() % SLOT_MINUTES as u32;
    local.date().and_hms_opt(local.hour(), minute, 0).unwrap_or(local)
}

fn slots_between(first: NaiveDateTime, last: NaiveDateTime) -> impl Iterator<Item = NaiveDateTime> {
    std::iter::successors(Some(first), |slot| Some(*slot + Duration::minutes(SLOT_MINUTES)))
        .take_while(move |s| *s <= last)
}

fn to_utc(local: NaiveDateTime) -> DateTime<Utc> {
    // Asia/Shanghai has had no DST since 1991: a local time is never ambiguous or missing.
    Shanghai
        .from_local_datetime(&local)
        .earliest()
        .map_or_else(|| Utc.from_utc_datetime(&local), |at| at.with_timezone(&Utc))
}

/// One channel's day counters by Beijing day.
struct DayIndex<'a> {
    days: BTreeMap<NaiveDate, &'a DayCounters>,
}

impl<'a> DayIndex<'a> {
    fn new(today: NaiveDate, current: Option<&'a DayCounters>, history: Option<&'a Vec<DayCounters>>) -> Self {
        let mut days = BTreeMap::new();
        for counters in history.into_iter().flatten() {
            if let Some(day) = counters.day.filter(|day| *day < today) {
                days.insert(day, counters);
            }
        }
        // Counters filed under another day are not today's (a stale read across midnight).
        if let Some(counters) = current.filter(|c| c.day.is_none_or(|day| day == today)) {
            days.insert(today, counters);
        }
        Self { days }
    }

    fn received(&self, slot: NaiveDateTime) -> u64 {
        let name = names::received_in_slot(slot.hour(), slot.minute());
        self.days.get(&slot.date()).map_or(0, |counters| count(counters, &name))
    }

    /// The median count of this slot over the `lookback` days before the slot's day (lower
    /// median for an even count); days without counters count as zero.
    fn typical(&self, slot: NaiveDateTime, lookback: u32) -> f64 {
        let mut counts: Vec<u64> =
            (1..=i64::from(lookback)).map(|back| self.received(slot - Duration::days(back))).collect();
        counts.sort_unstable();
        counts.get((counts.len().saturating_sub(1)) / 2).map_or(0.0, |n| *n as f64)
    }
}

// The watch's memory.
//
// The silence watch's memory: per channel, whether a `ChannelSilent` is outstanding. Stored as
// a report of kind [`SILENCE_STATE_KIND`] with the channel as period (`R#silence-state`,
// sort key `douyin`), so the watch needs no port of its own.
//
// ```text
//            silent_channels() lists it
//   quiet ───────────────────────────────▶ silent      publishes ChannelSilent (once)
//     ▲                                      │
//     └──────────────────────────────────────┘
//      a callback arrived in a slot at or after silent_since
//                                                      publishes ChannelRecovered
// ```
//
// Recovery is "a callback arrived", not "no longer listed": a channel that goes quiet at
// 21:55 and stays quiet after its active hours end at 22:00 is not listed any more, but it
// has not recovered, and must not be reported silent again the next morning.

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
/// [`domain::rules::health::silent_channels`]); `days` its counters by Beijing day.
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

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    /// Beijing local time on 2026-11-{d} as UTC.
    fn beijing(d: u32, h: u32, m: u32) -> DateTime<Utc> {
        to_utc(date(d).and_hms_opt(h, m, 0).unwrap())
    }

    /// A day with `per_slot` callbacks in each 10-minute slot between `from_h` and `to_h` (Beijing).
    fn busy_day(d: u32, from_h: u32, to_h: u32, per_slot: i64) -> DayCounters {
        let mut counters = BTreeMap::new();
        for h in from_h..to_h {
            for m in (0..60).step_by(10) {
                counters.insert(names::received_in_slot(h, m), per_slot);
            }
        }
        DayCounters { day: Some(date(d)), counters }
    }

    /// A week of 09:00–22:00 traffic for Douyin, before the 11th.
    fn week() -> BTreeMap<Source, Vec<DayCounters>> {
        BTreeMap::from([(Source::Douyin, (4..=10).map(|d| busy_day(d, 9, 22, 20)).collect())])
    }

    fn today(slots: &[((u32, u32), i64)]) -> BTreeMap<Source, DayCounters> {
        let counters = slots.iter().map(|((h, m), n)| (names::received_in_slot(*h, *m), *n)).collect();
        BTreeMap::from([(Source::Douyin, DayCounters { day: Some(date(11)), counters })])
    }

    #[test]
    fn silent_in_active_hours() {
        // Callbacks until 10:19, then nothing; at 10:35 the slots 10:20 and 10:30 are empty.
        let now = beijing(11, 10, 35);
        let found = silent_channels(now, &today(&[((9, 0), 12), ((10, 10), 8)]), &week(), &SilenceRules::default());
        assert_eq!(
            found,
            vec![SilentChannel {
                channel: Source::Douyin,
                silent_since_slot: beijing(11, 10, 20),
                expected_per_slot: 20.0
            }]
        );
    }

    #[test]
    fn not_silent_outside_active_hours() {
        // 03:00 Beijing: history has nothing in these slots.
        for now in [beijing(11, 3, 0), beijing(11, 8, 55), beijing(11, 22, 15)] {
            assert!(silent_channels(now, &today(&[]), &week(), &SilenceRules::default()).is_empty(), "{now}");
        }
        // At 09:05 the window still overlaps 08:50–09:00, outside the active hours: no alarm yet.
        assert!(silent_channels(beijing(11, 9, 5), &today(&[]), &week(), &SilenceRules::default()).is_empty());
        // From 09:10 the whole window is active and empty.
        assert_eq!(silent_channels(beijing(11, 9, 10), &today(&[]), &week(), &SilenceRules::default()).len(), 1);
    }

    #[test]
    fn a_channel_without_history_is_never_silent() {
        let found = silent_channels(beijing(11, 12, 0), &today(&[]), &BTreeMap::new(), &SilenceRules::default());
        assert!(found.is_empty());
        let zero = SilenceRules { min_expected_per_slot: 0.0, ..SilenceRules::default() };
        assert!(silent_channels(beijing(11, 12, 0), &today(&[]), &BTreeMap::new(), &zero).is_empty());
    }

    #[test]
    fn recovers_when_a_callback_arrives() {
        let now = beijing(11, 10, 35);
        let quiet = today(&[((10, 10), 8)]);
        assert_eq!(silent_channels(now, &quiet, &week(), &SilenceRules::default()).len(), 1);
        let back = today(&[((10, 10), 8), ((10, 30), 1)]);
        assert!(silent_channels(now, &back, &week(), &SilenceRules::default()).is_empty());
    }

    #[test]
    fn one_busy_day_does_not_make_a_slot_active() {
        // A flash sale at 03:00 on one day of the week: the median is still zero.
        let mut history = week();
        if let Some(days) = history.get_mut(&Source::Douyin) {
            days.push(busy_day(3, 3, 4, 500));
            days[0].counters.insert(names::received_in_slot(3, 0), 900);
        }
        assert!(silent_channels(beijing(11, 3, 15), &today(&[]), &history, &SilenceRules::default()).is_empty());
    }

    #[test]
    fn the_window_crosses_beijing_midnight() {
        // A channel busy around the clock; at 00:05 on the 11th the window is 23:50–00:10.
        let history: BTreeMap<Source, Vec<DayCounters>> =
            BTreeMap::from([(Source::Pdd, (3..=10).map(|d| busy_day(d, 0, 24, 9)).collect())]);
        let mut yesterday_quiet = history.clone();
        if let Some(days) = yesterday_quiet.get_mut(&Source::Pdd) {
            days.retain(|day| day.day != Some(date(10)));
            let mut last = busy_day(10, 0, 23, 9);
            last.counters.insert(names::received_in_slot(23, 0), 9);
            last.counters.insert(names::received_in_slot(23, 40), 9);
            days.push(last);
        }
        let now = beijing(11, 0, 5);
        let found = silent_channels(now, &BTreeMap::new(), &yesterday_quiet, &SilenceRules::default());
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].channel, Source::Pdd);
        assert_eq!(found[0].silent_since_slot, beijing(10, 23, 50));
        // A callback at 23:55 yesterday (Beijing) is inside the window: not silent.
        assert!(silent_channels(now, &BTreeMap::new(), &history, &SilenceRules::default()).is_empty());
    }

    #[test]
    fn counters_filed_under_another_day_are_not_todays() {
        let mut stale = today(&[((10, 20), 50), ((10, 30), 50)]);
        if let Some(counters) = stale.get_mut(&Source::Douyin) {
            counters.day = Some(date(10));
        }
        assert_eq!(silent_channels(beijing(11, 10, 35), &stale, &week(), &SilenceRules::default()).len(), 1);
    }

    #[test]
    fn a_slot_that_just_started_is_not_in_the_window() {
        // At 10:30:00 the window is 10:20–10:30: the 10:30 slot has had no time to fill.
        let found = silent_channels(beijing(11, 10, 30), &today(&[((10, 20), 3)]), &week(), &SilenceRules::default());
        assert!(found.is_empty());
    }
}

#[cfg(test)]
mod state_tests {
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
