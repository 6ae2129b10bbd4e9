//! The sign-in trust check's table test on real-shaped Kuaidi100 pushes
//! (`events/signin-trust-check/traces/kuaidi100-signs.json`): each push goes through the kuaidi100 parser
//! as webhook-verify delivers it (inline, or a file of `events/real/kuaidi100/`), then `classify`
//! and `assess` with no app evidence and no proxy history. Who signed (or why not), the station
//! named, the score, the verdict, whether the sign is called far, and the lifecycle and stage
//! of the push's state must be what the file says.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use domain::model::geo::GeoPoint;
use std::path::Path;

use domain::model::source_event::SourceEvent;
use domain::model::status::StatusMapping;
use domain::rules::sign_trust::{DeliveryOutcome, SignRecord, TrustInputs, TrustRules, assess, classify};
use domain::sources::kuaidi100;
use serde_json::Value;

const TRACES: &str = include_str!("../../../events/signin-trust-check/traces/kuaidi100-signs.json");

#[test]
fn every_real_shaped_push_is_judged_as_the_table_says() {
    let file: Value = serde_json::from_str(TRACES).unwrap();
    let cases = file["cases"].as_array().unwrap();
    assert!(
        cases.len() >= 15,
        "station, locker, doorman, front desk, recipient, other city, weak sign, refused, detailed codes"
    );
    let query = vec![("order".to_owned(), "douyin/shop-1001/6921000000000001".to_owned())];
    let rules = TrustRules::default();
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let expect = &case["expect"];
        let payload = match case["push_file"].as_str() {
            Some(file) => {
                std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/real/kuaidi100").join(file))
                    .unwrap_or_else(|e| panic!("{name}: {file}: {e}"))
            }
            None => serde_json::to_vec(&case["push"]).unwrap(),
        };
        let events = kuaidi100::parse(&payload, &query).unwrap_or_else(|e| panic!("{name}: {e}"));
        let [SourceEvent::Logistics(event)] = events.as_slice() else { panic!("{name}: one logistics event") };
        // What the state means for the order, and the stage dashboards show.
        if let Some(lifecycle) = expect.get("lifecycle") {
            let target = match kuaidi100::map_status("state", &event.state) {
                StatusMapping::Mapped(target) => target.lifecycle,
                _ => None,
            };
            assert_eq!(target.map(|l| l.as_str()), lifecycle.as_str(), "{name}: lifecycle of state {}", event.state);
            assert_eq!(target.map(|l| l.stage().label()), expect["stage"].as_str(), "{name}: stage");
        }
        let classified = classify(&SignRecord {
            kuaidi100_state: Some(&event.state),
            kuaidi100_sub_state: event.sub_state.as_deref(),
            carrier: Some(&event.waybill.carrier),
            carrier_code: event.carrier_code.as_deref(),
            text: &event.text,
        });
        assert_eq!(classified.station_name.as_deref(), expect["station"].as_str(), "{name}: station");
        let Some(kind) = classified.sign_kind() else {
            assert!(expect["signed_by"].is_null(), "{name}: expected a sign, got {classified:?}");
            match classified.outcome {
                DeliveryOutcome::NotDelivered(why) => assert_eq!(Some(why), expect["not_delivered"].as_str(), "{name}"),
                DeliveryOutcome::InTransit => assert_eq!(expect["in_transit"].as_bool(), Some(true), "{name}"),
                DeliveryOutcome::Signed(_) => unreachable!(),
            }
            continue;
        };
        assert_eq!(Some(format!("{kind:?}").as_str()), expect["signed_by"].as_str(), "{name}: signer");
        let address =
            GeoPoint { lat: case["address"]["lat"].as_f64().unwrap(), lng: case["address"]["lng"].as_f64().unwrap() };
        let assessment = assess(
            &TrustInputs {
                kind,
                weak_sign: classified.weak_sign,
                signed_at: event.event_time.unwrap(),
                sign_location: event.location,
                delivery_location: Some(address),
                app_signals: &[],
                proxy_receipts_this_month: 0,
            },
            &rules,
        );
        assert_eq!(Some(u64::from(assessment.score)), expect["score"].as_u64(), "{name}: {:?}", assessment.reasons);
        assert_eq!(Some(assessment.trusted), expect["trusted"].as_bool(), "{name}");
        assert_eq!(Some(assessment.suspect_distance), expect["far"].as_bool(), "{name}: far");
        // An area centre never becomes a distance in metres.
        assert_eq!(assessment.distance_m, None, "{name}");
    }
}
