//! Step 2: the 0–100 score of a sign, with one reason per rule that applied.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::model::geo::{GeoPoint, Located, Precision, haversine_m};
use crate::model::sign::SignKind;
use crate::model::signal::{AppSignal, AppSignalKind};

/// Everything [`assess`] looks at for one sign.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrustInputs<'a> {
    /// Who signed, from [`classify`].
    pub kind: SignKind,
    /// The sign came after a delivery exception (Kuaidi100 302).
    pub weak_sign: bool,
    /// When the carrier says it was signed.
    pub signed_at: DateTime<Utc>,
    /// Where the sign happened, at its precision: today always an area centre (Kuaidi100
    /// `areaCenter`), which can tell "another district", never a distance in metres.
    pub sign_location: Option<Located>,
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
/// | sign area = the address's area | 0 | an area centre (Kuaidi100 `areaCenter`) says only which district the sign was in: "in the customer's district" is no evidence either way, and never "within 500 m" |
/// | sign area ≠ the address's area | −30 | the area's centre is farther from the address than the area reaches ([`AreaRules`]): the sign happened in another district or city, as suspect as a far scan. Waived (0) when a customer GPS fix near the address clears it |
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
    /// How a sign location that is only an area centre is judged.
    #[serde(default)]
    pub areas: AreaRules,
}

/// How a sign location that is only the centre of an administrative area is judged: the sign
/// was in another area when the centre is farther from the address than such an area reaches.
/// The reaches are ours (no source gives area sizes) and generous on purpose — a large rural
/// county is far wider than a city district — so an honest sign is never called far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AreaRules {
    /// A town or street (乡镇/街道) reaches this far from its centre (metres).
    pub town_m: f64,
    /// A district or county (区/县).
    pub district_m: f64,
    /// A city, or an area of unknown level.
    pub city_m: f64,
    /// A province.
    pub province_m: f64,
    /// Points when the sign's area is the address's.
    pub same_area_points: i16,
    /// Points when the sign's area is another one (negative).
    pub other_area_points: i16,
}

impl Default for AreaRules {
    fn default() -> Self {
        Self {
            town_m: 8_000.0,
            district_m: 30_000.0,
            city_m: 100_000.0,
            province_m: 600_000.0,
            same_area_points: 0,
            other_area_points: -30,
        }
    }
}

impl AreaRules {
    /// How far an area of this level reaches from its centre; `None` for an exact point.
    pub fn reach_m(&self, precision: Precision) -> Option<f64> {
        match precision {
            Precision::Exact => None,
            Precision::Town => Some(self.town_m),
            Precision::District => Some(self.district_m),
            Precision::City => Some(self.city_m),
            Precision::Province => Some(self.province_m),
        }
    }
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
            areas: AreaRules::default(),
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
    /// Distance between an exact sign position and the address.
    Distance,
    /// Whether the sign's area (an area centre) is the address's area.
    SignArea,
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
    /// Sign position to address, metres, when both are known and the sign position is exact
    /// (never for an area centre: its distance to the address is no distance of the sign).
    pub distance_m: Option<f64>,
    /// The sign was farther than the suspect distance, or in another area (a fact, even when a
    /// GPS fix cleared it).
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
    let sign = inputs.sign_location.filter(|l| l.point.is_valid());
    let address = inputs.delivery_location.filter(|p| p.is_valid());
    let area = match (sign, address) {
        (Some(sign), Some(home)) => {
            rules.areas.reach_m(sign.precision).map(|reach| (sign.precision, haversine_m(sign.point, home), reach))
        }
        _ => None,
    };
    let distance_m = match (sign, address) {
        (Some(sign), Some(home)) if !sign.precision.is_area() => Some(haversine_m(sign.point, home)),
        _ => None,
    };
    let other_area = area.is_some_and(|(_, d, reach)| d > reach);
    let suspect_distance = other_area || distance_m.is_some_and(|d| d > rules.suspect_distance_m);
    let limit = rules.suspect_distance_m;
    match (area, distance_m) {
        (Some((precision, d, _)), _) => {
            let (level, km) = (precision.label(), d / 1000.0);
            if !other_area {
                tally.add(
                    TrustRule::SignArea,
                    rules.areas.same_area_points,
                    format!("签收所在{level}与收货地址相符（只知区域中心，不判断具体距离）"),
                );
            } else if seen.gps_near.is_some() {
                tally.add(
                    TrustRule::SignArea,
                    0,
                    format!("签收所在{level}不是收货地址所在地（区域中心距地址约 {km:.0} 公里）；收件人定位已在地址附近，不扣分"),
                );
            } else {
                tally.add(
                    TrustRule::SignArea,
                    rules.areas.other_area_points,
                    format!("签收所在{level}不是收货地址所在地（区域中心距地址约 {km:.0} 公里），可疑"),
                );
            }
        }
        (None, Some(d)) if suspect_distance && seen.gps_near.is_some() => tally.add(
            TrustRule::Distance,
            0,
            format!("签收位置距收货地址约 {d:.0} 米，超过 {limit:.0} 米；收件人定位已在地址附近，不扣分"),
        ),
        (None, Some(d)) if suspect_distance => tally.add(
            TrustRule::Distance,
            rules.far_sign_points,
            format!("签收位置距收货地址约 {d:.0} 米，超过 {limit:.0} 米，可疑"),
        ),
        (None, Some(d)) => tally.add(
            TrustRule::Distance,
            rules.near_sign_points,
            format!("签收位置距收货地址约 {d:.0} 米，在 {limit:.0} 米内"),
        ),
        (None, None) => tally.add(
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

    use super::super::classify::classify;
    use super::super::classify::tests::record;
    use super::*;
    use crate::model::geo::tests::{HZ, north};
    use crate::model::sign::SignKind::{Locker, ParcelStation, ProxyPerson, Recipient, Unknown};

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
            (
                "sign near",
                |i| i.sign_location = Some(Located::exact(north(HZ, 120.0))),
                vec![],
                55,
                Some(TrustRule::Distance),
            ),
            (
                "sign at exactly 500 m",
                |i| i.sign_location = Some(Located::exact(north(HZ, 499.999))),
                vec![],
                55,
                Some(TrustRule::Distance),
            ),
            (
                "sign far",
                |i| i.sign_location = Some(Located::exact(north(HZ, 800.0))),
                vec![],
                20,
                Some(TrustRule::Distance),
            ),
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
        i.sign_location = Some(Located::exact(north(HZ, 800.0)));
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
            i.sign_location = sign.map(Located::exact);
            i.delivery_location = address;
            let a = assess(&i, &rules);
            assert_eq!((a.distance_m, a.suspect_distance, a.score, a.trusted), (None, false, 95, true));
        }
    }

