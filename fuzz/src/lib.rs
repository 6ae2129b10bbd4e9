//! The harnesses behind the fuzz targets in `fuzz_targets/`, and the encoder the seed generator
//! (`examples/seeds.rs`) uses to write valid inputs in `arbitrary`'s byte format.
//!
//! Every target checks one invariant on top of "never panics":
//! - `open_<source>`: a refused callback is refused with a reason; an opened message has a valid
//!   message id and its payload parses or fails with a [`ParseError`]; a callback signed as the
//!   sender signs it is never refused for its signature.
//! - `parse_<source>`: every event carries valid ids, and status events belong to the channel
//!   and shop they were parsed for.
//! - `inbound_message`: a message that deserialises serialises back to itself, and its payload
//!   goes through its source's parser like any other.
//! - `http_incoming`: the path router only yields non-empty segments without a `/`.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use chrono::{DateTime, TimeZone, Utc};
use domain::model::callback::{InboundMessage, RawCallback};
use domain::model::geo::GeoPoint;
use domain::model::ids::{MessageId, OrderKey, ShopId, Source};
use domain::model::source_event::{ParseError, SourceEvent};
use domain::sources::ShopSecret;
use domain::sources::{self, Opened, Refusal};
use domain::testing::fixtures;

pub mod encode;
pub mod http;

/// webhook-verify's library (`route`, `incoming`, `handle`), compiled from its own source: the
/// crate itself depends on the AWS SDK through `adapters`, which would make every fuzz build
/// slower than all the fuzzing; here `adapters` is the AWS-free `orderhub-fuzz-adapters`.
#[path = "../../functions/webhook-verify/src/lib.rs"]
pub mod webhook_verify;

/// The shop every fuzzed callback is addressed to.
pub const SHOP: &str = "shop-1001";
/// The fixture shop secret (`fixtures::secret_json`), and the previous one during a rotation.
pub const SECRET: &str = "fuzz-shop-secret";
/// The previous secret of the fixture shop.
pub const PREVIOUS_SECRET: &str = "fuzz-previous-secret";
/// The message id a signed callback carries when the input names none.
pub const DEFAULT_MESSAGE_ID: &str = "fz-1";

/// The six sources that deliver callbacks over HTTP.
pub const CALLBACK_SOURCES: [Source; 6] =
    [Source::Douyin, Source::Youzan, Source::Kuaishou, Source::Kuaidi100, Source::Wechatpay, Source::App];

/// Header names some source reads; [`HeaderName::Known`] picks one by index (modulo).
pub const KNOWN_HEADERS: [&str; 13] = [
    "app-id",
    "event-sign",
    "sign-method",
    "client-id",
    "content-type",
    "wechatpay-timestamp",
    "wechatpay-nonce",
    "wechatpay-signature",
    "wechatpay-serial",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "event-type",
];

/// When every fuzzed callback arrived.
pub fn received_at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 11, 2, 0, 0).single().expect("a valid fixed time")
}

/// The fixture shop.
pub fn shop() -> ShopId {
    ShopId::parse(SHOP).expect("a valid fixture shop")
}

/// The fixture secret of `source`, parsed once.
pub fn secret(source: Source) -> &'static ShopSecret {
    static SECRETS: OnceLock<BTreeMap<Source, ShopSecret>> = OnceLock::new();
    let secrets = SECRETS.get_or_init(|| {
        CALLBACK_SOURCES
            .into_iter()
            .map(|source| {
                let json = fixtures::secret_json(source, SECRET, Some(PREVIOUS_SECRET));
                (source, sources::module(source).load_secret(&json).expect("fixture secrets parse"))
            })
            .collect()
    });
    &secrets[&source]
}

/// A header name: one a source reads, or anything.
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub enum HeaderName<'a> {
    /// `KNOWN_HEADERS[n % len]`.
    Known(u8),
    /// Any name.
    Other(&'a str),
}

impl HeaderName<'_> {
    /// The name as it goes on the callback.
    pub fn as_str(&self) -> &str {
        match self {
            HeaderName::Known(n) => KNOWN_HEADERS[usize::from(*n) % KNOWN_HEADERS.len()],
            HeaderName::Other(name) => name,
        }
    }
}

