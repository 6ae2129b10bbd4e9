//! Step 1: what a carrier sign record says happened (see the room's documentation for the
//! precedence).

use serde::Serialize;

pub use crate::model::sign::SignKind;

use SignKind::{Locker, ParcelStation, ProxyPerson, Recipient, Unknown};
use TextMay::{AnyKind, LockerOrStation, Nothing, OtherThanRecipient};
/// What a carrier record says happened to the parcel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum DeliveryOutcome {
    /// The carrier says signed, by this kind of signer.
    Signed(SignKind),
    /// Not delivered: `refused`, `returned`, `delivery failed`, `unreachable`, `timed out`,
    /// `not collected` (waiting in a locker or station), `cancelled`, `exception`.
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
    // With `resultv2=4` the top `state` carries the detailed code too (`304`): read as one.
    let decided = sub_state_rule(record.kuaidi100_sub_state)
        .or_else(|| sub_state_rule(record.kuaidi100_state))
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
    // Put into a locker or station (state 5 派件): delivered there, nobody has collected it.
    ("501", Says::InTransit, "kuaidi100 sub-state 501 投柜或驿站 (not a sign)"),
    // Waiting too long in a locker or station (state 2 疑难): still not collected.
    ("205", Says::NotDelivered("not collected"), "kuaidi100 sub-state 205 柜或驿站超时未取 (not a sign)"),
    ("201", Says::NotDelivered("timed out"), "kuaidi100 sub-state 201 超时未签收"),
    ("203", Says::NotDelivered("refused"), "kuaidi100 sub-state 203 拒收"),
    ("206", Says::NotDelivered("unreachable"), "kuaidi100 sub-state 206 无法联系"),
    ("401", Says::NotDelivered("cancelled"), "kuaidi100 sub-state 401 已销单"),
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
    ("8", Says::InTransit, "kuaidi100 state 8 清关"),
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
    KUAIDI100_SUB_STATES.iter().find(|(c, _, _)| *c == code).map(|&(_, says, ev)| (says, ev)).or_else(|| {
        // A line coded 4 退签, 6 退回 or 14 拒签 is as specific as a detailed code: returned or
        // refused, whatever its text says ("…寄件人已签收退回件" is the sender signing the return).
        KUAIDI100_STATES
            .iter()
            .find(|(c, says, _)| *c == code && matches!(says, Says::NotDelivered(why) if *why != "exception"))
            .map(|&(_, says, ev)| (says, ev))
    })
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
#[cfg(test)]
pub(crate) mod tests {

    use super::*;

    pub(crate) fn record<'a>(
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
            // 501 is state 5 派件: put into the locker, nobody has collected it (issue 13).
            (
                "k100 501 into a locker",
                record(Some("5"), Some("501"), None, None, "快件已送达【丰巢智能柜】，请凭取件码取件"),
                DeliveryOutcome::InTransit,
                None,
            ),
            (
                "k100 detailed state 501 without a line code",
                record(Some("501"), None, None, None, "快件已送达【丰巢智能柜】，请凭取件码取件"),
                DeliveryOutcome::InTransit,
                None,
            ),
            (
                "k100 detailed state 304 without a line code",
                record(Some("304"), None, None, None, "您的快件已从菜鸟驿站(文三路店)取出签收"),
                SIGNED(ParcelStation),
                Some("菜鸟驿站(文三路店)"),
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
            // Not signs (issue 13): 501 is in the locker or station, 205 has waited there too long.
            ("501", "快件已放入驿站", DeliveryOutcome::InTransit, false),
            ("205", "快件在快递柜超时未取", DeliveryOutcome::NotDelivered("not collected"), false),
            ("401", "已销单", DeliveryOutcome::NotDelivered("cancelled"), false),
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
}
