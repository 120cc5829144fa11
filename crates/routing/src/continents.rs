//! Country → continent for every ISO 3166-1 alpha-2 code, and approximate centres used when a
//! client's coordinates are only known through its country or continent.
//!
//! Continent assignments follow the common GeoIP convention (Russia in Europe, Turkey in Asia,
//! Cyprus in Europe, the Caribbean in North America, US outlying islands in Oceania).

use crate::location::{Continent, Coordinates, Country};

use Continent::{AF, AN, AS, EU, NA, OC, SA};

/// The 249 ISO 3166-1 alpha-2 codes, grouped by continent.
const ISO_COUNTRIES: &[(Continent, &str)] = &[
    (
        AF,
        "AO BF BI BJ BW CD CF CG CI CM CV DJ DZ EG EH ER ET GA GH GM GN GQ GW KE KM LR LS LY MA \
         MG ML MR MU MW MZ NA NE NG RE RW SC SD SH SL SN SO SS ST SZ TD TG TN TZ UG YT ZA ZM ZW",
    ),
    (AN, "AQ BV GS HM TF"),
    (
        AS,
        "AE AF AM AZ BD BH BN BT CC CN CX GE HK ID IL IN IO IQ IR JO JP KG KH KP KR KW KZ LA LB \
         LK MM MN MO MV MY NP OM PH PK PS QA SA SG SY TH TJ TL TM TR TW UZ VN YE",
    ),
    (
        EU,
        "AD AL AT AX BA BE BG BY CH CY CZ DE DK EE ES FI FO FR GB GG GI GR HR HU IE IM IS IT JE \
         LI LT LU LV MC MD ME MK MT NL NO PL PT RO RS RU SE SI SJ SK SM UA VA",
    ),
    (
        NA,
        "AG AI AW BB BL BM BQ BS BZ CA CR CU CW DM DO GD GL GP GT HN HT JM KN KY LC MF MQ MS MX \
         NI PA PM PR SV SX TC TT US VC VG VI",
    ),
    (
        OC,
        "AS AU CK FJ FM GU KI MH MP NC NF NR NU NZ PF PG PN PW SB TK TO TV UM VU WF WS",
    ),
    (SA, "AR BO BR CL CO EC FK GF GY PE PY SR UY VE"),
];

/// Codes that are not ISO 3166-1 but appear in GeoIP data (historic or regional codes).
const NON_ISO_CODES: &[(Continent, &str)] = &[
    (AS, "AP AB OS"),       // Asia/Pacific region, Abkhazia, South Ossetia
    (EU, "EU UK CS SU XK"), // Europe region, United Kingdom alias, Serbia & Montenegro, USSR, Kosovo
    (NA, "AN"),             // Netherlands Antilles
];

fn lookup(table: &[(Continent, &str)], country: Country) -> Option<Continent> {
    table
        .iter()
        .find(|(_, codes)| codes.split_whitespace().any(|c| c == country.as_str()))
        .map(|(continent, _)| *continent)
}

/// The continent of a country, or `None` for unknown codes (`"??"`, `"ZZ"`, typos).
pub fn continent_of(country: Country) -> Option<Continent> {
    lookup(ISO_COUNTRIES, country).or_else(|| lookup(NON_ISO_CODES, country))
}

/// Whether `country` is one of the 249 ISO 3166-1 alpha-2 codes.
pub fn is_iso_country(country: Country) -> bool {
    lookup(ISO_COUNTRIES, country).is_some()
}

/// Every ISO 3166-1 alpha-2 code with its continent.
pub fn iso_countries() -> impl Iterator<Item = (Country, Continent)> {
    ISO_COUNTRIES.iter().flat_map(|(continent, codes)| {
        codes
            .split_whitespace()
            .filter_map(move |c| Country::new(c).ok().map(|c| (c, *continent)))
    })
}

