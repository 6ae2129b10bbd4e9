//! Sign-in trust: is a carrier's "signed" proof that the customer has the parcel?
//!
//! Two steps, both pure:
//!
//! 1. [`classify`] reads one carrier sign record (a Kuaidi100 push or a courier's own trace
//!    line) and says what happened — signed by whom, not delivered, or still moving — and which
//!    rule decided.
//! 2. [`assess`] scores a sign 0–100 from who signed, where, what the customer's mini-program
//!    saw in the two hours after it, and the address's proxy-receipt history. Every rule that
//!    applied is listed with its points, so the mini-program can show "score with its reasons".
//!
//! # Classification precedence
//!
//! The most specific evidence wins:
//!
//! 1. **Kuaidi100 sub-state** (`resultv2=4`): 301 本人签收, 302 派件异常后签收 (weak), 303 代签,
//!    304/501 投柜或驿站, 205 柜或驿站超时未取, 201 超时未签收, 203 拒收, 206 无法联系.
//! 2. **Courier code** (SF 80/607/130/70…, Yunda `INBOUND`…, ZTO/STO 驿站代收, Best 代理点签收…).
//! 3. **Trace-text keywords**: "not delivered" words (拒收, 退回, 派送失败…) unless the line says
//!    已签收; then lockers (快递柜, 丰巢, 智能柜…) over stations (驿站, 代收点, 快递超市…) over
//!    proxy persons (门卫, 物业, 前台, 家人, 同事…) over 本人签收. A named proxy beats 本人 because
//!    carriers are known to label station receipts 本人签收. A line that is still on its way
//!    (派送中, 发往…) with no sign word does not count as a proxy receipt.
//! 4. **Kuaidi100 top state**: 3 签收 (signer unknown), 4 退签, 6 退回, 14 拒签, 2 疑难.
//! 5. A bare sign phrase in the text (已签收, 签收人…): signed, signer unknown.
//! 6. Nothing: in transit.
//!
//! Within a sign, a code that does not say *who* signed (SF 80 签收, 303 代签, 304 投柜或站签收…)
//! lets the trace text name the signer, within what the code allows: 303 代签 can become a
//! station or a locker but never the recipient; 304 can only be a locker or a station. The
//! evidence then names the text rule, since that is what decided the kind.
//!
//! # Scoring
//!
//! All thresholds and weights are fields of [`TrustRules`]; its documentation has the table of
//! defaults with the reason for each. The score is the sum of the reasons' points, clamped to
//! 0..=100; an explicit customer answer sets it outright (its reason carries the points needed).

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use SignKind::{Locker, ParcelStation, ProxyPerson, Recipient, Unknown};
use TextMay::{AnyKind, LockerOrStation, Nothing, OtherThanRecipient};

/// Who or what signed for the parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SignKind {
    /// The recipient in person (本人签收).
    Recipient,
    /// Someone else on the recipient's behalf: doorman, property office, front desk, family…
    ProxyPerson,
    /// A parcel station or pickup point (驿站, 代收点, 快递超市); the customer still has to fetch it.
    ParcelStation,
    /// A parcel locker (快递柜, 丰巢, 智能柜); the customer still has to fetch it.
    Locker,
    /// Signed, but the record does not say by whom.
    Unknown,
}

impl SignKind {
    /// Whether someone or something other than the recipient took the parcel.
    pub const fn is_proxy(self) -> bool {
        matches!(self, Self::ProxyPerson | Self::ParcelStation | Self::Locker)
    }
}

/// What a carrier record says happened to the parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeliveryOutcome {
    /// The carrier says signed, by this kind of signer.
    Signed(SignKind),
    /// Not delivered: `refused`, `returned`, `delivery failed`, `unreachable`, `timed out`, `exception`.
    NotDelivered(&'static str),
    /// Still moving, or nothing in the record says otherwise.
    InTransit,
}

/// One carrier sign record, as received. Raw strings stop here: [`classify`] turns them into a
/// [`Classification`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct SignRecord<'a> {
    /// Kuaidi100 top-level `state`, e.g. `3`.
    pub kuaidi100_state: Option<&'a str>,
    /// Kuaidi100 sub-state (with `resultv2=4`), e.g. `304`.
    pub kuaidi100_sub_state: Option<&'a str>,
    /// The carrier's Kuaidi100 company code, e.g. `shunfeng`, `yunda`, `zhongtong`.
    pub carrier: Option<&'a str>,
    /// The courier's own operation code, e.g. SF `607`, Yunda `INBOUND`, STO `驿站代收`.
    pub carrier_code: Option<&'a str>,
    /// The trace line, e.g. `已签收，签收人是门卫`.
    pub text: &'a str,
}

/// What [`classify`] concluded from a sign record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Classification {
    /// Signed (by whom), not delivered, or in transit.
    pub outcome: DeliveryOutcome,
    /// The station or locker named in the text, e.g. `菜鸟驿站(幸福里店)`, for signed parcels.
    pub station_name: Option<String>,
    /// Which rule decided (a fixed description, never record content).
    pub evidence: &'static str,
    /// The sign came after a delivery exception (Kuaidi100 302): weaker proof.
    pub weak_sign: bool,
}

impl Classification {
    /// The signer, when the outcome is a sign.
    pub const fn sign_kind(&self) -> Option<SignKind> {
        match self.outcome {
            DeliveryOutcome::Signed(kind) => Some(kind),
            DeliveryOutcome::NotDelivered(_) | DeliveryOutcome::InTransit => None,
        }
    }
}

/// Classifies one carrier sign record; see the module documentation for the precedence.
pub fn classify(record: &SignRecord<'_>) -> Classification {
    let text = record.text;
    let decided = sub_state_rule(record.kuaidi100_sub_state)
        .or_else(|| courier_rule(record.carrier, record.carrier_code))
        .map(|(says, evidence)| resolve(says, evidence, text))
        .or_else(|| keyword_rule(text))
        .or_else(|| top_state_rule(record.kuaidi100_state).map(|(says, evidence)| resolve(says, evidence, text)))
        .or_else(|| contains_any(text, GENERIC_SIGN_WORDS).then_some((SIGNED_UNKNOWN, EV_TEXT_SIGNED, false)));
    let (outcome, evidence, weak_sign) = decided.unwrap_or((DeliveryOutcome::InTransit, EV_NOTHING, false));
    let station_name = match outcome {
        DeliveryOutcome::Signed(_) => station_name(text),
        DeliveryOutcome::NotDelivered(_) | DeliveryOutcome::InTransit => None,
    };
    Classification { outcome, station_name, evidence, weak_sign }
}

const SIGNED_UNKNOWN: DeliveryOutcome = DeliveryOutcome::Signed(SignKind::Unknown);

