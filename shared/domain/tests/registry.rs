//! The source registry is complete: every source has its module in `REGISTRY` (in `Source::ALL`
//! order), a status table that its `map_status` answers from, and the files a source needs
//! outside the domain — a sample callback and fuzz targets for a source that pushes, a fake
//! gateway for one that is pulled. A platform added without them fails here.

use std::path::{Path, PathBuf};

use domain::Source;
use domain::model::status::StatusMapping;
use domain::sources::{self, Delivery, REGISTRY};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[test]
fn every_source_has_one_row_in_source_order() {
    assert_eq!(REGISTRY.len(), Source::ALL.len());
    for (row, source) in REGISTRY.iter().zip(Source::ALL) {
        assert_eq!(row.source(), source, "REGISTRY is in Source::ALL order");
        assert_eq!(sources::module(source).source(), source);
    }
    let channels: Vec<Source> = Source::ALL.into_iter().filter(|s| s.is_channel()).collect();
    assert_eq!(channels, Source::CHANNELS.to_vec());
}

#[test]
fn every_source_has_a_status_table_its_mapping_answers_from() {
    for row in REGISTRY {
        let table = row.status_table();
        assert!(!table.is_empty(), "{}: no status table", row.source());
        for (field, code, mapping) in table {
            assert_eq!(row.map_status(field, code), *mapping, "{} {field}={code}", row.source());
        }
        assert_eq!(row.map_status("no-such-field", "x"), StatusMapping::Unmapped, "{}", row.source());
    }
}

#[test]
fn every_source_has_its_samples_fuzz_targets_or_fake() {
    let fuzz_manifest = std::fs::read_to_string(root().join("fuzz/Cargo.toml")).unwrap_or_default();
    let samples: Vec<String> = std::fs::read_dir(root().join("events/webhook-verify"))
        .map(|dir| dir.filter_map(Result::ok).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    for row in REGISTRY {
        let source = row.source().as_str();
        match row.delivery() {
            Delivery::Callbacks => {
                assert!(
                    samples.iter().any(|f| f.starts_with(&format!("{source}-")) && f.ends_with(".json")),
                    "{source}: no sample callback events/webhook-verify/{source}-*.json"
                );
                for target in [format!("open_{source}"), format!("parse_{source}")] {
                    assert!(
                        root().join(format!("fuzz/fuzz_targets/{target}.rs")).exists()
                            && fuzz_manifest.contains(&format!("name = \"{target}\"")),
                        "{source}: no fuzz target {target}"
                    );
                }
            }
            Delivery::Pulled => {
                assert!(
                    root().join(format!("tests/src/fake_gateway/{source}.rs")).exists(),
                    "{source}: pulled, but no fake gateway tests/src/fake_gateway/{source}.rs"
                );
            }
        }
    }
}
