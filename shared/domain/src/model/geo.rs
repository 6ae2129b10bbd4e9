//! Points on Earth, how precise a point is, and the distance between points.
//!
//! Which sources give which precision (`docs/status-codes.md` § kuaidi100):
//! - Kuaidi100's `areaCenter` is "本数据元对应的行政区域经纬度" (kuaidi100-api/java-demo
//!   `SubscribePushData.java` L36): the centre of the trace line's administrative area, at the
//!   level its `areaCode` names (district, town, city…). It is never where the courier stood.
//! - The seller's app sends the customer's own device GPS with its accuracy (`gps.ping`,
//!   `sign.confirmed`): a real position, but the customer's, not the sign's.
//! - No carrier or platform source orderhub reads gives the courier's position at the sign, so
//!   no sign location is [`Precision::Exact`] today; the variant is there for one that does.

use serde::{Deserialize, Serialize};

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

/// How precise a location is: an exact fix, or the centre of an administrative area.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Precision {
    /// A real position (a GPS fix or a courier's scan position).
    Exact,
    /// The centre of a town or street (乡镇/街道).
    Town,
    /// The centre of a district or county (区/县).
    District,
    /// The centre of a city (市), or an area centre of unknown level.
    City,
    /// The centre of a province.
    Province,
}

impl Precision {
    /// Whether the point is only the centre of an area.
    pub const fn is_area(self) -> bool {
        !matches!(self, Precision::Exact)
    }

    /// The level of an administrative code `CN` + 12 digits (`CN330106000000`: province 33,
    /// city 01, district 06, town 000000), as Kuaidi100's `areaCode` writes it. Unknown shapes
    /// are [`Precision::City`]: the coarser reading never makes a sign look far.
    pub fn of_area_code(code: Option<&str>) -> Precision {
        let Some(digits) = code.map(str::trim).and_then(|c| c.strip_prefix("CN")) else { return Precision::City };
        if digits.len() < 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Precision::City;
        }
        let nonzero = |range: std::ops::Range<usize>| digits.get(range).is_some_and(|d| d.bytes().any(|b| b != b'0'));
        if nonzero(6..digits.len()) {
            Precision::Town
        } else if nonzero(4..6) {
            Precision::District
        } else if nonzero(2..4) {
            Precision::City
        } else {
            Precision::Province
        }
    }

    /// The name readers see.
    pub const fn label(self) -> &'static str {
        match self {
            Precision::Exact => "精确位置",
            Precision::Town => "乡镇/街道",
            Precision::District => "区县",
            Precision::City => "城市",
            Precision::Province => "省份",
        }
    }
}

/// Old stored sign records carry no precision: they were all Kuaidi100 area centres.
fn unknown_area() -> Precision {
    Precision::City
}

/// A point with its precision.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Located {
    /// The point (for an area: its centre).
    #[serde(flatten)]
    pub point: GeoPoint,
    /// How precise it is.
    #[serde(default = "unknown_area")]
    pub precision: Precision,
}

impl Located {
    /// An exact position.
    pub const fn exact(point: GeoPoint) -> Self {
        Self { point, precision: Precision::Exact }
    }

    /// The centre of an area of the given level.
    pub const fn area(point: GeoPoint, precision: Precision) -> Self {
        Self { point, precision }
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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // Hangzhou, West Lake.
    pub(crate) const HZ: GeoPoint = GeoPoint { lat: 30.2741, lng: 120.1551 };

    /// A point `metres` north of `p` (exact on the haversine sphere).
    pub(crate) fn north(p: GeoPoint, metres: f64) -> GeoPoint {
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
    fn area_codes_name_their_level() {
        assert_eq!(Precision::of_area_code(Some("CN330106000000")), Precision::District);
        assert_eq!(Precision::of_area_code(Some("CN330106001000")), Precision::Town);
        assert_eq!(Precision::of_area_code(Some("CN330100000000")), Precision::City);
        assert_eq!(Precision::of_area_code(Some("CN330000000000")), Precision::Province);
        for unknown in [None, Some(""), Some("330106"), Some("CNxx0106000000"), Some("CN33")] {
            assert_eq!(Precision::of_area_code(unknown), Precision::City, "{unknown:?}");
        }
    }

    #[test]
    fn a_stored_point_without_precision_reads_as_an_area_centre() {
        let old: Located = serde_json::from_str(r#"{"lat":30.27,"lng":120.15}"#).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(old.precision, Precision::City);
        let new = Located::area(HZ, Precision::District);
        let json = serde_json::to_string(&new).unwrap_or_default();
        assert_eq!(serde_json::from_str::<Located>(&json).ok(), Some(new));
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
}