/// What a code says, before the text is consulted.
#[derive(Debug, Clone, Copy)]
enum Says {
    /// Signed by `default`, unless the text names a signer that `text_may` allows.
    Signed {
        default: SignKind,
        text_may: TextMay,
        weak: bool,
    },
    NotDelivered(&'static str),
    InTransit,
}

/// Which signers the trace text may name in place of a code's default.
#[derive(Debug, Clone, Copy)]
enum TextMay {
    Nothing,
    AnyKind,
    OtherThanRecipient,
    LockerOrStation,
}

impl TextMay {
    const fn allows(self, kind: SignKind) -> bool {
        match self {
            Self::Nothing => false,
            Self::AnyKind => !matches!(kind, SignKind::Unknown),
            Self::OtherThanRecipient => kind.is_proxy(),
            Self::LockerOrStation => matches!(kind, SignKind::Locker | SignKind::ParcelStation),
        }
    }
}

const fn signed(default: SignKind, text_may: TextMay) -> Says {
    Says::Signed { default, text_may, weak: false }
}

const KUAIDI100_SUB_STATES: &[(&str, Says, &str)] = &[
    ("301", signed(Recipient, Nothing), "kuaidi100 sub-state 301 本人签收"),
    (
        "302",
        Says::Signed { default: Recipient, text_may: AnyKind, weak: true },
        "kuaidi100 sub-state 302 派件异常后签收",
    ),
    ("303", signed(ProxyPerson, OtherThanRecipient), "kuaidi100 sub-state 303 代签"),
    ("304", signed(ParcelStation, LockerOrStation), "kuaidi100 sub-state 304 投柜或站签收"),
    ("501", signed(ParcelStation, LockerOrStation), "kuaidi100 sub-state 501 投柜或驿站"),
    ("205", signed(ParcelStation, LockerOrStation), "kuaidi100 sub-state 205 柜或驿站超时未取"),
    ("201", Says::NotDelivered("timed out"), "kuaidi100 sub-state 201 超时未签收"),
    ("203", Says::NotDelivered("refused"), "kuaidi100 sub-state 203 拒收"),
    ("206", Says::NotDelivered("unreachable"), "kuaidi100 sub-state 206 无法联系"),
];

const KUAIDI100_STATES: &[(&str, Says, &str)] = &[
    ("3", signed(Unknown, AnyKind), "kuaidi100 state 3 签收"),
    ("4", Says::NotDelivered("returned"), "kuaidi100 state 4 退签"),
    ("6", Says::NotDelivered("returned"), "kuaidi100 state 6 退回"),
    ("14", Says::NotDelivered("refused"), "kuaidi100 state 14 拒签"),
    ("2", Says::NotDelivered("exception"), "kuaidi100 state 2 疑难"),
    ("0", Says::InTransit, "kuaidi100 state 0 在途"),
    ("1", Says::InTransit, "kuaidi100 state 1 揽收"),
    ("5", Says::InTransit, "kuaidi100 state 5 派件"),
    ("7", Says::InTransit, "kuaidi100 state 7 转投"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Courier {
    Shunfeng,
    Yunda,
    Zhongtong,
    Shentong,
    Best,
}

// Kuaidi100 company codes first, then the short names integrations tend to use.
const COURIER_NAMES: &[(&str, Courier)] = &[
    ("shunfeng", Courier::Shunfeng),
    ("sf", Courier::Shunfeng),
    ("顺丰", Courier::Shunfeng),
    ("yunda", Courier::Yunda),
    ("yd", Courier::Yunda),
    ("韵达", Courier::Yunda),
    ("zhongtong", Courier::Zhongtong),
    ("zto", Courier::Zhongtong),
    ("中通", Courier::Zhongtong),
    ("shentong", Courier::Shentong),
    ("sto", Courier::Shentong),
    ("申通", Courier::Shentong),
    ("huitongkuaidi", Courier::Best),
    ("baishiwuliu", Courier::Best),
    ("best", Courier::Best),
    ("百世", Courier::Best),
];

// Codes as the couriers' route APIs send them (SF opCode, Yunda/ZTO scan types, STO/Best scan
// names). A plain "signed" is the recipient by default: these couriers report station and
// proxy receipts with codes of their own, but the text may still name another signer.
const COURIER_CODES: &[(Courier, &str, Says, &str)] = &[
    (Courier::Shunfeng, "80", signed(Recipient, AnyKind), "SF 80 签收"),
    (Courier::Shunfeng, "607", signed(ProxyPerson, OtherThanRecipient), "SF 607 代理收件"),
    (Courier::Shunfeng, "130", signed(ParcelStation, LockerOrStation), "SF 130 到达顺丰店/站"),
    (Courier::Shunfeng, "70", Says::NotDelivered("delivery failed"), "SF 70 派送失败"),
    (Courier::Shunfeng, "648", Says::NotDelivered("returned"), "SF 648 退回/转寄"),
    (Courier::Shunfeng, "44", Says::InTransit, "SF 44 派送中"),
    (Courier::Shunfeng, "123", Says::InTransit, "SF 123 正送往顺丰店/站"),
    (Courier::Yunda, "INBOUND", signed(ParcelStation, LockerOrStation), "Yunda INBOUND 第三方代收入库"),
    (Courier::Yunda, "SIGNED", signed(Recipient, AnyKind), "Yunda SIGNED 已签收"),
    (Courier::Yunda, "SIGNFAIL", Says::NotDelivered("delivery failed"), "Yunda SIGNFAIL 签收失败"),
    (Courier::Yunda, "REJECTION", Says::NotDelivered("refused"), "Yunda REJECTION 拒收"),
    (Courier::Yunda, "RETURN", Says::NotDelivered("returned"), "Yunda RETURN 退回件"),
    (Courier::Yunda, "ISSUE", Says::NotDelivered("exception"), "Yunda ISSUE 问题件"),
    (Courier::Yunda, "SENT", Says::InTransit, "Yunda SENT 派件中"),
    (Courier::Zhongtong, "ARRIVAL", signed(ParcelStation, LockerOrStation), "ZTO ARRIVAL 驿站代收"),
    (Courier::Zhongtong, "第三方签收", signed(ProxyPerson, OtherThanRecipient), "ZTO 第三方签收"),
    // The recipient collected it from the pickup point: the strongest courier evidence there is.
    (Courier::Zhongtong, "SIGNED", signed(Recipient, Nothing), "ZTO SIGNED 收件人已从代理点签收"),
    (Courier::Zhongtong, "签收", signed(Recipient, AnyKind), "ZTO 签收"),
    (Courier::Zhongtong, "退件", Says::NotDelivered("returned"), "ZTO 退件"),
    (Courier::Zhongtong, "退件签收", Says::NotDelivered("returned"), "ZTO 退件签收"),
    (Courier::Zhongtong, "问题件", Says::NotDelivered("exception"), "ZTO 问题件"),
    (Courier::Zhongtong, "派件", Says::InTransit, "ZTO 派件"),
    (Courier::Shentong, "驿站代收", signed(ParcelStation, LockerOrStation), "STO 驿站代收"),
    (Courier::Shentong, "客户签收", signed(Recipient, AnyKind), "STO 客户签收"),
    (Courier::Shentong, "派件", Says::InTransit, "STO 派件"),
    (Courier::Best, "代理点签收", signed(ParcelStation, LockerOrStation), "Best 代理点签收"),
    (Courier::Best, "百世邻里", signed(ParcelStation, LockerOrStation), "Best 百世邻里"),
    (Courier::Best, "入库/入柜", signed(ParcelStation, LockerOrStation), "Best 入库/入柜"),
    (Courier::Best, "用户提货", signed(Recipient, Nothing), "Best 用户提货"),
    (Courier::Best, "签收", signed(Recipient, AnyKind), "Best 签收"),
    (Courier::Best, "特殊签收", signed(Unknown, AnyKind), "Best 特殊签收"),
    (Courier::Best, "客户拒收", Says::NotDelivered("refused"), "Best 客户拒收"),
    (Courier::Best, "退件", Says::NotDelivered("returned"), "Best 退件"),
    (Courier::Best, "派件", Says::InTransit, "Best 派件"),
    (Courier::Best, "二次派件", Says::InTransit, "Best 二次派件"),
];

const EV_TEXT_LOCKER: &str = "trace text: locker (快递柜/丰巢/智能柜)";
const EV_TEXT_STATION: &str = "trace text: parcel station (驿站/代收点/快递超市)";
const EV_TEXT_PROXY: &str = "trace text: proxy person (门卫/物业/前台/家人)";
const EV_TEXT_RECIPIENT: &str = "trace text: 本人签收";
const EV_TEXT_SIGNED: &str = "trace text: signed, signer not named";
const EV_NOTHING: &str = "no sign or failure evidence";

const LOCKER_WORDS: &[&str] = &["丰巢", "快递柜", "快件柜", "智能柜", "自提柜", "速递易", "投柜", "入柜"];
const STATION_WORDS: &[&str] =
    &["驿站", "代收点", "快递超市", "自提点", "代理点", "兔喜", "百世邻里", "第三方代收", "凭取货码", "凭取件码"];
const PROXY_PERSON_WORDS: &[&str] = &[
    "门卫",
    "物业",
    "前台",
    "保安",
    "传达室",
    "收发室",
    "家人",
    "家属",
    "同事",
    "邻居",
    "朋友",
    "他人",
    "代签",
    "代收",
];
const RECIPIENT_WORDS: &[&str] =
    &["本人签收", "签收人是本人", "签收人:本人", "签收人：本人", "签收人为本人", "本人已签收", "本人取件", "本人领取"];
const NOT_DELIVERED_WORDS: &[(&str, &str, &str)] = &[
    ("拒收", "refused", "trace text: 拒收"),
    ("拒签", "refused", "trace text: 拒签"),
    ("退回", "returned", "trace text: 退回"),
    ("退签", "returned", "trace text: 退签"),
    ("退件", "returned", "trace text: 退件"),
    ("派送失败", "delivery failed", "trace text: 派送失败"),
    ("派件失败", "delivery failed", "trace text: 派送失败"),
    ("派送不成功", "delivery failed", "trace text: 派送失败"),
    ("派件不成功", "delivery failed", "trace text: 派送失败"),
    ("无法派送", "delivery failed", "trace text: 派送失败"),
    ("无法联系", "unreachable", "trace text: 无法联系"),
    ("联系不上", "unreachable", "trace text: 无法联系"),
    ("问题件", "exception", "trace text: 问题件"),
    ("疑难件", "exception", "trace text: 问题件"),
];
// A bare "signed" with no signer named.
const GENERIC_SIGN_WORDS: &[&str] = &["已签收", "签收人", "被签收", "妥投"];
// Words of a parcel still moving: "正发往菜鸟驿站" is not a station receipt.
const TRANSIT_WORDS: &[&str] =
    &["派送中", "正在派送", "派件中", "正在派件", "为您派件", "运输中", "发往", "送往", "已发出", "准备签收", "派送至"];
// Words that a sign did happen, which outweigh the transit words on the same line.
const SIGNED_WORDS: &[&str] = &[
    "已签收",
    "签收人",
    "被签收",
    "已代收",
    "代签",
    "取件码",
    "取货码",
    "提货码",
    "入柜",
    "已放入",
    "已存放",
    "已存入",
    "投柜",
    "妥投",
];

fn sub_state_rule(sub_state: Option<&str>) -> Option<(Says, &'static str)> {
    let code = sub_state?.trim();
    KUAIDI100_SUB_STATES.iter().find(|(c, _, _)| *c == code).map(|&(_, says, ev)| (says, ev))
}

fn top_state_rule(state: Option<&str>) -> Option<(Says, &'static str)> {
    let code = state?.trim();
    KUAIDI100_STATES.iter().find(|(c, _, _)| *c == code).map(|&(_, says, ev)| (says, ev))
}

fn courier_rule(carrier: Option<&str>, code: Option<&str>) -> Option<(Says, &'static str)> {
    let name = carrier?.trim();
    let courier = COURIER_NAMES.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, c)| c)?;
    let code = code?.trim();
    COURIER_CODES
        .iter()
        .find(|(c, k, _, _)| *c == courier && k.eq_ignore_ascii_case(code))
        .map(|&(_, _, says, ev)| (says, ev))
}

/// Turns what a code says into an outcome, letting the text name the signer where allowed.
fn resolve(says: Says, evidence: &'static str, text: &str) -> (DeliveryOutcome, &'static str, bool) {
    match says {
        Says::Signed { default, text_may, weak } => match text_kind(text, false) {
            Some((kind, text_evidence)) if kind != default && text_may.allows(kind) => {
                (DeliveryOutcome::Signed(kind), text_evidence, weak)
            }
            _ => (DeliveryOutcome::Signed(default), evidence, weak),
        },
        Says::NotDelivered(why) => (DeliveryOutcome::NotDelivered(why), evidence, false),
        Says::InTransit => (DeliveryOutcome::InTransit, evidence, false),
    }
}

/// The keyword level: "not delivered" words, then the signer words.
fn keyword_rule(text: &str) -> Option<(DeliveryOutcome, &'static str, bool)> {
    if !text.contains("已签收")
        && let Some(&(_, why, ev)) = NOT_DELIVERED_WORDS.iter().find(|(word, _, _)| text.contains(word))
    {
        return Some((DeliveryOutcome::NotDelivered(why), ev, false));
    }
    text_kind(text, true).map(|(kind, ev)| (DeliveryOutcome::Signed(kind), ev, false))
}

/// The signer the text names, if any. With `guard`, a line that is still on its way names none.
fn text_kind(text: &str, guard: bool) -> Option<(SignKind, &'static str)> {
    let proxy = if guard && contains_any(text, TRANSIT_WORDS) && !contains_any(text, SIGNED_WORDS) {
        None
    } else if contains_any(text, LOCKER_WORDS) {
        Some((Locker, EV_TEXT_LOCKER))
    } else if contains_any(text, STATION_WORDS) {
        Some((ParcelStation, EV_TEXT_STATION))
    } else if contains_any(text, PROXY_PERSON_WORDS) {
        Some((ProxyPerson, EV_TEXT_PROXY))
    } else {
        None
    };
    proxy.or_else(|| says_recipient(text).then_some((Recipient, EV_TEXT_RECIPIENT)))
}

fn contains_any(text: &str, words: &[&str]) -> bool {
    words.iter().any(|word| text.contains(word))
}

// "如非本人签收请联系…" is boilerplate on many sign lines, so a negated 本人 does not count.
fn says_recipient(text: &str) -> bool {
    RECIPIENT_WORDS.iter().any(|word| {
        text.match_indices(word).any(|(at, _)| {
            let before = &text[..at];
            !(before.ends_with('非') || before.ends_with("不是"))
        })
    })
}

// Longest first, so that "菜鸟驿站" is preferred to "驿站".
const STATION_BRANDS: &[&str] = &[
    "丰巢智能柜",
    "丰巢快递柜",
    "菜鸟驿站",
    "妈妈驿站",
    "快递驿站",
    "兔喜生活",
    "百世邻里",
    "快递超市",
    "丰巢柜",
    "智能柜",
    "快递柜",
    "快件柜",
    "自提柜",
    "速递易",
    "代收点",
    "自提点",
    "代理点",
    "顺丰店",
    "驿站",
    "丰巢",
    "兔喜",
];
// Verbs and particles that end the words in front of a brand: "快件已到达幸福里菜鸟驿站" keeps
// "幸福里菜鸟驿站".
const NAME_STOPS: &[&str] = &[
    "联系", "到达", "送达", "放入", "存入", "存放", "放至", "送至", "投至", "放在", "由", "被", "在", "至", "于", "到",
    "的", "已", "请", "是", "为", "经", "从", "入", "件", "您",
];
const MAX_PREFIX_CHARS: usize = 8;
const MAX_BRANCH_CHARS: usize = 20;

/// The station or locker named in the text: an optional qualifier, the brand, an optional
/// bracketed branch. Phone numbers and pickup codes are never part of it.
fn station_name(text: &str) -> Option<String> {
    let (at, brand) = STATION_BRANDS.iter().find_map(|brand| text.find(brand).map(|at| (at, *brand)))?;
    let before = &text[..at];
    let run_start = before
        .char_indices()
        .rev()
        .take_while(|&(_, c)| is_ideograph(c))
        .take(MAX_PREFIX_CHARS)
        .last()
        .map_or(at, |(i, _)| i);
    let run = &before[run_start..];
    let prefix = NAME_STOPS
        .iter()
        .filter_map(|stop| run.rfind(stop).map(|i| i + stop.len()))
        .max()
        .map_or(run, |cut| &run[cut..]);
    let after = &text[at + brand.len()..];
    let mut name = String::with_capacity(prefix.len() + brand.len() + 32);
    name.push_str(prefix);
    name.push_str(brand);
    if let Some(branch) = branch(after) {
        name.push_str(branch);
    }
    Some(name)
}

/// A bracketed branch right after the brand, e.g. `(幸福里店)`, brackets included.
fn branch(after: &str) -> Option<&str> {
    let open = after.chars().next()?;
    let close = match open {
        '(' => ')',
        '（' => '）',
        '【' => '】',
        '[' => ']',
        _ => return None,
    };
    let end = after.find(close)?;
    let inner = &after[open.len_utf8()..end];
    let digits_run = inner.chars().fold((0usize, 0usize), |(run, max), c| {
        let run = if c.is_ascii_digit() { run + 1 } else { 0 };
        (run, max.max(run))
    });
    let plausible = !inner.is_empty()
        && inner.chars().count() <= MAX_BRANCH_CHARS
        && digits_run.1 < 5
        && !contains_any(inner, &["电话", "手机", "取件码", "取货码", "联系"]);
    plausible.then(|| &after[..end + close.len_utf8()])
}

const fn is_ideograph(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}')
}

