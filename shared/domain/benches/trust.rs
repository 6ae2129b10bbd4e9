//! Benchmark of one sign event: `classify` a 60-character trace line, then `assess` it with five
//! app signals. Target: ≤ 10 µs per event. Run with `cargo bench -p domain --bench trust`.

use std::hint::black_box;

use chrono::{DateTime, Duration, TimeZone, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use domain::model::geo::GeoPoint;
use domain::model::sign::SignKind;
use domain::model::signal::{AppSignal, AppSignalKind};
use domain::rules::sign_trust::{SignRecord, TrustInputs, TrustRules, assess, classify};

// 60 characters, the shape of a Cainiao station pickup line as Kuaidi100 pushes it.
const TEXT: &str = "【杭州市西湖区】快件已签收，签收人凭取货码签收。如有疑问请联系：菜鸟驿站(幸福里店)，感谢使用中通快递，期待再次为您服务";

const ADDRESS: GeoPoint = GeoPoint { lat: 30.2741, lng: 120.1551 };
const STATION: GeoPoint = GeoPoint { lat: 30.2810, lng: 120.1551 };
const NEAR_HOME: GeoPoint = GeoPoint { lat: 30.2750, lng: 120.1560 };

fn signed_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 8, 11, 17, 22).single().unwrap_or_default()
}

fn signals() -> [AppSignal; 5] {
    let at = |minutes| signed_at() + Duration::minutes(minutes);
    [
        AppSignal { kind: AppSignalKind::AppOpened, at: at(-30), location: None, accuracy_m: None },
        AppSignal { kind: AppSignalKind::LogisticsViewed, at: at(12), location: None, accuracy_m: None },
        AppSignal { kind: AppSignalKind::GpsPing, at: at(13), location: Some(STATION), accuracy_m: Some(35.0) },
        AppSignal { kind: AppSignalKind::GpsPing, at: at(41), location: Some(NEAR_HOME), accuracy_m: Some(20.0) },
        AppSignal { kind: AppSignalKind::AppOpened, at: at(150), location: None, accuracy_m: None },
    ]
}

fn sign_event(c: &mut Criterion) {
    let record = SignRecord {
        kuaidi100_state: Some("3"),
        kuaidi100_sub_state: None,
        carrier: Some("zhongtong"),
        carrier_code: None,
        text: TEXT,
    };
    let signals = signals();
    let rules = TrustRules::default();
    let event = |record: &SignRecord<'_>| {
        let classification = classify(record);
        let inputs = TrustInputs {
            kind: classification.sign_kind().unwrap_or(SignKind::Unknown),
            weak_sign: classification.weak_sign,
            signed_at: signed_at(),
            sign_location: Some(domain::model::geo::Located::exact(STATION)),
            delivery_location: Some(ADDRESS),
            app_signals: &signals,
            proxy_receipts_this_month: 2,
        };
        (classification, assess(&inputs, &rules))
    };
    let (classification, assessment) = event(&record);
    assert_eq!(TEXT.chars().count(), 60);
    assert_eq!(classification.sign_kind(), Some(SignKind::ParcelStation));
    assert!(assessment.trusted, "the bench event should exercise every rule it can: {assessment:#?}");

    let mut group = c.benchmark_group("trust");
    group.bench_function("classify", |b| b.iter(|| classify(black_box(&record))));
    group.bench_function("classify+assess (60-char line, 5 signals)", |b| b.iter(|| event(black_box(&record))));
    group.finish();
}

criterion_group!(benches, sign_event);
criterion_main!(benches);
