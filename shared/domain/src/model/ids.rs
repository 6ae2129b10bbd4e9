//! Identifiers that arrive from outside, parsed once at the boundary.
//!
//! Raw strings from paths, headers and payloads become these types before anything else
//! looks at them; keys in the tables are built from them, so a `#` or a 2 KB "shop id"
//! never reaches a key.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why an identifier was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdError {
    /// The source name is not one orderhub knows.
    #[error("unknown source `{0}`")]
    UnknownSource(String),
    /// The source is known but does not own orders (a carrier or a payment provider).
    #[error("source `{0}` does not own orders")]
    NotAChannel(Source),
    /// Empty, too long, or a character outside the allowed set.
    #[error("invalid {kind}: {reason}")]
    Invalid {
        /// Which identifier (shop id, order id, message id, sku).
        kind: &'static str,
        /// What is wrong with it (never the value itself: it may be personal data).
        reason: &'static str,
    },
}

/// Declares [`Source`] from one row per source: its variant, the identifier used in URLs, keys
/// and parameter paths, the name sellers read, and whether it owns orders (a sales channel).
macro_rules! sources {
    ($($(#[$doc:meta])* $variant:ident = $id:literal, $label:literal, $channel:literal;)+) => {
        /// Everyone who sends orderhub callbacks or whose changes it pulls: sales platforms
        /// (channels), the carrier tracking service, the payment provider and the seller's own
        /// mini-program. Each has one module in `crate::sources` and one row in its registry.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum Source {
            $($(#[$doc])* $variant,)+
        }

        impl Source {
            /// Every source, in a stable order.
            pub const ALL: [Source; [$(Source::$variant),+].len()] = [$(Source::$variant),+];

            /// The identifier used in URLs, keys and parameter paths.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Source::$variant => $id,)+
                }
            }

            /// The name sellers read.
            pub fn label(self) -> &'static str {
                match self {
                    $(Source::$variant => $label,)+
                }
            }

            /// Whether orders belong to this source (it is a sales channel).
            pub fn is_channel(self) -> bool {
                match self {
                    $(Source::$variant => $channel,)+
                }
            }
        }
    };
}

sources! {
    /// 抖店 (Douyin shop).
    Douyin = "douyin", "抖店", true;
    /// 拼多多 (Pinduoduo).
    Pdd = "pdd", "拼多多", true;
    /// 淘宝/天猫.
    Taobao = "taobao", "淘宝/天猫", true;
    /// 京东.
    Jd = "jd", "京东", true;
    /// 快手小店.
    Kuaishou = "kuaishou", "快手小店", true;
    /// 有赞.
    Youzan = "youzan", "有赞", true;
    /// The seller's own mini-program and services (Standard Webhooks).
    App = "app", "小程序", true;
    /// 快递100 carrier tracking pushes.
    Kuaidi100 = "kuaidi100", "快递100", false;
    /// 微信支付 payment notices.
    Wechatpay = "wechatpay", "微信支付", false;
}

impl Source {
    /// The sales channels: sources that own orders.
    pub const CHANNELS: [Source; 7] =
        [Source::Douyin, Source::Pdd, Source::Taobao, Source::Jd, Source::Kuaishou, Source::Youzan, Source::App];
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Source {
    type Err = IdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Source::ALL
            .into_iter()
            .find(|source| source.as_str() == s)
            .ok_or_else(|| IdError::UnknownSource(truncate(s, 32)))
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

fn check(value: &str, kind: &'static str, max: usize, allowed: fn(char) -> bool) -> Result<(), IdError> {
    if value.is_empty() {
        return Err(IdError::Invalid { kind, reason: "empty" });
    }
    if value.len() > max {
        return Err(IdError::Invalid { kind, reason: "too long" });
    }
    if !value.chars().all(allowed) {
        return Err(IdError::Invalid { kind, reason: "unexpected character" });
    }
    Ok(())
}

fn plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')
}

// Message ids are chosen by the sender; anything printable except our key separator.
fn message_char(c: char) -> bool {
    c.is_ascii_graphic() && c != '#'
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal, $max:literal, $allowed:path) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Parses an identifier received from outside.
            pub fn parse(raw: &str) -> Result<Self, IdError> {
                check(raw, $kind, $max, $allowed)?;
                Ok(Self(raw.to_owned()))
            }