/// A point on Earth in WGS-84 degrees.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Latitude, −90..=90.
    pub lat: f64,
    /// Longitude, −180..=180.
    pub lng: f64,
}

impl GeoPoint {
    /// Whether the point is usable: finite, in range, and not (0, 0), which GPS and geocoding
    /// clients send when they have no fix.
    pub fn is_valid(self) -> bool {
        self.lat.is_finite()
            && self.lng.is_finite()
            && (-90.0..=90.0).contains(&self.lat)
            && (-180.0..=180.0).contains(&self.lng)
            && !(self.lat == 0.0 && self.lng == 0.0)
    }
}

/// Mean Earth radius (IUGG), metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres (haversine, mean Earth radius). Within 0.5 % of the
/// ellipsoidal distance; NaN when a coordinate is not finite (check [`GeoPoint::is_valid`]).
pub fn haversine_m(a: GeoPoint, b: GeoPoint) -> f64 {
    let (lat1, lat2) = (a.lat.to_radians(), b.lat.to_radians());
    let half_dlat = (lat2 - lat1) / 2.0;
    let half_dlng = (b.lng - a.lng).to_radians() / 2.0;
    let h = half_dlat.sin().powi(2) + lat1.cos() * lat2.cos() * half_dlng.sin().powi(2);
    // Rounding can push h a hair above 1 for antipodal points.
    2.0 * EARTH_RADIUS_M * h.clamp(0.0, 1.0).sqrt().asin()
}

/// What the customer's mini-program reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AppSignalKind {
    /// The mini-program was opened.
    AppOpened,
    /// A location fix.
    GpsPing,
    /// The order's logistics page was viewed.
    LogisticsViewed,
    /// The customer contacted support. Neutral: it may be a complaint as easily as a thank-you.
    Consultation,
    /// The customer confirmed receipt (一键核实 / 确认收货).
    SignConfirmed,
    /// The customer said the parcel was not received.
    NotReceived,
}

/// One mini-program signal of the order's customer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AppSignal {
    /// What happened.
    pub kind: AppSignalKind,
    /// When.
    pub at: DateTime<Utc>,
    /// Where the phone was, if the customer allowed location.
    pub location: Option<GeoPoint>,
    /// The fix's accuracy radius in metres, as the phone reported it.
    pub accuracy_m: Option<f64>,
}

impl AppSignal {
    /// A usable location: a valid point with a finite, non-negative accuracy (or none given).
    fn usable_location(&self) -> Option<GeoPoint> {
        let point = self.location.filter(|p| p.is_valid())?;
        match self.accuracy_m {
            Some(acc) if !(acc.is_finite() && acc >= 0.0) => None,
            _ => Some(point),
        }
    }
}

/// Everything [`assess`] looks at for one sign.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrustInputs<'a> {
    /// Who signed, from [`classify`].
    pub kind: SignKind,
    /// The sign came after a delivery exception (Kuaidi100 302).
    pub weak_sign: bool,
    /// When the carrier says it was signed.
    pub signed_at: DateTime<Utc>,
    /// Where the courier scanned the sign.
    pub sign_location: Option<GeoPoint>,
    /// The geocoded delivery address.
    pub delivery_location: Option<GeoPoint>,
    /// The customer's mini-program signals around the sign (any window; [`assess`] filters).
    pub app_signals: &'a [AppSignal],
    /// Proxy receipts at the delivery address this month (Asia/Shanghai), as the caller counted
    /// them; [`assess`] does not add the current sign.
    pub proxy_receipts_this_month: u32,
}

