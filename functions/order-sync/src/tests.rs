use super::*;
use std::collections::HashMap;

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    let mut all: HashMap<String, String> = [
        ("ORDERHUB_STAGE", "dev"),
        ("ORDERS_TABLE", "orders"),
        ("STATS_TABLE", "stats"),
        ("INBOX_TABLE", "inbox"),
        ("SYNC_TABLE", "sync"),
        ("INBOUND_QUEUE_URL", "http://127.0.0.1:5000/000000000000/inbound"),
        ("EVENT_BUS_NAME", "orderhub-dev"),
        ("WEBHOOK_BASE_URL", "https://hooks.example.com"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in pairs {
        all.insert((*k).to_owned(), (*v).to_owned());
    }
    all
}

#[test]
fn the_configuration_has_defaults_and_names_what_is_wrong() {
    let config = Config::from_env(&env(&[])).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(config.kuaidi100_key_parameter, "/orderhub/dev/kuaidi100/key");
    assert_eq!(config.kuaidi100_url, "https://poll.kuaidi100.com/poll");
    assert_eq!((config.cold_lookback_hours, config.overlap_s, config.shop_concurrency), (24, 120, 4));
    let err = Config::from_env(&env(&[("PDD_API_URL", "ftp://x")])).err();
    assert!(matches!(err, Some(ConfigError::Malformed { var: "PDD_API_URL", .. })), "{err:?}");
    let mut missing = env(&[]);
    missing.remove("SYNC_TABLE");
    assert_eq!(Config::from_env(&missing).err(), Some(ConfigError::Missing("SYNC_TABLE")));
}

fn decode(json: &str) -> Result<Trigger, adapters::trigger::DecodeError> {
    adapters::trigger::decode::<EventBridgeEvent<Value>, Ops>(
        serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}")),
        SHAPE,
    )
}

#[test]
fn every_sample_event_decodes() {
    let samples = [
        include_str!("../../../events/order-sync/sync-pulled.json"),
        include_str!("../../../events/order-sync/sync-refunds.json"),
        include_str!("../../../events/order-sync/sync-backstop.json"),
        include_str!("../../../events/order-sync/sync-one-shop.json"),
        include_str!("../../../events/order-sync/reconcile.json"),
        include_str!("../../../events/order-sync/tokens-sweep.json"),
        include_str!("../../../events/order-sync/tokens-refresh.json"),
        include_str!("../../../events/order-sync/tokens-import.json"),
        include_str!("../../../events/order-sync/subscribe.json"),
        include_str!("../../../events/order-sync/tracking-stopped.json"),
    ];
    for sample in samples {
        assert!(decode(sample).is_ok(), "{sample}: {:?}", decode(sample).err());
    }
    let Ok(Invocation::Ops(Ops::Sync(sync))) = decode(samples[0]) else { panic!() };
    assert_eq!(sync.platforms, [Source::Pdd, Source::Taobao, Source::Jd]);
    assert_eq!(sync.feeds, [Feed::Orders]);
    let Ok(Invocation::Trigger(event)) = decode(samples[9]) else { panic!() };
    assert!(matches!(
        DomainEvent::from_parts(&event.detail_type, event.detail),
        Ok(DomainEvent::TrackingStopped { .. })
    ));
}

#[test]
fn a_malformed_event_is_named_not_guessed() {
    let err = decode(r#"{"sync": {"platforms": ["tmall"]}}"#).err().map(|e| e.to_string()).unwrap_or_default();
    assert!(err.contains("tmall") || err.contains("unknown variant"), "{err}");
    assert!(decode(r#"{"tokens": "sweep"}"#).is_ok());
    assert!(decode(r#"{"tokens": {"refresh": {"platform": "pdd"}}}"#).is_err(), "the shop is required");
    assert!(decode(r#"{"resync": {}}"#).is_err());
}

#[test]
fn pull_lag_is_per_shop_from_its_furthest_behind_feed() {
    use domain::app::sync_channel::{FeedOutcome, FeedRun};
    let now = DateTime::parse_from_rfc3339("2026-11-11T04:00:00Z").map(|t| t.with_timezone(&Utc)).unwrap();
    let run = |source, shop: &str, feed, through: Option<i64>| FeedRun {
        source,
        shop: shop.to_owned(),
        feed,
        outcome: FeedOutcome::CaughtUp,
        through: through.map(|s| now - Duration::seconds(s)),
        windows: 1,
        list_calls: 1,
        rows: 0,
        enqueued: 0,
        duplicates: 0,
        error: None,
    };
    let report = SyncReport {
        feeds: vec![
            run(Source::Pdd, "p1", Feed::Orders, Some(300)),
            run(Source::Pdd, "p1", Feed::Refunds, Some(900)),
            run(Source::Taobao, "t1", Feed::Orders, Some(120)),
            run(Source::Jd, "j1", Feed::Orders, None),
        ],
        skipped: Default::default(),
    };
    assert_eq!(
        pull_lags(&report, now),
        [(Source::Pdd, "p1".to_owned(), 900.0), (Source::Taobao, "t1".to_owned(), 120.0)]
    );
}
