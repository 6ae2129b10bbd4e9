//! What an invocation asks for, decided from the event and the clock: a report (kind, Beijing
//! period, channels) or a run of the channel-silence watch.
//!
//! | event | period |
//! |---|---|
//! | `{"report":"daily"}` (schedule, 02:00 Beijing) | the Beijing day before now |
//! | `{"report":"daily","day":"2026-11-11"}` | that day |
//! | `{"report":"monthly"}` (schedule, the 5th 03:00 Beijing) | the Beijing month before now |
//! | `{"report":"monthly","month":"2026-10"}` | that month |
//! | `{"report":"range","from":"…","to":"…","channels":["douyin"]}` | those days, those channels (all when absent) |
//! | `{"report":"silence"}` (schedule, every 5 minutes) | — |

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use serde::Deserialize;

use domain::Source;
use domain::app::health_report::{MAX_RANGE_DAYS, ReportRequest};
use domain::model::time::business_day;
use domain::rules::health::{Period, ReportKind};

/// What an invocation asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// Build, store and publish a report.
    Report(ReportRequest),
    /// Run the channel-silence watch.
    Silence,
}

/// Why an event could not be understood (the caller's fault: retrying will not help).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// Not one of the accepted shapes.
    #[error("unrecognised event ({0}); expected {{\"report\":\"daily\"|\"monthly\"|\"range\"|\"silence\", …}}")]
    Unreadable(String),
    /// `month` is not `yyyy-mm`.
    #[error("month `{0}` is not yyyy-mm")]
    Month(String),
    /// A channel name that is not a source.
    #[error("unknown channel `{0}`")]
    Channel(String),
    /// The period starts after today (Beijing).
    #[error("the period starts on {0}, after today (Asia/Shanghai)")]
    Future(NaiveDate),
    /// The range is longer than [`MAX_RANGE_DAYS`].
    #[error("the range covers {0} days; at most {MAX_RANGE_DAYS} are accepted (use monthly reports or several ranges)")]
    TooLong(u64),
}

#[derive(Deserialize)]
#[serde(tag = "report", rename_all = "lowercase", deny_unknown_fields)]
enum Wire {
    Daily {
        #[serde(default)]
        day: Option<NaiveDate>,
    },
    Monthly {
        #[serde(default)]
        month: Option<String>,
    },
    Range {
        from: NaiveDate,
        to: NaiveDate,
        #[serde(default)]
        channels: Option<Vec<String>>,
    },
    Silence,
}

/// Decides what the event asks for at `now` (day and month boundaries in Asia/Shanghai).
pub fn decide(event: &serde_json::Value, now: DateTime<Utc>) -> Result<Request, RequestError> {
    let wire: Wire = serde_json::from_value(event.clone()).map_err(|e| RequestError::Unreadable(e.to_string()))?;
    let today = business_day(now);
    let request = match wire {
        Wire::Silence => return Ok(Request::Silence),
        Wire::Daily { day: None } => ReportRequest::all_channels(ReportKind::Daily, Period::previous_day(now)),
        Wire::Daily { day: Some(day) } => ReportRequest::all_channels(ReportKind::Daily, Period::day(day)),
        Wire::Monthly { month: None } => ReportRequest::all_channels(ReportKind::Monthly, Period::previous_month(now)),
        Wire::Monthly { month: Some(month) } => {
            ReportRequest::all_channels(ReportKind::Monthly, Period::month_of(parse_month(&month)?))
        }
        Wire::Range { from, to, channels } => {
            let period = Period::new(from, to);
            if period.len_days() > MAX_RANGE_DAYS {
                return Err(RequestError::TooLong(period.len_days()));
            }
            match channels.filter(|names| !names.is_empty()) {
                None => ReportRequest::all_channels(ReportKind::Range, period),
                Some(names) => {
                    let mut channels = names
                        .iter()
                        .map(|name| name.trim().parse::<Source>().map_err(|_| RequestError::Channel(name.clone())))
                        .collect::<Result<Vec<_>, _>>()?;
                    channels.sort();
                    channels.dedup();
                    let subset = channels != Source::CHANNELS;
                    ReportRequest { kind: ReportKind::Range, period, channels, subset }
                }
            }
        }
    };
    if request.period.from > today {
        return Err(RequestError::Future(request.period.from));
    }
    Ok(Request::Report(request))
}