/// The rules and weights of the trust score: the one place they live.
///
/// | rule | default points | why |
/// |---|---|---|
/// | sign kind: recipient | +95 | the carrier says 本人签收; alone it clears the threshold (92) with a 3-point margin that a weak sign, a far scan or a proxy-heavy address uses up, because carriers are known to label station receipts 本人签收 |
/// | sign kind: unknown | +70 | signed, signer not named: could be either |
/// | sign kind: proxy person | +60 | a doorman or family member at the address holds it; usually reaches the customer, not proof |
/// | sign kind: locker | +55 | locked in a box, code sent to the customer, who still has to fetch it |
/// | sign kind: parcel station | +50 | the "signed but sitting in a station" case; the customer still has to fetch it |
/// | weak sign (302) | −10 | signed right after a delivery exception: the pattern of a sign made to stop an overdue clock |
/// | distance ≤ 500 m | +5 | the courier was at the address when signing |
/// | distance > 500 m | −30 | the sign did not happen at the address; drops even a recipient sign (65) below the threshold. Waived (0) when a customer GPS fix near the address in the window clears it |
/// | distance unknown | 0 | a missing point is not evidence of a far sign |
/// | app opened after sign | +10 | the customer was active after the sign and did not complain; weak, opening is not receiving |
/// | GPS near the address after sign | +45 | the customer's phone was within 500 m of the address in the 2 h after the sign: the reference's proof; lifts a station (50 → 95) or locker sign over the threshold |
/// | proxy history ≥ 3 this month | −15 | this address's parcels habitually go to proxies; suggest a dedicated courier |
/// | customer confirmed | score → 100 | the customer's word decides |
/// | customer not received | score → 0 | the customer's word decides |
///
/// Only signals inside `[signed_at, signed_at + app_window]` count. When the customer both
/// confirmed and said not received in the window, the later answer decides.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustRules {
    /// A sign is trusted at this score or above (the reference's 物流信息可信度 ≥ 92).
    pub threshold: u8,
    /// A sign scanned farther than this from the address is suspect (metres).
    pub suspect_distance_m: f64,
    /// How long after the sign app signals count.
    #[serde(with = "seconds")]
    pub app_window: Duration,
    /// A GPS fix whose whole accuracy circle is within this of the address counts as proof (metres).
    pub near_m: f64,
    /// Proxy receipts this month from which a dedicated courier is suggested.
    pub dedicated_courier_after: u32,
    /// Points for a recipient sign.
    pub recipient_points: i16,
    /// Points for a sign whose signer is unknown.
    pub unknown_points: i16,
    /// Points for a sign by a proxy person.
    pub proxy_person_points: i16,
    /// Points for a locker sign.
    pub locker_points: i16,
    /// Points for a parcel-station sign.
    pub station_points: i16,
    /// Points for a weak sign (negative).
    pub weak_sign_points: i16,
    /// Points for a sign scanned within `suspect_distance_m`.
    pub near_sign_points: i16,
    /// Points for a sign scanned farther than `suspect_distance_m` (negative).
    pub far_sign_points: i16,
    /// Points when either location is missing.
    pub unknown_distance_points: i16,
    /// Points for an app open (or logistics view) in the window.
    pub app_opened_points: i16,
    /// Points for a GPS fix near the address in the window.
    pub gps_near_points: i16,
    /// Points for an address with `dedicated_courier_after` or more proxy receipts (negative).
    pub proxy_history_points: i16,
    /// The score a customer confirmation sets.
    pub confirmed_score: u8,
    /// The score a customer "not received" sets.
    pub not_received_score: u8,
}

impl Default for TrustRules {
    fn default() -> Self {
        Self {
            threshold: 92,
            suspect_distance_m: 500.0,
            app_window: Duration::hours(2),
            near_m: 500.0,
            dedicated_courier_after: 3,
            recipient_points: 95,
            unknown_points: 70,
            proxy_person_points: 60,
            locker_points: 55,
            station_points: 50,
            weak_sign_points: -10,
            near_sign_points: 5,
            far_sign_points: -30,
            unknown_distance_points: 0,
            app_opened_points: 10,
            gps_near_points: 45,
            proxy_history_points: -15,
            confirmed_score: 100,
            not_received_score: 0,
        }
    }
}

impl TrustRules {
    /// The points of a sign kind.
    pub const fn kind_points(&self, kind: SignKind) -> i16 {
        match kind {
            SignKind::Recipient => self.recipient_points,
            SignKind::ProxyPerson => self.proxy_person_points,
            SignKind::ParcelStation => self.station_points,
            SignKind::Locker => self.locker_points,
            SignKind::Unknown => self.unknown_points,
        }
    }
}

mod seconds {
    use chrono::Duration;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_i64(d.num_seconds())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let secs = i64::deserialize(d)?;
        Duration::try_seconds(secs).ok_or_else(|| D::Error::custom("duration out of range"))
    }
}

/// The rules a trust score can cite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum TrustRule {
    /// Who signed.
    SignKind,
    /// The sign came after a delivery exception.
    WeakSign,
    /// Distance between the sign scan and the address.
    Distance,
    /// A location is missing, so the distance is unknown.
    DistanceUnknown,
    /// The mini-program was opened after the sign.
    AppOpenedAfterSign,
    /// A GPS fix near the address after the sign.
    GpsNearAddress,
    /// The customer confirmed receipt.
    CustomerConfirmed,
    /// The customer said not received.
    CustomerNotReceived,
    /// The address's proxy receipts this month.
    AddressProxyHistory,
}

/// One rule's contribution to a score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Which rule.
    pub rule: TrustRule,
    /// Its points (the score is their sum, clamped to 0..=100).
    pub points: i16,
    /// What the customer or seller reads; no personal data.
    pub detail: String,
}

/// The trust score of one sign, with its reasons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrustAssessment {
    /// 0..=100.
    pub score: u8,
    /// `score >= threshold`.
    pub trusted: bool,
    /// Every rule that applied, in the order applied.
    pub reasons: Vec<Reason>,
    /// Sign scan to address, metres, when both are known.
    pub distance_m: Option<f64>,
    /// The sign scan was farther than the suspect distance (a fact, even when a GPS fix cleared it).
    pub suspect_distance: bool,
    /// The address has enough proxy receipts this month to need a dedicated courier.
    pub dedicated_courier_suggested: bool,
}

/// Scores one sign; see [`TrustRules`] for the table.
pub fn assess(inputs: &TrustInputs<'_>, rules: &TrustRules) -> TrustAssessment {
    let mut tally = Tally::default();
    tally.add(TrustRule::SignKind, rules.kind_points(inputs.kind), kind_detail(inputs.kind));
    if inputs.weak_sign {
        tally.add(TrustRule::WeakSign, rules.weak_sign_points, "派件异常后签收，证据较弱");
    }

    let seen = Seen::scan(inputs, rules);
    let distance_m = match (inputs.sign_location, inputs.delivery_location) {
        (Some(a), Some(b)) if a.is_valid() && b.is_valid() => Some(haversine_m(a, b)),
        _ => None,
    };
    let suspect_distance = distance_m.is_some_and(|d| d > rules.suspect_distance_m);
    let limit = rules.suspect_distance_m;
    match distance_m {
        Some(d) if suspect_distance && seen.gps_near.is_some() => tally.add(
            TrustRule::Distance,
            0,
            format!("签收位置距收货地址约 {d:.0} 米，超过 {limit:.0} 米；收件人定位已在地址附近，不扣分"),
        ),
        Some(d) if suspect_distance => tally.add(
            TrustRule::Distance,
            rules.far_sign_points,
            format!("签收位置距收货地址约 {d:.0} 米，超过 {limit:.0} 米，可疑"),
        ),
        Some(d) => tally.add(
            TrustRule::Distance,
            rules.near_sign_points,
            format!("签收位置距收货地址约 {d:.0} 米，在 {limit:.0} 米内"),
        ),
        None => tally.add(
            TrustRule::DistanceUnknown,
            rules.unknown_distance_points,
            "签收位置或收货地址坐标缺失，距离未知（不视为可疑）",
        ),
    }
    if let Some(minutes) = seen.app_opened {
        tally.add(
            TrustRule::AppOpenedAfterSign,
            rules.app_opened_points,
            format!("签收后 {minutes} 分钟收件人打开了小程序"),
        );
    }
    if let Some((minutes, d)) = seen.gps_near {
        let near = rules.near_m;
        tally.add(
            TrustRule::GpsNearAddress,
            rules.gps_near_points,
            format!("签收后 {minutes} 分钟收件人定位距收货地址约 {d:.0} 米，在 {near:.0} 米内"),
        );
    }
    let dedicated_courier_suggested = inputs.proxy_receipts_this_month >= rules.dedicated_courier_after;
    if dedicated_courier_suggested {
        let (count, after) = (inputs.proxy_receipts_this_month, rules.dedicated_courier_after);
        tally.add(
            TrustRule::AddressProxyHistory,
            rules.proxy_history_points,
            format!("该地址本月已有 {count} 次代收（≥ {after} 次），建议安排专属配送员"),
        );
    }

    // The customer's own answer decides; when there are both, the later one (a tie counts as
    // "not received", the safer side). The deciding reason carries the points that get there.
    match (seen.confirmed, seen.not_received) {
        (Some(yes), Some(no)) if yes > no => {
            tally.add(TrustRule::CustomerNotReceived, 0, "收件人曾反馈未收到，之后已确认收货");
            tally.settle(TrustRule::CustomerConfirmed, rules.confirmed_score, "收件人确认已收货");
        }
        (Some(_), Some(_)) => {
            tally.add(TrustRule::CustomerConfirmed, 0, "收件人曾确认收货，之后反馈未收到");
            tally.settle(TrustRule::CustomerNotReceived, rules.not_received_score, "收件人反馈未收到");
        }
        (Some(_), None) => tally.settle(TrustRule::CustomerConfirmed, rules.confirmed_score, "收件人确认已收货"),
        (None, Some(_)) => tally.settle(TrustRule::CustomerNotReceived, rules.not_received_score, "收件人反馈未收到"),
        (None, None) => {}
    }

    let score = tally.score();
    TrustAssessment {
        score,
        trusted: score >= rules.threshold,
        reasons: tally.reasons,
        distance_m,
        suspect_distance,
        dedicated_courier_suggested,
    }
}