/// A callback as the fuzzer builds it, for one source, addressed to [`SHOP`] and received at
/// [`received_at`].
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub struct CallbackInput<'a> {
    /// When true, `body` is the payload and the harness signs (or encrypts) it exactly as the
    /// source's sender does, with the headers below after the signed ones (the first header of a
    /// name wins, so they add noise but cannot override); the first header's value, if any, is
    /// the message id. This reaches what lies behind verification. When false, the headers and
    /// the body go in as they are.
    pub signed: bool,
    /// Headers, in order.
    pub headers: Vec<(HeaderName<'a>, &'a str)>,
    /// Query parameters of the callback URL.
    pub query: Vec<(&'a str, &'a str)>,
    /// Body (or, when `signed`, payload).
    pub body: &'a [u8],
}

impl CallbackInput<'_> {
    /// The raw callback `open` sees.
    pub fn callback(&self, source: Source) -> RawCallback {
        let extra = self.headers.iter().map(|(name, value)| (name.as_str().to_owned(), (*value).to_owned()));
        let (headers, body) = if self.signed {
            let signed = fixtures::sign(
                source,
                self.body,
                &fixtures::signing_key(source, SECRET),
                received_at(),
                self.message_id(),
            );
            (signed.headers.into_iter().chain(extra).collect(), signed.body)
        } else {
            (extra.collect(), self.body.to_vec())
        };
        RawCallback {
            source,
            shop: shop(),
            received_at: received_at(),
            query: self.query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect(),
            headers,
            body,
        }
    }

    /// The message id a signed callback carries.
    pub fn message_id(&self) -> &str {
        self.headers.first().map_or(DEFAULT_MESSAGE_ID, |(_, value)| value)
    }

    /// Whether the sender would send this payload as signed, so that a refusal for its signature
    /// would be a bug. Kuaishou signs nothing (a payload that is not its JSON is refused as a
    /// forgery), a Standard Webhooks id the HTTP layer would trim is not what was signed, an
    /// added `sign-method` header announces a scheme Douyin's signature was not made with, and a
    /// Youzan body naming another `client_id` is not the shop's push (Youzan signs with the
    /// client id its body names).
    fn must_verify(&self, source: Source) -> bool {
        match source {
            Source::Kuaishou => false,
            Source::Youzan => serde_json::from_slice::<serde_json::Value>(self.body)
                .ok()
                .and_then(|body| domain::sources::json::text(&body, "client_id"))
                .is_none_or(|id| id == YOUZAN_CLIENT_ID),
            Source::Douyin => !self.headers.iter().any(|(name, _)| name.as_str().eq_ignore_ascii_case("sign-method")),
            Source::App => {
                let id = self.message_id();
                !id.is_empty() && id.trim() == id
            }
            _ => true,
        }
    }
}

/// The Youzan client id the fixtures sign with (`domain::testing::fixtures::sign`).
const YOUZAN_CLIENT_ID: &str = "yz-client-1";

/// `open_<source>`: verify and open, then parse what opened.
pub fn open(source: Source, input: &CallbackInput<'_>) -> Result<Opened, Refusal> {
    let callback = input.callback(source);
    let opened = sources::open(&callback, secret(source));
    match &opened {
        Ok(Opened::Message { message_id, payload, key_slot }) => {
            check_message_id(message_id);
            assert!(!key_slot.is_empty(), "a message opened without a key slot");
            let _ = parse(source, payload, &callback.query);
        }
        Ok(Opened::Probe { key_slot }) => assert!(!key_slot.is_empty(), "a probe opened without a key slot"),
        Err(Refusal::Signature(reason)) => {
            assert!(
                !input.signed || !input.must_verify(source),
                "a callback signed as the sender signs it was refused: {reason}"
            );
        }
        Err(Refusal::Stale(reason)) => assert!(!input.signed, "a callback signed at receipt time is stale: {reason}"),
        Err(Refusal::Malformed(_)) => {}
    }
    opened
}

/// `parse_<source>`: parse a payload for the fixture shop and check every event.
pub fn parse(source: Source, payload: &[u8], query: &[(String, String)]) -> Result<Vec<SourceEvent>, ParseError> {
    let shop = shop();
    let events = sources::parse(source, &shop, payload, query);
    if let Ok(events) = &events {
        check_events(source, &shop, events);
    }
    events
}