/// The first day of a `yyyy-mm` month.
fn parse_month(raw: &str) -> Result<NaiveDate, RequestError> {
    let bad = || RequestError::Month(raw.to_owned());
    let (year, month) = raw.trim().split_once('-').ok_or_else(bad)?;
    if year.len() != 4 || month.len() != 2 {
        return Err(bad());
    }
    let year: i32 = year.parse().map_err(|_| bad())?;
    let month: u32 = month.parse().map_err(|_| bad())?;
    NaiveDate::from_ymd_opt(year, month, 1).filter(|d| d.year() == year).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap()
    }

    fn report(event: serde_json::Value, now: DateTime<Utc>) -> ReportRequest {
        match decide(&event, now).unwrap() {
            Request::Report(report) => report,
            Request::Silence => panic!("expected a report"),
        }
    }

    #[test]
    fn the_daily_schedule_at_two_in_beijing_reports_the_beijing_yesterday() {
        // 2026-11-12 02:00 Beijing is 2026-11-11 18:00 UTC.
        let request = report(json!({"report":"daily"}), utc(2026, 11, 11, 18, 0));
        assert_eq!(request.period, Period::day(date(2026, 11, 11)));
        assert_eq!(request.stored_period(), "2026-11-11");
        // 00:30 Beijing on the 12th is still the 11th in UTC: yesterday is the 11th, not the 10th.
        let request = report(json!({"report":"daily"}), utc(2026, 11, 11, 16, 30));
        assert_eq!(request.period, Period::day(date(2026, 11, 11)));
        // 23:59 Beijing on the 11th: yesterday is the 10th.
        let request = report(json!({"report":"daily"}), utc(2026, 11, 11, 15, 59));
        assert_eq!(request.period, Period::day(date(2026, 11, 10)));
    }

    #[test]
    fn the_monthly_schedule_on_the_fifth_reports_last_month() {
        // 2026-12-05 03:00 Beijing.
        let request = report(json!({"report":"monthly"}), utc(2026, 12, 4, 19, 0));
        assert_eq!(request.period, Period::new(date(2026, 11, 1), date(2026, 11, 30)));
        assert_eq!(request.stored_period(), "2026-11");
        // 00:30 Beijing on 1 December is still November in UTC: last month is November.
        let request = report(json!({"report":"monthly"}), utc(2026, 11, 30, 16, 30));
        assert_eq!(request.stored_period(), "2026-11");
        // January reports December of the year before.
        let request = report(json!({"report":"monthly"}), utc(2027, 1, 4, 19, 0));
        assert_eq!(request.stored_period(), "2026-12");
    }

    #[test]
    fn reruns_name_their_day_or_month() {
        let now = utc(2026, 12, 20, 4, 0);
        assert_eq!(report(json!({"report":"daily","day":"2026-11-11"}), now).period, Period::day(date(2026, 11, 11)));
        let request = report(json!({"report":"monthly","month":"2026-02"}), now);
        assert_eq!(request.period, Period::new(date(2026, 2, 1), date(2026, 2, 28)));
        assert!(!request.subset);
        assert_eq!(request.channels, Source::CHANNELS.to_vec());
        for bad in ["2026-13", "2026-1", "26-01", "2026/01", "november"] {
            assert_eq!(
                decide(&json!({"report":"monthly","month":bad}), now),
                Err(RequestError::Month(bad.into())),
                "{bad}"
            );
        }
    }

    #[test]
    fn ops_ranges_name_days_and_channels() {
        let now = utc(2026, 12, 1, 4, 0);
        let request = report(
            json!({"report":"range","from":"2026-11-01","to":"2026-11-15","channels":["pdd","douyin","pdd"]}),
            now,
        );
        assert_eq!(request.kind, ReportKind::Range);
        assert_eq!(request.period, Period::new(date(2026, 11, 1), date(2026, 11, 15)));
        assert_eq!(request.channels, vec![Source::Douyin, Source::Pdd]);
        assert_eq!(request.stored_period(), "2026-11-01..2026-11-15#douyin+pdd");
        // No channels, or an empty list, or every channel: the full report.
        for channels in [json!(null), json!([])] {
            let request =
                report(json!({"report":"range","from":"2026-11-15","to":"2026-11-01","channels":channels}), now);
            assert!(!request.subset);
            assert_eq!(request.stored_period(), "2026-11-01..2026-11-15");
        }
        let all: Vec<&str> = Source::CHANNELS.iter().map(|s| s.as_str()).collect();
        let request = report(json!({"report":"range","from":"2026-11-01","to":"2026-11-02","channels":all}), now);
        assert!(!request.subset);
        // Other sources can be asked for by name.
        let request =
            report(json!({"report":"range","from":"2026-11-01","to":"2026-11-02","channels":["kuaidi100"]}), now);
        assert_eq!(request.channels, vec![Source::Kuaidi100]);
    }

    #[test]
    fn bad_requests_say_why() {
        let now = utc(2026, 12, 1, 4, 0);
        let err = |event: serde_json::Value| decide(&event, now).unwrap_err();
        assert_eq!(
            err(json!({"report":"range","from":"2026-11-01","to":"2026-11-02","channels":["tmall"]})),
            RequestError::Channel("tmall".into())
        );
        assert_eq!(err(json!({"report":"range","from":"2026-01-01","to":"2026-11-02"})), RequestError::TooLong(306));
        assert_eq!(err(json!({"report":"daily","day":"2026-12-02"})), RequestError::Future(date(2026, 12, 2)));
        for event in [
            json!({"report":"weekly"}),
            json!({}),
            json!("daily"),
            json!({"report":"daily","day":"2026-02-30"}),
            json!({"report":"daily","chanels":["douyin"]}),
            json!({"report":"range","from":"2026-11-01"}),
        ] {
            assert!(matches!(decide(&event, now), Err(RequestError::Unreadable(_))), "{event}");
        }
        assert_eq!(decide(&json!({"report":"silence"}), now), Ok(Request::Silence));
        // A range of exactly the limit is accepted.
        let last = date(2026, 9, 1).checked_add_days(chrono::Days::new(MAX_RANGE_DAYS - 1)).unwrap();
        assert!(decide(&json!({"report":"range","from":"2026-09-01","to":last}), now).is_ok());
    }

    #[test]
    fn every_sample_event_decodes() {
        let now = utc(2026, 12, 5, 0, 0);
        let samples = [
            ("daily", include_str!("../../../events/health-report/daily.json")),
            ("daily-rerun", include_str!("../../../events/health-report/daily-rerun.json")),
            ("monthly", include_str!("../../../events/health-report/monthly.json")),
            ("range", include_str!("../../../events/health-report/range.json")),
            ("silence", include_str!("../../../events/health-report/silence.json")),
        ];
        for (name, event) in samples {
            let event: serde_json::Value = serde_json::from_str(event).unwrap();
            let request = decide(&event, now).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(request == Request::Silence, name == "silence", "{name}");
        }
    }
}