/// The running sum of points and the reasons behind it.
#[derive(Debug, Default)]
struct Tally {
    total: i32,
    reasons: Vec<Reason>,
}

impl Tally {
    fn add(&mut self, rule: TrustRule, points: i16, detail: impl Into<String>) {
        self.total += i32::from(points);
        self.reasons.push(Reason { rule, points, detail: detail.into() });
    }

    /// Adds the points that bring the score to `target`: none when the clamped score is
    /// already there, else exactly the difference to the running sum.
    fn settle(&mut self, rule: TrustRule, target: u8, detail: &str) {
        let target = target.min(100);
        let needed = if self.score() == target { 0 } else { i32::from(target) - self.total };
        let points = i16::try_from(needed).unwrap_or(if needed < 0 { i16::MIN } else { i16::MAX });
        self.add(rule, points, detail);
    }

    fn score(&self) -> u8 {
        clamp_score(self.total)
    }
}

fn clamp_score(total: i32) -> u8 {
    u8::try_from(total.clamp(0, 100)).unwrap_or(0)
}

const fn kind_detail(kind: SignKind) -> &'static str {
    match kind {
        SignKind::Recipient => "本人签收",
        SignKind::ProxyPerson => "他人代收（门卫、物业、前台或家人等）",
        SignKind::ParcelStation => "驿站或代收点代收，收件人尚需自取",
        SignKind::Locker => "投递快递柜，收件人尚需自取",
        SignKind::Unknown => "已签收，签收人不明",
    }
}

/// What the signals in the window show.
#[derive(Debug, Default)]
struct Seen {
    /// Minutes after the sign of the first app open or logistics view.
    app_opened: Option<i64>,
    /// Minutes after the sign and distance of the first usable fix near the address.
    gps_near: Option<(i64, f64)>,
    /// Time of the last confirmation.
    confirmed: Option<DateTime<Utc>>,
    /// Time of the last "not received".
    not_received: Option<DateTime<Utc>>,
}

impl Seen {
    fn scan(inputs: &TrustInputs<'_>, rules: &TrustRules) -> Self {
        let start = inputs.signed_at;
        let end = start.checked_add_signed(rules.app_window).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let address = inputs.delivery_location.filter(|p| p.is_valid());
        let mut seen = Self::default();
        // Signals may arrive in any order; keep the first open and fix, the last answers.
        for signal in inputs.app_signals.iter().filter(|s| s.at >= start && s.at <= end) {
            let minutes = (signal.at - start).num_minutes();
            match signal.kind {
                AppSignalKind::AppOpened | AppSignalKind::LogisticsViewed => {
                    seen.app_opened = Some(seen.app_opened.map_or(minutes, |m| m.min(minutes)));
                }
                AppSignalKind::SignConfirmed => seen.confirmed = seen.confirmed.max(Some(signal.at)),
                AppSignalKind::NotReceived => seen.not_received = seen.not_received.max(Some(signal.at)),
                AppSignalKind::GpsPing | AppSignalKind::Consultation => {}
            }
            // A fix is a fix whichever signal carried it, except a "not received" report.
            if signal.kind != AppSignalKind::NotReceived
                && seen.gps_near.is_none_or(|(m, _)| minutes < m)
                && let (Some(here), Some(home)) = (signal.usable_location(), address)
            {
                let d = haversine_m(here, home);
                // The whole accuracy circle has to be near, not just its centre.
                if d + signal.accuracy_m.unwrap_or(0.0) <= rules.near_m {
                    seen.gps_near = Some((minutes, d));
                }
            }
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    fn record<'a>(
        state: Option<&'a str>,
        sub: Option<&'a str>,
        carrier: Option<&'a str>,
        code: Option<&'a str>,
        text: &'a str,
    ) -> SignRecord<'a> {
        SignRecord { kuaidi100_state: state, kuaidi100_sub_state: sub, carrier, carrier_code: code, text }
    }

    const STATION_LINE: &str = "【杭州市】已签收，签收人凭取货码签收。如有疑问请联系：菜鸟驿站(幸福里店)";
    const SIGNED: fn(SignKind) -> DeliveryOutcome = DeliveryOutcome::Signed;

