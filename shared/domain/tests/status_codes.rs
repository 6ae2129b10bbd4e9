//! `docs/status-codes.md` and the status tables in code agree, row by row.
//!
//! The document has one table per source, under a `## <source id>` heading, every row
//! `| field | code | meaning | lifecycle | refund | kind | source |`. For every source:
//!
//! - every row of the document maps in code (`sources::map_status(source, field, code)`) to the
//!   row's lifecycle, refund and kind — or is `Informational` when the row's kind says
//!   `informational`;
//! - every row of the source's `STATUS_TABLE` is a row of the document.
//!
//! A row whose source column says `unconfirmed` (the app's own contract: no public source) is
//! checked exactly like the others: it is in the table, so code and document must agree on it.
//! Codes the document names as unconfirmed in its prose and keeps *out* of the tables must be
//! Unmapped in code (the list below, with the section that names each).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;

use domain::model::ids::Source;
use domain::model::lifecycle::{Lifecycle, RefundKind, RefundState};
use domain::model::status::{StatusMapping, Target};
use domain::sources;

const DOC: &str = include_str!("../../../docs/status-codes.md");

/// One row of the document.
#[derive(Debug)]
struct Row {
    source: Source,
    field: String,
    code: String,
    lifecycle: String,
    refund: String,
    kind: String,
    line: usize,
}

fn rows() -> Vec<Row> {
    let mut rows = Vec::new();
    let mut section: Option<Source> = None;
    for (n, line) in DOC.lines().enumerate() {
        if let Some(heading) = line.strip_prefix("## ") {
            section = Source::ALL.into_iter().find(|s| s.as_str() == heading.trim());
            continue;
        }
        let Some(source) = section else { continue };
        if !line.starts_with("| ") {
            continue;
        }
        let cells: Vec<&str> = line.trim().trim_matches('|').split('|').map(str::trim).collect();
        if cells.first() == Some(&"field") {
            continue;
        }
        assert_eq!(cells.len(), 7, "line {}: a row has 7 cells: {line}", n + 1);
        // A code cell may hold a `|` nowhere: the split above would have broken it.
        let code = cells[1].trim_matches('`').to_owned();
        rows.push(Row {
            source,
            field: cells[0].to_owned(),
            code,
            lifecycle: cells[3].to_owned(),
            refund: cells[4].to_owned(),
            kind: cells[5].to_owned(),
            line: n + 1,
        });
    }
    rows
}

fn lifecycle(name: &str) -> Option<Lifecycle> {
    (name != "-").then(|| {
        Lifecycle::ALL.into_iter().find(|l| l.as_str() == name).unwrap_or_else(|| panic!("no lifecycle `{name}`"))
    })
}

fn refund(name: &str) -> Option<RefundState> {
    (name != "-").then(|| {
        RefundState::ALL.into_iter().find(|r| r.as_str() == name).unwrap_or_else(|| panic!("no refund state `{name}`"))
    })
}

fn kind(name: &str) -> Option<RefundKind> {
    match name {
        "-" => None,
        "RefundOnly" => Some(RefundKind::RefundOnly),
        "ReturnAndRefund" => Some(RefundKind::ReturnAndRefund),
        "PriceProtection" => Some(RefundKind::PriceProtection),
        other => panic!("no refund kind `{other}`"),
    }
}

#[test]
fn every_source_has_its_table_in_the_document() {
    let documented: BTreeSet<Source> = rows().iter().map(|r| r.source).collect();
    let all: BTreeSet<Source> = Source::ALL.into_iter().collect();
    assert_eq!(documented, all, "a `## <source>` section with a table for every source");
}

#[test]
fn every_row_of_the_document_maps_in_code_as_the_document_says() {
    let rows = rows();
    assert!(rows.len() > 300, "{} rows read: has the table format changed?", rows.len());
    let mut wrong = Vec::new();
    for row in &rows {
        let got = sources::map_status(row.source, &row.field, &row.code);
        let ok = if row.kind == "informational" {
            matches!(got, StatusMapping::Informational(_))
        } else {
            let want = Target {
                lifecycle: lifecycle(&row.lifecycle),
                refund: refund(&row.refund),
                refund_kind: kind(&row.kind),
            };
            got == StatusMapping::Mapped(want)
        };
        if !ok {
            wrong.push(format!(
                "docs/status-codes.md:{} {} {}={}: the document says {}/{}/{}, the code {got:?}",
                row.line, row.source, row.field, row.code, row.lifecycle, row.refund, row.kind
            ));
        }
    }
    assert!(wrong.is_empty(), "{} rows disagree:\n{}", wrong.len(), wrong.join("\n"));
}

#[test]
fn every_row_in_code_is_in_the_document() {
    let documented: BTreeSet<(Source, String, String)> =
        rows().into_iter().map(|r| (r.source, r.field, r.code)).collect();
    let mut missing = Vec::new();
    for module in sources::REGISTRY {
        for (field, code, _) in module.status_table() {
            if !documented.contains(&(module.source(), (*field).to_owned(), (*code).to_owned())) {
                missing.push(format!("{} {field}={code}", module.source()));
            }
        }
    }
    assert!(missing.is_empty(), "rows in code without a row in docs/status-codes.md:\n{}", missing.join("\n"));
}

#[test]
fn a_document_row_appears_once() {
    let mut seen = BTreeSet::new();
    for row in rows() {
        assert!(seen.insert((row.source, row.field.clone(), row.code.clone())), "line {}: {row:?} twice", row.line);
    }
}

#[test]
fn codes_the_document_calls_unconfirmed_stay_unmapped() {
    let unconfirmed: &[(Source, &str, &str, &str)] = &[
        (Source::Douyin, "tag", "107", "douyin: Tag 107 and any tag not listed"),
        (Source::Pdd, "after_sales_status", "1", "pdd: codes 1, 19, 20, 23, 26, 28, 29, 30"),
        (Source::Pdd, "after_sales_status", "19", "pdd"),
        (Source::Pdd, "after_sales_status", "20", "pdd"),
        (Source::Pdd, "after_sales_status", "23", "pdd"),
        (Source::Pdd, "after_sales_status", "26", "pdd"),
        (Source::Pdd, "after_sales_status", "28", "pdd"),
        (Source::Pdd, "after_sales_status", "29", "pdd"),
        (Source::Pdd, "after_sales_status", "30", "pdd"),
        (Source::Jd, "order_state", "PARENT_TRADE_CANCELED", "jd: third-party code only"),
        (Source::Jd, "order_state", "DELIVERY_RETURN", "jd: third-party code only"),
        (Source::Kuaidi100, "state", "211", "kuaidi100: Kdniao's code, not Kuaidi100's"),
        (Source::Kuaidi100, "state", "1004", "kuaidi100"),
        (Source::Kuaidi100, "state", "502", "kuaidi100"),
        (Source::Kuaidi100, "state", "1005", "kuaidi100"),
        (Source::Wechatpay, "trade_state", "ACCEPT", "wechatpay: APIv2 付款码 only"),
        (Source::App, "refund_status", "None", "app: None is no refund code"),
    ];
    for (source, field, code, why) in unconfirmed {
        assert_eq!(
            sources::map_status(*source, field, code),
            StatusMapping::Unmapped,
            "{source} {field}={code} ({why})"
        );
    }
}