            /// An identifier built by orderhub itself from characters the rules allow.
            #[allow(dead_code)]
            pub(crate) fn from_trusted(value: String) -> Self {
                debug_assert!(check(&value, $kind, $max, $allowed).is_ok());
                Self(value)
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(raw: String) -> Result<Self, IdError> {
                check(&raw, $kind, $max, $allowed)?;
                Ok(Self(raw))
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

id_type!(
    /// A seller's shop on one source (`[A-Za-z0-9_.-]{1,64}`).
    ShopId, "shop id", 64, plain_char
);
id_type!(
    /// A platform's order number (`[A-Za-z0-9_.-]{1,64}`).
    OrderId, "order id", 64, plain_char
);
id_type!(
    /// The sender's id of one callback (printable ASCII without `#`, at most 128).
    MessageId, "message id", 128, message_char
);
id_type!(
    /// A stock-keeping unit as the seller's ERP names it (`[A-Za-z0-9_.-]{1,64}`).
    Sku, "sku", 64, plain_char
);
id_type!(
    /// One line of an order as its platform numbers it — a sub-order (Douyin `sku_order_id`,
    /// Taobao `oid`), or the SKU where the platform has no line ids (`[A-Za-z0-9_.-]{1,64}`).
    LineId, "line id", 64, plain_char
);
id_type!(
    /// A platform's refund or after-sale id: one refund case of an order (`[A-Za-z0-9_.-]{1,64}`).
    RefundId, "refund id", 64, plain_char
);

impl LineId {
    /// The line of a platform without line ids: the SKU itself.
    pub fn of_sku(sku: &Sku) -> Self {
        Self(sku.as_str().to_owned())
    }
}

impl RefundId {
    /// The one refund case of an order whose platform gives no refund ids.
    pub fn whole_order() -> Self {
        Self("order".to_owned())
    }
}

/// The identity of one order: the channel it was sold on, the shop, and the channel's order id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct OrderKey {
    /// The sales channel.
    pub source: Source,
    /// The seller's shop on that channel.
    pub shop: ShopId,
    /// The channel's order number.
    pub order_id: OrderId,
}

impl OrderKey {
    /// Builds a key from raw parts received from outside.
    pub fn parse(source: Source, shop: &str, order_id: &str) -> Result<Self, IdError> {
        if !source.is_channel() {
            return Err(IdError::NotAChannel(source));
        }
        Ok(Self { source, shop: ShopId::parse(shop)?, order_id: OrderId::parse(order_id)? })
    }

    /// Builds a key from parts already parsed.
    pub fn new(source: Source, shop: ShopId, order_id: OrderId) -> Result<Self, IdError> {
        if !source.is_channel() {
            return Err(IdError::NotAChannel(source));
        }
        Ok(Self { source, shop, order_id })
    }

    /// A small stable hash of the key, for sharding counters and due markers.
    ///
    /// FNV-1a: stable across processes and releases (std's hasher is not).
    pub fn shard(&self, shards: u16) -> u16 {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in self.source.as_str().bytes().chain(self.shop.as_str().bytes()).chain(self.order_id.as_str().bytes())
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        let shards = u64::from(shards.max(1));
        // The remainder is below `shards`, which fits in u16.
        u16::try_from(hash % shards).unwrap_or(0)
    }
}

impl OrderKey {
    /// Parses the `channel/shop/order_id` form ops write (the [`fmt::Display`] form).
    pub fn parse_ref(raw: &str) -> Result<Self, String> {
        let mut parts = raw.trim().splitn(3, '/');
        let (Some(channel), Some(shop), Some(order_id)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(format!("`{}` is not channel/shop/order_id", raw.chars().take(80).collect::<String>()));
        };
        let channel: Source = channel.parse().map_err(|e| format!("{e}"))?;
        OrderKey::parse(channel, shop, order_id).map_err(|e| e.to_string())
    }
}

/// An order named as ops write it, `channel/shop/order_id`, in JSON (ops events).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct OrderRef(pub OrderKey);

impl TryFrom<String> for OrderRef {
    type Error = String;
    fn try_from(raw: String) -> Result<Self, String> {
        OrderKey::parse_ref(&raw).map(OrderRef)
    }
}

impl From<OrderRef> for String {
    fn from(order: OrderRef) -> String {
        order.0.to_string()
    }
}

impl fmt::Display for OrderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.source, self.shop, self.order_id)
    }
}

/// A dedupe key from bytes when the sender gives none: `h-` and 32 hex of SHA-256.
pub fn body_hash_id(body: &[u8]) -> MessageId {
    let digest = Sha256::digest(body);
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    // `h-` and 32 hex characters always pass `MessageId::parse`'s rules.
    MessageId::from_trusted(format!("h-{hex}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_round_trip_through_their_names() {
        for source in Source::ALL {
            assert_eq!(source.as_str().parse::<Source>(), Ok(source));
        }
        assert!(matches!("tmall".parse::<Source>(), Err(IdError::UnknownSource(_))));
    }

    #[test]
    fn carriers_and_payment_providers_do_not_own_orders() {
        assert_eq!(OrderKey::parse(Source::Kuaidi100, "s1", "o1"), Err(IdError::NotAChannel(Source::Kuaidi100)));
        assert!(OrderKey::parse(Source::Pdd, "s1", "200101-123456789").is_ok());
    }

    #[test]
    fn ids_refuse_key_separators_and_oversize_values() {
        assert!(ShopId::parse("shop#1").is_err());
        assert!(ShopId::parse("").is_err());
        assert!(OrderId::parse(&"9".repeat(65)).is_err());
        assert!(MessageId::parse("a#b").is_err());
        assert!(MessageId::parse("7012345678901234567:206").is_ok());
        assert!(MessageId::parse("a b").is_err());
    }

    #[test]
    fn shards_are_stable_and_in_range() {
        let key = OrderKey::parse(Source::Douyin, "shop-1", "6921234567890").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(key.shard(8), key.clone().shard(8));
        for shards in [1, 2, 8, 64] {
            assert!(key.shard(shards) < shards);
        }
        assert_eq!(key.shard(0), 0);
    }
}
