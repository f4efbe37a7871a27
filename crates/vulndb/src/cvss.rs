//! CVSS base scores from vector strings, via RustSec's `cvss` crate (v2.0, v3.0, v3.1, v4.0).

use std::str::FromStr;

use crate::model::SeverityKind;

/// The version family of a vector string: `CVSS:4.0/...` -> v4, `CVSS:3.x/...` -> v3, a bare
/// `AV:N/AC:L/Au:N/...` (how NVD and OSV write v2) -> v2.
pub fn kind_of(vector: &str) -> SeverityKind {
    let v = vector.trim();
    if v.starts_with("CVSS:4") {
        SeverityKind::CvssV4
    } else if v.starts_with("CVSS:3") {
        SeverityKind::CvssV3
    } else if v.starts_with("AV:") || v.starts_with("(AV:") || v.starts_with("CVSS:2") {
        SeverityKind::CvssV2
    } else {
        SeverityKind::Other
    }
}

/// The base score of a vector (CVSS v4: the score of the metrics present, per the v4.0 spec's
/// macro-vector method as the crate implements it). `None` when the vector does not parse.
pub fn base_score(vector: &str) -> Option<f64> {
    let v = vector.trim();
    match kind_of(v) {
        SeverityKind::CvssV4 => cvss::v4::Vector::from_str(v).ok().map(|x| x.score().value()),
        SeverityKind::CvssV3 => cvss::v3::Vector::from_str(v).ok().map(|x| x.base_score().value()),
        SeverityKind::CvssV2 => {
            let bare = v.trim_start_matches('(').trim_end_matches(')');
            let bare = bare.strip_prefix("CVSS:2.0/").unwrap_or(bare);
            cvss::v2::Vector::from_str(bare).ok().map(|x| x.score().value())
        }
        SeverityKind::Other => None,
    }
}

/// A [`crate::Severity`] for `vector` from `source`, scored; `published` is used when the vector
/// cannot be scored.
pub fn severity(source: &str, vector: &str, published: Option<f64>) -> crate::Severity {
    crate::Severity {
        source: source.to_string(),
        kind: kind_of(vector),
        vector: vector.trim().to_string(),
        base_score: base_score(vector).or(published),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_every_version() {
        // Log4Shell: NVD publishes 10.0 (v3.1) and 9.3 (v2).
        assert_eq!(base_score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"), Some(10.0));
        assert_eq!(base_score("AV:N/AC:M/Au:N/C:C/I:C/A:C"), Some(9.3));
        assert_eq!(base_score("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:L/I:L/A:N"), Some(6.5));
        // FIRST's v4.0 calculator: this vector scores 9.3.
        assert_eq!(base_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N"), Some(9.3));
        assert_eq!(base_score("not a vector"), None);
        assert_eq!(kind_of("CVSS:4.0/AV:N"), SeverityKind::CvssV4);
    }
}