/// Rough population-weighted centres of large or network-heavy countries; other countries fall
/// back to their continent's centre. Configure exact coordinates per network where it matters.
const COUNTRY_CENTRES: &[(&str, f64, f64)] = &[
    ("US", 38.0, -97.0),
    ("CA", 45.4, -75.7),
    ("MX", 19.4, -99.1),
    ("BR", -15.8, -47.9),
    ("AR", -34.6, -58.4),
    ("CL", -33.4, -70.6),
    ("CO", 4.7, -74.1),
    ("PE", -12.0, -77.0),
    ("GB", 51.5, -0.1),
    ("IE", 53.3, -6.3),
    ("FR", 48.9, 2.4),
    ("DE", 50.1, 8.7),
    ("NL", 52.4, 4.9),
    ("BE", 50.8, 4.4),
    ("CH", 47.4, 8.5),
    ("AT", 48.2, 16.4),
    ("IT", 45.5, 9.2),
    ("ES", 40.4, -3.7),
    ("PT", 38.7, -9.1),
    ("SE", 59.3, 18.1),
    ("NO", 59.9, 10.8),
    ("DK", 55.7, 12.6),
    ("FI", 60.2, 24.9),
    ("PL", 52.2, 21.0),
    ("CZ", 50.1, 14.4),
    ("UA", 50.5, 30.5),
    ("RU", 55.8, 37.6),
    ("TR", 41.0, 29.0),
    ("IL", 32.1, 34.8),
    ("AE", 25.2, 55.3),
    ("SA", 24.7, 46.7),
    ("IN", 19.1, 72.9),
    ("PK", 24.9, 67.0),
    ("BD", 23.8, 90.4),
    ("CN", 31.2, 121.5),
    ("HK", 22.3, 114.2),
    ("TW", 25.0, 121.5),
    ("KR", 37.6, 127.0),
    ("JP", 35.7, 139.7),
    ("SG", 1.35, 103.8),
    ("MY", 3.1, 101.7),
    ("TH", 13.8, 100.5),
    ("VN", 21.0, 105.8),
    ("PH", 14.6, 121.0),
    ("ID", -6.2, 106.8),
    ("AU", -33.9, 151.2),
    ("NZ", -36.8, 174.8),
    ("ZA", -26.2, 28.0),
    ("NG", 6.5, 3.4),
    ("KE", -1.3, 36.8),
    ("EG", 30.0, 31.2),
    ("MA", 33.6, -7.6),
];

/// Approximate centre of a continent's population.
pub fn continent_centre(continent: Continent) -> Coordinates {
    let (lat, lon) = match continent {
        AF => (5.0, 20.0),
        AN => (-80.0, 0.0),
        AS => (30.0, 100.0),
        EU => (50.0, 10.0),
        NA => (40.0, -95.0),
        OC => (-30.0, 145.0),
        SA => (-15.0, -60.0),
    };
    Coordinates { lat, lon }
}

/// Approximate coordinates for a country: its own centre if known, else its continent's.
pub fn country_centre(country: Country) -> Option<Coordinates> {
    COUNTRY_CENTRES
        .iter()
        .find(|(code, _, _)| *code == country.as_str())
        .map(|(_, lat, lon)| Coordinates {
            lat: *lat,
            lon: *lon,
        })
        .or_else(|| continent_of(country).map(continent_centre))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn c(code: &str) -> Country {
        Country::new(code).expect("valid code")
    }

    #[test]
    fn table_has_every_iso_code_once() {
        let all: Vec<Country> = iso_countries().map(|(c, _)| c).collect();
        let unique: BTreeSet<Country> = all.iter().copied().collect();
        assert_eq!(all.len(), unique.len(), "duplicate codes");
        assert_eq!(all.len(), 249);
    }

    #[test]
    fn continents_of_known_countries() {
        let cases = [
            ("US", Some(NA)),
            ("us", Some(NA)),
            ("DE", Some(EU)),
            ("RU", Some(EU)),
            ("JP", Some(AS)),
            ("BR", Some(SA)),
            ("AU", Some(OC)),
            ("ZA", Some(AF)),
            ("AQ", Some(AN)),
            ("UK", Some(EU)),
            ("AP", Some(AS)),
            ("ZZ", None),
        ];
        for (code, want) in cases {
            assert_eq!(continent_of(c(code)), want, "{code}");
        }
        assert!(!is_iso_country(c("UK")));
    }

    #[test]
    fn centres_fall_back_to_continent() {
        assert_eq!(
            country_centre(c("DE")),
            Some(Coordinates {
                lat: 50.1,
                lon: 8.7
            })
        );
        assert_eq!(country_centre(c("LU")), Some(continent_centre(EU)));
        assert_eq!(country_centre(c("ZZ")), None);
    }
}