    #[test]
    fn an_area_centre_says_which_area_never_how_many_metres() {
        let rules = TrustRules::default();
        // The 西湖区 centre is ~2.9 km from an address in 西湖区: an honest station sign there is
        // "in the customer's district", not "far" (it was −30 when read as the courier's spot).
        let xihu = Located::area(GeoPoint { lat: 30.259324, lng: 120.130203 }, Precision::District);
        let mut i = inputs(ParcelStation, &[]);
        i.sign_location = Some(xihu);
        let a = assess(&i, &rules);
        assert_eq!((a.score, a.suspect_distance, a.distance_m), (50, false, None), "{:#?}", a.reasons);
        assert_eq!(rules_of(&a), vec![(TrustRule::SignKind, 50), (TrustRule::SignArea, 0)]);
        assert!(!a.reasons[1].detail.contains('米'), "no metres from an area centre");
        // Even 300 m from the address, an area centre earns no "within 500 m" points.
        i.sign_location = Some(Located::area(north(HZ, 300.0), Precision::District));
        assert_eq!(assess(&i, &rules).score, 50);
        // A district centre in another city (Shanghai's 黄浦区, ~165 km) is another area.
        i.kind = Recipient;
        i.sign_location = Some(Located::area(GeoPoint { lat: 31.2317, lng: 121.4846 }, Precision::District));
        let a = assess(&i, &rules);
        assert_eq!((a.score, a.trusted, a.suspect_distance), (65, false, true));
        assert_eq!(a.reasons[1].rule, TrustRule::SignArea);
        // ...unless the customer's phone was at the address in the window.
        let fix = [signal(AppSignalKind::GpsPing, 30, Some(north(HZ, 100.0)), Some(20.0))];
        i.app_signals = &fix;
        let a = assess(&i, &rules);
        assert!(a.reasons.iter().any(|r| r.rule == TrustRule::SignArea && r.points == 0), "{:#?}", a.reasons);
        // A city-level centre 40 km away may still be the same city.
        i.app_signals = &[];
        i.sign_location = Some(Located::area(north(HZ, 40_000.0), Precision::City));
        assert!(!assess(&i, &rules).suspect_distance);
    }

    #[test]
    fn the_reference_scenarios() {
        use AppSignalKind::*;
        let rules = TrustRules::default();
        let near_fix = Some(north(HZ, 200.0));

        // A recipient sign with nothing against it is trusted, near or unknown.
        assert!(assess(&inputs(Recipient, &[]), &rules).trusted);
        let mut i = inputs(Recipient, &[]);
        i.sign_location = Some(Located::exact(north(HZ, 30.0)));
        assert_eq!(assess(&i, &rules).score, 100);

        // Lockers and stations without an app signal are not, even scanned at the door or with
        // the app merely opened.
        for kind in [Locker, ParcelStation, ProxyPerson, Unknown] {
            let mut i = inputs(kind, &[]);
            i.sign_location = Some(Located::exact(north(HZ, 30.0)));
            assert!(!assess(&i, &rules).trusted, "{kind:?}");
        }
        let opened = [signal(AppOpened, 10, None, None)];
        assert!(!assess(&inputs(ParcelStation, &opened), &rules).trusted);

        // A station sign plus a GPS fix near the address within 2 h is trusted, also when the
        // station itself is more than 500 m away: the fix clears the distance.
        let fix = [signal(GpsPing, 50, near_fix, Some(25.0))];
        assert!(assess(&inputs(ParcelStation, &fix), &rules).trusted);
        let mut i = inputs(ParcelStation, &fix);
        i.sign_location = Some(Located::exact(north(HZ, 900.0)));
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
        i.sign_location = Some(Located::exact(north(HZ, 5_000.0)));
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
        i.sign_location = Some(Located::exact(north(HZ, 900.0)));
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

    fn any_precision() -> impl Strategy<Value = Precision> {
        prop_oneof![
            Just(Precision::Exact),
            Just(Precision::Town),
            Just(Precision::District),
            Just(Precision::City),
            Just(Precision::Province)
        ]
    }

    #[derive(Debug, Clone)]
    struct Case {
        kind: SignKind,
        weak_sign: bool,
        sign_location: Option<Located>,
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
            any_precision(),
            prop_oneof![3 => Just(Some(HZ)), 1 => point()],
            proptest::collection::vec(any_signal(any_signal_kind()), 0..8),
            0u32..6,
        )
            .prop_map(|(kind, weak_sign, sign_point, precision, delivery_location, signals, proxy)| Case {
                kind,
                weak_sign,
                sign_location: sign_point.map(|point| Located::area(point, precision)),
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
            case.sign_location = Some(Located::exact(broken));
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