/// Input of `parse_kuaidi100`: the query names the order (`order=<channel>/<shop>/<id>`).
#[derive(Arbitrary, Debug, Clone, PartialEq, Eq)]
pub struct QueryPayload<'a> {
    /// Query parameters of the callback URL.
    pub query: Vec<(&'a str, &'a str)>,
    /// The opened payload.
    pub payload: &'a [u8],
}

impl QueryPayload<'_> {
    /// The query as the parser takes it.
    pub fn query(&self) -> Vec<(String, String)> {
        self.query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }
}

/// `inbound_message`: a queue message in, its payload through its source's parser.
pub fn inbound_message(bytes: &[u8]) -> Option<InboundMessage> {
    let text = std::str::from_utf8(bytes).ok()?;
    let message: InboundMessage = serde_json::from_str(text).ok()?;
    let again = serde_json::to_string(&message).expect("an inbound message serialises");
    let back: InboundMessage = serde_json::from_str(&again).expect("a serialised inbound message deserialises");
    assert_eq!(back, message, "inbound message does not round-trip");
    check_message_id(&message.message_id);
    if let Some(payload) = &message.payload {
        let events = sources::parse(message.source, &message.shop, payload.as_bytes(), &message.query);
        if let Ok(events) = events {
            check_events(message.source, &message.shop, &events);
        }
    }
    Some(message)
}

fn check_message_id(id: &MessageId) {
    assert!(MessageId::parse(id.as_str()).is_ok(), "invalid message id {:?}", id.as_str());
}

fn check_location(point: Option<&GeoPoint>) {
    if let Some(p) = point {
        assert!((-90.0..=90.0).contains(&p.lat) && (-180.0..=180.0).contains(&p.lng), "location out of range: {p:?}");
    }
}

fn check_key(key: &OrderKey) {
    assert!(OrderKey::parse(key.source, key.shop.as_str(), key.order_id.as_str()).is_ok(), "invalid order key {key:?}");
}

/// Every event's ids are valid; a status event parsed from a channel's payload belongs to that
/// channel (the `app` channel for WeChat Pay) and the shop it was parsed for.
pub fn check_events(source: Source, shop: &ShopId, events: &[SourceEvent]) {
    for event in events {
        match event {
            SourceEvent::Status(status) => {
                check_key(&status.key);
                check_message_id(&status.message_id);
                let owner = if source == Source::Wechatpay { Source::App } else { source };
                assert_eq!(status.key.source, owner, "status event of another channel");
                assert_eq!(&status.key.shop, shop, "status event of another shop");
                assert!(
                    status.raw.code.chars().count() <= domain::model::status::RawStatus::MAX_CODE_CHARS + 1,
                    "raw code unbounded"
                );
                for id in status.facts.line_ids.iter().chain(&status.facts.refund.lines) {
                    assert!(domain::model::ids::LineId::parse(id.as_str()).is_ok(), "invalid line id {id:?}");
                }
                for line in &status.facts.lines {
                    assert!(domain::model::ids::Sku::parse(line.sku.as_str()).is_ok(), "invalid sku {:?}", line.sku);
                    assert!(
                        domain::model::ids::LineId::parse(line.line.as_str()).is_ok(),
                        "invalid line {:?}",
                        line.line
                    );
                }
            }
            SourceEvent::Logistics(logistics) => {
                check_key(&logistics.key);
                check_message_id(&logistics.message_id);
                check_location(logistics.location.as_ref().map(|l| &l.point));
                assert!(logistics.stopped.as_ref().is_none_or(|r| r.chars().count() <= 160), "abort reason unbounded");
            }
            SourceEvent::App(app) => {
                if let Some(key) = &app.key {
                    check_key(key);
                }
                check_message_id(&app.message_id);
                assert!(app.accuracy_m.is_none_or(|a| a.is_finite() && a >= 0.0), "bad accuracy");
                check_location(app.location.as_ref());
            }
            SourceEvent::Address(address) => {
                check_key(&address.key);
                check_message_id(&address.message_id);
                check_location(address.location.as_ref());
            }
            SourceEvent::Ignored(_) => {}
        }
    }
}