    #[test]
    fn real_shaped_trace_lines() {
        let cases: &[(&str, SignRecord<'_>, DeliveryOutcome, Option<&str>)] = &[
            // Kuaidi100 pushes without sub-state: the text names the signer.
            (
                "k100 station",
                record(Some("3"), None, None, None, STATION_LINE),
                SIGNED(ParcelStation),
                Some("菜鸟驿站(幸福里店)"),
            ),
            (
                "k100 locker",
                record(Some("3"), None, None, None, "快件已被丰巢智能柜签收"),
                SIGNED(Locker),
                Some("丰巢智能柜"),
            ),
            ("k100 doorman", record(Some("3"), None, None, None, "已签收，签收人是门卫"), SIGNED(ProxyPerson), None),
            ("k100 recipient", record(Some("3"), None, None, None, "已签收，签收人是本人"), SIGNED(Recipient), None),
            ("k100 plain sign", record(Some("3"), None, None, None, "您的快件已签收"), SIGNED(Unknown), None),
            (
                "k100 refused",
                record(Some("14"), None, None, None, "收件人拒收"),
                DeliveryOutcome::NotDelivered("refused"),
                None,
            ),
            (
                "text refused",
                record(None, None, None, None, "收件人拒收"),
                DeliveryOutcome::NotDelivered("refused"),
                None,
            ),
            (
                "k100 returned",
                record(Some("6"), None, None, None, "快件已退回寄件人"),
                DeliveryOutcome::NotDelivered("returned"),
                None,
            ),
            (
                "k100 exception",
                record(Some("2"), None, None, None, "快件滞留"),
                DeliveryOutcome::NotDelivered("exception"),
                None,
            ),
            (
                "k100 delivering",
                record(Some("5"), None, None, None, "【杭州市】快递员正在为您派件"),
                DeliveryOutcome::InTransit,
                None,
            ),
            (
                "k100 501 into a locker",
                record(Some("5"), Some("501"), None, None, "快件已送达【丰巢智能柜】，请凭取件码取件"),
                SIGNED(Locker),
                Some("丰巢智能柜"),
            ),
            (
                "k100 304 station",
                record(Some("3"), Some("304"), None, None, "您的快件已存放至中通快递超市（文一路店），请及时领取"),
                SIGNED(ParcelStation),
                Some("中通快递超市（文一路店）"),
            ),
            (
                "station by name only",
                record(None, None, None, None, "快件已到达幸福里菜鸟驿站，请凭取件码取件"),
                SIGNED(ParcelStation),
                Some("幸福里菜鸟驿站"),
            ),
            // SF route codes.
            (
                "SF 80",
                record(None, None, Some("shunfeng"), Some("80"), "已签收,感谢使用顺丰,期待再次为您服务"),
                SIGNED(Recipient),
                None,
            ),
            (
                "SF 80 front desk",
                record(None, None, Some("shunfeng"), Some("80"), "已签收，签收人是：前台"),
                SIGNED(ProxyPerson),
                None,
            ),
            ("SF 607", record(None, None, Some("shunfeng"), Some("607"), "代理收件"), SIGNED(ProxyPerson), None),
            (
                "SF 130",
                record(None, None, Some("shunfeng"), Some("130"), "快件到达 【杭州幸福里顺丰店】"),
                SIGNED(ParcelStation),
                Some("杭州幸福里顺丰店"),
            ),
            (
                "SF 70",
                record(None, None, Some("shunfeng"), Some("70"), "由于收件人不在，派件不成功"),
                DeliveryOutcome::NotDelivered("delivery failed"),
                None,
            ),
            (
                "SF 44 delivering",
                record(None, None, Some("shunfeng"), Some("44"), "正在派送途中,请您准备签收"),
                DeliveryOutcome::InTransit,
                None,
            ),
            // Other couriers.
            (
                "Yunda INBOUND",
                record(None, None, Some("yunda"), Some("INBOUND"), "您的快件已被【幸福里快递超市】代收"),
                SIGNED(ParcelStation),
                Some("幸福里快递超市"),
            ),
            (
                "ZTO station",
                record(None, None, Some("zhongtong"), Some("ARRIVAL"), "快件已到达驿站"),
                SIGNED(ParcelStation),
                Some("驿站"),
            ),
            (
                "ZTO signed with station text",
                record(None, None, Some("zhongtong"), Some("签收"), STATION_LINE),
                SIGNED(ParcelStation),
                Some("菜鸟驿站(幸福里店)"),
            ),
            (
                "STO station",
                record(None, None, Some("shentong"), Some("驿站代收"), "已签收"),
                SIGNED(ParcelStation),
                None,
            ),
            (
                "Best agent point",
                record(None, None, Some("huitongkuaidi"), Some("代理点签收"), "已签收"),
                SIGNED(ParcelStation),
                None,
            ),
            (
                "Best customer pickup",
                record(None, None, Some("huitongkuaidi"), Some("用户提货"), "用户已提货"),
                SIGNED(Recipient),
                None,
            ),
            ("nothing at all", record(None, None, None, None, ""), DeliveryOutcome::InTransit, None),
        ];
        for (name, rec, outcome, station) in cases {
            let got = classify(rec);
            assert_eq!(got.outcome, *outcome, "{name}: {}", got.evidence);
            assert_eq!(got.station_name.as_deref(), *station, "{name}");
        }
    }

    #[test]
    fn kuaidi100_sub_states() {
        let cases: &[(&str, &str, DeliveryOutcome, bool)] = &[
            ("301", "已签收", SIGNED(Recipient), false),
            // 301 says 本人 outright; the distance and app rules catch a mislabel.
            ("301", STATION_LINE, SIGNED(Recipient), false),
            ("302", "已签收", SIGNED(Recipient), true),
            ("303", "已签收", SIGNED(ProxyPerson), false),
            ("303", "已签收，签收人是本人", SIGNED(ProxyPerson), false),
            ("303", STATION_LINE, SIGNED(ParcelStation), false),
            ("304", "已签收", SIGNED(ParcelStation), false),
            ("304", "已签收，快件已放入丰巢", SIGNED(Locker), false),
            ("304", "已签收，签收人是门卫", SIGNED(ParcelStation), false),
            ("501", "快件已放入驿站", SIGNED(ParcelStation), false),
            ("205", "快件在快递柜超时未取", SIGNED(Locker), false),
            ("201", "已签收", DeliveryOutcome::NotDelivered("timed out"), false),
            ("203", "已签收", DeliveryOutcome::NotDelivered("refused"), false),
            ("206", "已签收", DeliveryOutcome::NotDelivered("unreachable"), false),
        ];
        for (sub, text, outcome, weak) in cases {
            let got = classify(&record(Some("3"), Some(sub), None, None, text));
            assert_eq!((got.outcome, got.weak_sign), (*outcome, *weak), "{sub} {text}: {}", got.evidence);
        }
    }

    #[test]
    fn precedence_sub_state_then_courier_code_then_keywords_then_top_state() {
        // Sub-state beats courier code.
        let got = classify(&record(Some("3"), Some("203"), Some("shunfeng"), Some("80"), "已签收"));
        assert_eq!(got.outcome, DeliveryOutcome::NotDelivered("refused"));
        assert_eq!(got.evidence, "kuaidi100 sub-state 203 拒收");
        // An unknown sub-state falls through to the courier code.
        let got = classify(&record(Some("3"), Some("999"), Some("shunfeng"), Some("607"), "代理收件"));
        assert_eq!((got.outcome, got.evidence), (SIGNED(ProxyPerson), "SF 607 代理收件"));
        // Courier code beats keywords.
        let got = classify(&record(None, None, Some("shunfeng"), Some("70"), "派往菜鸟驿站不成功"));
        assert_eq!(got.outcome, DeliveryOutcome::NotDelivered("delivery failed"));
        // Keywords beat the top state.
        let got = classify(&record(Some("5"), None, None, None, "快件已放入丰巢智能柜，请凭取件码取件"));
        assert_eq!((got.outcome, got.evidence), (SIGNED(Locker), EV_TEXT_LOCKER));
        let got = classify(&record(Some("3"), None, None, None, "已签收，签收人是门卫"));
        assert_eq!((got.outcome, got.evidence), (SIGNED(ProxyPerson), EV_TEXT_PROXY));
        // The top state beats a bare sign phrase: 退签 is the sender signing for the return.
        let got = classify(&record(Some("4"), None, None, None, "快件已被发件人签收"));
        assert_eq!(got.outcome, DeliveryOutcome::NotDelivered("returned"));
        // An unknown carrier's code is ignored, not guessed.
        let got = classify(&record(Some("3"), None, Some("nowhere"), Some("80"), "已签收"));
        assert_eq!((got.outcome, got.evidence), (SIGNED(Unknown), "kuaidi100 state 3 签收"));
    }

    #[test]
    fn keyword_rules() {
        let cases: &[(&str, DeliveryOutcome)] = &[
            ("已签收，签收人是物业", SIGNED(ProxyPerson)),
            ("已签收，签收人是同事", SIGNED(ProxyPerson)),
            ("快件已由家人代收", SIGNED(ProxyPerson)),
            ("快件已放入智能柜", SIGNED(Locker)),
            ("快件已存放在代收点", SIGNED(ParcelStation)),
            // A named proxy beats 本人: carriers label station receipts 本人签收.
            ("已签收，签收人是本人。如有疑问请联系菜鸟驿站", SIGNED(ParcelStation)),
            // A negated 本人 is boilerplate, not a signer.
            ("已签收，如非本人签收请联系快递员", SIGNED(Unknown)),
            ("已签收，签收人是本人，如非本人签收请及时联系", SIGNED(Recipient)),
            ("本人签收", SIGNED(Recipient)),
            // On its way, not received by a proxy.
            ("快件已到达杭州转运中心，正发往菜鸟驿站", DeliveryOutcome::InTransit),
            ("快件正在派送中，请您准备签收", DeliveryOutcome::InTransit),
            ("快件派送中，签收人是门卫", SIGNED(ProxyPerson)),
            // "Not delivered" words lose to 已签收 on the same line.
            ("已签收，如需退回请联系客服", SIGNED(Unknown)),
            ("快件已退回", DeliveryOutcome::NotDelivered("returned")),
            ("派送失败，收件人电话无人接听", DeliveryOutcome::NotDelivered("delivery failed")),
            ("无法联系收件人", DeliveryOutcome::NotDelivered("unreachable")),
        ];
        for (text, outcome) in cases {
            let got = classify(&record(None, None, None, None, text));
            assert_eq!(got.outcome, *outcome, "{text}: {}", got.evidence);
        }
    }

    #[test]
    fn carrier_and_code_are_matched_loosely() {
        let got = classify(&record(None, None, Some(" ShunFeng "), Some(" 607 "), "代理收件"));
        assert_eq!(got.outcome, SIGNED(ProxyPerson));
        let got = classify(&record(None, None, Some("yunda"), Some("inbound"), "已入库"));
        assert_eq!(got.outcome, SIGNED(ParcelStation));
    }

    #[test]
    fn station_names_carry_no_phone_or_pickup_code() {
        let cases: &[(&str, &str)] = &[
            ("快件已存放至菜鸟驿站(电话13800001111)", "菜鸟驿站"),
            ("快件已存放至菜鸟驿站(取件码8-2-3011)", "菜鸟驿站"),
            ("快件已存放至幸福里驿站，取件码 12345678", "幸福里驿站"),
            ("已签收，签收人是【菜鸟驿站】", "菜鸟驿站"),
        ];
        for (text, name) in cases {
            let got = classify(&record(Some("3"), None, None, None, text));
            assert_eq!(got.station_name.as_deref(), Some(*name), "{text}");
        }
        assert_eq!(classify(&record(Some("14"), None, None, None, "驿站拒收")).station_name, None);
    }

    #[test]
    fn sign_kind_helper() {
        assert_eq!(classify(&record(Some("3"), None, None, None, STATION_LINE)).sign_kind(), Some(ParcelStation));
        assert_eq!(classify(&record(Some("14"), None, None, None, "")).sign_kind(), None);
        assert!(Locker.is_proxy() && !Recipient.is_proxy() && !Unknown.is_proxy());
    }

    // Hangzhou, West Lake.
    const HZ: GeoPoint = GeoPoint { lat: 30.2741, lng: 120.1551 };

    /// A point `metres` north of `p` (exact on the haversine sphere).
    fn north(p: GeoPoint, metres: f64) -> GeoPoint {
        GeoPoint { lat: p.lat + (metres / EARTH_RADIUS_M).to_degrees(), lng: p.lng }
    }

    #[test]
    fn haversine_known_answers() {
        // 0.0045° of latitude: 500.378 m on the mean sphere (≈ 498.9 m on WGS-84 at 30° N).
        let d = haversine_m(HZ, GeoPoint { lat: HZ.lat + 0.0045, lng: HZ.lng });
        assert!((d - 500.378).abs() < 0.01, "{d}");
        // 500 m due east in Hangzhou.
        let east = GeoPoint { lat: HZ.lat, lng: HZ.lng + 0.005_206_669 };
        assert!((haversine_m(HZ, east) - 500.0).abs() < 0.05);
        // Beijing (Tiananmen) to Shanghai (People's Square): 1,065,846 m on the WGS-84 ellipsoid
        // (Vincenty); the sphere has to be within 0.5 %.
        let beijing = GeoPoint { lat: 39.9042, lng: 116.4074 };
        let shanghai = GeoPoint { lat: 31.2304, lng: 121.4737 };
        let d = haversine_m(beijing, shanghai);
        assert!((d / 1_065_846.0 - 1.0).abs() < 0.005, "{d}");
        assert_eq!(d, haversine_m(shanghai, beijing));
        // Land's End to John o' Groats: 969,933 m on WGS-84.
        let lands_end = GeoPoint { lat: 50.066_389, lng: -5.714_722 };
        let john_o_groats = GeoPoint { lat: 58.643_889, lng: -3.07 };
        assert!((haversine_m(lands_end, john_o_groats) / 969_933.0 - 1.0).abs() < 0.005);
        assert_eq!(haversine_m(HZ, HZ), 0.0);
        let antipode = GeoPoint { lat: -HZ.lat, lng: HZ.lng - 180.0 };
        assert!((haversine_m(HZ, antipode) - std::f64::consts::PI * EARTH_RADIUS_M).abs() < 1.0);
        assert!((haversine_m(HZ, north(HZ, 1234.0)) - 1234.0).abs() < 1e-6);
    }

    #[test]
    fn invalid_points_are_unknown() {
        for bad in [
            GeoPoint { lat: f64::NAN, lng: 120.0 },
            GeoPoint { lat: 30.0, lng: f64::INFINITY },
            GeoPoint { lat: 91.0, lng: 120.0 },
            GeoPoint { lat: 30.0, lng: -180.5 },
            GeoPoint { lat: 0.0, lng: 0.0 },
        ] {
            assert!(!bad.is_valid(), "{bad:?}");
        }
        assert!(HZ.is_valid());
        assert!(haversine_m(GeoPoint { lat: f64::NAN, lng: 0.0 }, HZ).is_nan());
    }

    fn signed_at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 2, 8, 3, 17, 22).single().unwrap_or_default()
    }

    fn signal(kind: AppSignalKind, minutes: i64, location: Option<GeoPoint>, accuracy_m: Option<f64>) -> AppSignal {
        AppSignal { kind, at: signed_at() + Duration::minutes(minutes), location, accuracy_m }
    }

    fn inputs(kind: SignKind, signals: &[AppSignal]) -> TrustInputs<'_> {
        TrustInputs {
            kind,
            weak_sign: false,
            signed_at: signed_at(),
            sign_location: None,
            delivery_location: Some(HZ),
            app_signals: signals,
            proxy_receipts_this_month: 0,
        }
    }

    fn rules_of(assessment: &TrustAssessment) -> Vec<(TrustRule, i16)> {
        assessment.reasons.iter().map(|r| (r.rule, r.points)).collect()
    }

    #[test]
    fn sign_kind_points() {
        let rules = TrustRules::default();
        for (kind, score) in [(Recipient, 95), (Unknown, 70), (ProxyPerson, 60), (Locker, 55), (ParcelStation, 50)] {
            let a = assess(&inputs(kind, &[]), &rules);
            assert_eq!(a.score, score, "{kind:?}");
            assert_eq!(rules_of(&a), vec![(TrustRule::SignKind, i16::from(score)), (TrustRule::DistanceUnknown, 0)]);
        }
    }

    /// Each rule alone, on a station sign (50, no clamping) with an unknown distance (0).
    #[test]
    fn each_rule_in_isolation() {
        use AppSignalKind::*;
        let rules = TrustRules::default();
        let near = Some(north(HZ, 300.0));
        let far = Some(north(HZ, 800.0));
        type Edit = fn(&mut TrustInputs<'_>);
        let none: Edit = |_| {};
        type RuleCase = (&'static str, Edit, Vec<AppSignal>, u8, Option<TrustRule>);
        let cases: Vec<RuleCase> = vec![
            ("baseline", none, vec![], 50, None),
            ("weak sign", |i| i.weak_sign = true, vec![], 40, Some(TrustRule::WeakSign)),
            ("sign near", |i| i.sign_location = Some(north(HZ, 120.0)), vec![], 55, Some(TrustRule::Distance)),
            (
                "sign at exactly 500 m",
                |i| i.sign_location = Some(north(HZ, 499.999)),
                vec![],
                55,
                Some(TrustRule::Distance),
            ),
            ("sign far", |i| i.sign_location = Some(north(HZ, 800.0)), vec![], 20, Some(TrustRule::Distance)),
            ("address unknown", |i| i.delivery_location = None, vec![], 50, Some(TrustRule::DistanceUnknown)),
            ("app opened", none, vec![signal(AppOpened, 30, None, None)], 60, Some(TrustRule::AppOpenedAfterSign)),
            (
                "logistics viewed",
                none,
                vec![signal(LogisticsViewed, 5, None, None)],
                60,
                Some(TrustRule::AppOpenedAfterSign),
            ),
            (
                "app opened at +2 h",
                none,
                vec![signal(AppOpened, 120, None, None)],
                60,
                Some(TrustRule::AppOpenedAfterSign),
            ),
            ("app opened before sign", none, vec![signal(AppOpened, -1, None, None)], 50, None),
            ("app opened after 2 h", none, vec![signal(AppOpened, 121, None, None)], 50, None),
            ("consultation is neutral", none, vec![signal(Consultation, 10, None, None)], 50, None),
            ("gps near", none, vec![signal(GpsPing, 40, near, Some(30.0))], 95, Some(TrustRule::GpsNearAddress)),
            ("gps far", none, vec![signal(GpsPing, 40, far, Some(30.0))], 50, None),
            ("gps too inaccurate", none, vec![signal(GpsPing, 40, near, Some(300.0))], 50, None),
            ("gps after 2 h", none, vec![signal(GpsPing, 125, near, Some(10.0))], 50, None),
            ("gps NaN", none, vec![signal(GpsPing, 40, Some(GeoPoint { lat: f64::NAN, lng: HZ.lng }), None)], 50, None),
            ("gps NaN accuracy", none, vec![signal(GpsPing, 40, near, Some(f64::NAN))], 50, None),
            ("confirmed", none, vec![signal(SignConfirmed, 60, None, None)], 100, Some(TrustRule::CustomerConfirmed)),
            ("not received", none, vec![signal(NotReceived, 60, None, None)], 0, Some(TrustRule::CustomerNotReceived)),
            ("proxy history 3", |i| i.proxy_receipts_this_month = 3, vec![], 35, Some(TrustRule::AddressProxyHistory)),
            ("proxy history 2", |i| i.proxy_receipts_this_month = 2, vec![], 50, None),
        ];
        for (name, edit, signals, score, rule) in cases {
            let mut i = inputs(ParcelStation, &signals);
            edit(&mut i);
            let a = assess(&i, &rules);
            assert_eq!(a.score, score, "{name}: {:#?}", a.reasons);
            assert_eq!(a.trusted, score >= 92, "{name}");
            let extra: Vec<_> = a
                .reasons
                .iter()
                .map(|r| r.rule)
                .filter(|r| !matches!(r, TrustRule::SignKind | TrustRule::DistanceUnknown))
                .collect();
            let expected: Vec<_> = rule.into_iter().filter(|r| *r != TrustRule::DistanceUnknown).collect();
            assert_eq!(extra, expected, "{name}");
            if rule == Some(TrustRule::DistanceUnknown) {
                assert!(a.reasons.iter().any(|r| r.rule == TrustRule::DistanceUnknown));
            }
            let sum: i32 = a.reasons.iter().map(|r| i32::from(r.points)).sum();
            assert_eq!(sum, i32::from(score), "{name}: the reasons add up to the score");
        }
    }

    #[test]
    fn distance_facts() {
        let rules = TrustRules::default();
        let mut i = inputs(Recipient, &[]);
        i.sign_location = Some(north(HZ, 800.0));
        let a = assess(&i, &rules);
        assert!(a.suspect_distance);
        assert!((a.distance_m.unwrap_or_default() - 800.0).abs() < 1e-6);
        assert_eq!((a.score, a.trusted), (65, false));
        // Missing or broken points are unknown, not far.
        for (sign, address) in [
            (None, Some(HZ)),
            (Some(HZ), None),
            (Some(GeoPoint { lat: f64::INFINITY, lng: 1.0 }), Some(HZ)),
            (Some(HZ), Some(GeoPoint { lat: 0.0, lng: 0.0 })),
        ] {
            i.sign_location = sign;
            i.delivery_location = address;
            let a = assess(&i, &rules);
            assert_eq!((a.distance_m, a.suspect_distance, a.score, a.trusted), (None, false, 95, true));
        }
    }

    #[test]
    fn the_reference_scenarios() {
        use AppSignalKind::*;
        let rules = TrustRules::default();
        let near_fix = Some(north(HZ, 200.0));

        // A recipient sign with nothing against it is trusted, near or unknown.
        assert!(assess(&inputs(Recipient, &[]), &rules).trusted);
        let mut i = inputs(Recipient, &[]);
        i.sign_location = Some(north(HZ, 30.0));
        assert_eq!(assess(&i, &rules).score, 100);

        // Lockers and stations without an app signal are not, even scanned at the door or with
        // the app merely opened.
        for kind in [Locker, ParcelStation, ProxyPerson, Unknown] {
            let mut i = inputs(kind, &[]);
            i.sign_location = Some(north(HZ, 30.0));
            assert!(!assess(&i, &rules).trusted, "{kind:?}");
        }
        let opened = [signal(AppOpened, 10, None, None)];
        assert!(!assess(&inputs(ParcelStation, &opened), &rules).trusted);

        // A station sign plus a GPS fix near the address within 2 h is trusted, also when the
        // station itself is more than 500 m away: the fix clears the distance.
        let fix = [signal(GpsPing, 50, near_fix, Some(25.0))];
        assert!(assess(&inputs(ParcelStation, &fix), &rules).trusted);
        let mut i = inputs(ParcelStation, &fix);
        i.sign_location = Some(north(HZ, 900.0));
        let a = assess(&i, &rules);
        assert!(a.trusted && a.suspect_distance, "{a:#?}");
        assert!(a.reasons.iter().any(|r| r.rule == TrustRule::Distance && r.points == 0));
        // Any signal's location counts as a fix, except a "not received" report.
        let opened_here = [signal(AppOpened, 50, near_fix, Some(25.0))];
        assert!(assess(&inputs(ParcelStation, &opened_here), &rules).trusted);

        // A confirmation is trusted whatever else; "not received" is not, whatever else.
        let mut i = inputs(Locker, &[]);
        let confirmed = [signal(SignConfirmed, 90, None, None)];
        i.app_signals = &confirmed;
        i.weak_sign = true;
        i.sign_location = Some(north(HZ, 5_000.0));
        i.proxy_receipts_this_month = 9;
        let a = assess(&i, &rules);
        assert_eq!((a.score, a.trusted), (100, true));
        let not_received = [signal(NotReceived, 10, near_fix, None), signal(GpsPing, 20, near_fix, None)];
        let a = assess(&inputs(Recipient, &not_received), &rules);
        assert_eq!((a.score, a.trusted), (0, false));
        assert!(a.reasons.iter().any(|r| r.rule == TrustRule::GpsNearAddress));

        // Both answers: the later decides, the earlier is listed with no points.
        let changed_mind = [signal(NotReceived, 10, None, None), signal(SignConfirmed, 70, None, None)];
        let a = assess(&inputs(ParcelStation, &changed_mind), &rules);
        assert_eq!(a.score, 100);
        assert!(a.reasons.iter().any(|r| r.rule == TrustRule::CustomerNotReceived && r.points == 0));
        let a = assess(&inputs(ParcelStation, &[changed_mind[1], signal(NotReceived, 80, None, None)]), &rules);
        assert_eq!(a.score, 0);

        // ≥ 3 proxy receipts this month: dedicated courier, and even a recipient sign drops.
        let mut i = inputs(Recipient, &[]);
        i.proxy_receipts_this_month = 3;
        let a = assess(&i, &rules);
        assert!(a.dedicated_courier_suggested && !a.trusted);
    }

    #[test]
    fn reasons_carry_no_coordinates() {
        use AppSignalKind::*;
        let fix = [signal(GpsPing, 50, Some(north(HZ, 200.0)), Some(25.0)), signal(AppOpened, 3, None, None)];
        let mut i = inputs(ParcelStation, &fix);
        i.sign_location = Some(north(HZ, 900.0));
        i.weak_sign = true;
        i.proxy_receipts_this_month = 4;
        let a = assess(&i, &TrustRules::default());
        assert_eq!(a.reasons.len(), 6);
        for reason in &a.reasons {
            assert!(!reason.detail.contains("30.27") && !reason.detail.contains("120.15"), "{}", reason.detail);
        }
    }

    #[test]
    fn rules_round_trip_through_json() {
        let rules = TrustRules::default();
        let json = serde_json::to_string(&rules).unwrap();
        assert!(json.contains("\"app_window\":7200"));
        let back: TrustRules = serde_json::from_str(&json).unwrap();
        assert_eq!(back, rules);
        let out_of_range = json.replace("7200", "9223372036854775807");
        assert!(serde_json::from_str::<TrustRules>(&out_of_range).is_err());
    }

    #[test]
    fn extreme_windows_do_not_panic() {
        let rules = TrustRules { app_window: Duration::MAX, ..TrustRules::default() };
        let far_future = [AppSignal {
            kind: AppSignalKind::AppOpened,
            at: DateTime::<Utc>::MAX_UTC,
            location: None,
            accuracy_m: None,
        }];
        let mut i = inputs(Recipient, &far_future);
        i.signed_at = DateTime::<Utc>::MIN_UTC;
        assert_eq!(assess(&i, &rules).score, 100);
    }

    fn coordinate() -> impl Strategy<Value = f64> {
        prop_oneof![
            4 => -200.0f64..200.0,
            1 => prop::num::f64::ANY,
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
            1 => Just(f64::NEG_INFINITY),
        ]
    }

    fn point() -> impl Strategy<Value = Option<GeoPoint>> {
        prop_oneof![
            1 => Just(None),
            3 => (coordinate(), coordinate()).prop_map(|(lat, lng)| Some(GeoPoint { lat, lng })),
            // Near the address, where the rules bite.
            3 => (-0.01f64..0.01, -0.01f64..0.01).prop_map(|(a, b)| Some(GeoPoint { lat: HZ.lat + a, lng: HZ.lng + b })),
        ]
    }

    fn any_kind() -> impl Strategy<Value = SignKind> {
        prop_oneof![Just(Recipient), Just(ProxyPerson), Just(ParcelStation), Just(Locker), Just(Unknown)]
    }

    fn any_signal_kind() -> impl Strategy<Value = AppSignalKind> {
        use AppSignalKind::*;
        prop_oneof![
            Just(AppOpened),
            Just(GpsPing),
            Just(LogisticsViewed),
            Just(Consultation),
            Just(SignConfirmed),
            Just(NotReceived)
        ]
    }

    fn confirming_kind() -> impl Strategy<Value = AppSignalKind> {
        use AppSignalKind::*;
        prop_oneof![Just(AppOpened), Just(GpsPing), Just(LogisticsViewed), Just(SignConfirmed)]
    }

    fn any_signal(kind: impl Strategy<Value = AppSignalKind>) -> impl Strategy<Value = AppSignal> {
        let accuracy = prop_oneof![Just(None), (0.0f64..400.0).prop_map(Some), coordinate().prop_map(Some)];
        (kind, -240i64..240, point(), accuracy).prop_map(|(kind, minutes, location, accuracy_m)| AppSignal {
            kind,
            at: signed_at() + Duration::minutes(minutes),
            location,
            accuracy_m,
        })
    }

    #[derive(Debug, Clone)]
    struct Case {
        kind: SignKind,
        weak_sign: bool,
        sign_location: Option<GeoPoint>,
        delivery_location: Option<GeoPoint>,
        signals: Vec<AppSignal>,
        proxy: u32,
    }

    impl Case {
        fn inputs(&self) -> TrustInputs<'_> {
            TrustInputs {
                kind: self.kind,
                weak_sign: self.weak_sign,
                signed_at: signed_at(),
                sign_location: self.sign_location,
                delivery_location: self.delivery_location,
                app_signals: &self.signals,
                proxy_receipts_this_month: self.proxy,
            }
        }
    }

    fn any_case() -> impl Strategy<Value = Case> {
        (
            any_kind(),
            any::<bool>(),
            point(),
            prop_oneof![3 => Just(Some(HZ)), 1 => point()],
            proptest::collection::vec(any_signal(any_signal_kind()), 0..8),
            0u32..6,
        )
            .prop_map(|(kind, weak_sign, sign_location, delivery_location, signals, proxy)| Case {
                kind,
                weak_sign,
                sign_location,
                delivery_location,
                signals,
                proxy,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2_000))]

        #[test]
        fn score_is_a_percentage_and_trusted_follows_it(case in any_case()) {
            let rules = TrustRules::default();
            let a = assess(&case.inputs(), &rules);
            prop_assert!(a.score <= 100);
            prop_assert_eq!(a.trusted, a.score >= rules.threshold);
            let sum: i32 = a.reasons.iter().map(|r| i32::from(r.points)).sum();
            prop_assert_eq!(i32::from(a.score), sum.clamp(0, 100));
            if let Some(d) = a.distance_m {
                prop_assert!(d.is_finite() && d >= 0.0);
            }
            // The customer's latest answer in the window decides (a tie is "not received").
            let window = signed_at()..=signed_at() + rules.app_window;
            let last = |kind| case.signals.iter().filter(|s| s.kind == kind && window.contains(&s.at)).map(|s| s.at).max();
            match (last(AppSignalKind::SignConfirmed), last(AppSignalKind::NotReceived)) {
                (Some(yes), Some(no)) => prop_assert_eq!(a.score, if yes > no { 100 } else { 0 }),
                (Some(_), None) => prop_assert_eq!(a.score, 100),
                (None, Some(_)) => prop_assert_eq!(a.score, 0),
                (None, None) => {}
            }
        }

        #[test]
        fn a_confirming_signal_never_lowers_the_score(case in any_case(), extra in any_signal(confirming_kind())) {
            let rules = TrustRules::default();
            let before = assess(&case.inputs(), &rules).score;
            let mut more = case.clone();
            more.signals.push(extra);
            let after = assess(&more.inputs(), &rules).score;
            prop_assert!(after >= before, "{} -> {} adding {:?}", before, after, extra);
        }

        #[test]
        fn broken_coordinates_are_unknown(case in any_case(), lat in coordinate(), lng in coordinate()) {
            let broken = GeoPoint { lat, lng };
            prop_assume!(!broken.is_valid());
            let mut case = case;
            case.sign_location = Some(broken);
            let a = assess(&case.inputs(), &TrustRules::default());
            prop_assert_eq!(a.distance_m, None);
            prop_assert!(!a.suspect_distance);
            prop_assert!(a.reasons.iter().any(|r| r.rule == TrustRule::DistanceUnknown));
        }

        #[test]
        fn classify_takes_anything(
            state in proptest::option::of("[0-9]{1,3}"),
            sub in proptest::option::of("[0-9]{1,4}"),
            code in proptest::option::of(".{0,8}"),
            text in ".{0,80}",
            words in proptest::collection::vec(prop::sample::select(vec![
                "驿站", "菜鸟驿站", "(幸福里店)", "（", "【", "丰巢", "门卫", "本人签收", "非", "已签收", "拒收", "派送中", "取件码",
            ]), 0..6),
        ) {
            let text = format!("{text}{}", words.concat());
            let got = classify(&record(state.as_deref(), sub.as_deref(), Some("shunfeng"), code.as_deref(), &text));
            if let Some(name) = got.station_name {
                prop_assert!(text.contains(name.trim_end_matches([')', '）', '】', ']'])));
            }
        }
    }
}
