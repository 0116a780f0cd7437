//! Charts as inline SVG, drawn here: bars per day, stacked by series. No script, no external
//! asset; colours are presentation attributes (a strict `style-src` allows no `style=`). Every
//! bar carries its numbers (`data-day`, `data-series`, `data-value`, and a `<title>` a
//! browser shows on hover), so that what is drawn can be checked, by a person or a test.

use std::fmt::Write as _;

use super::html::esc;

/// One series of a chart: a value per day.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub values: Vec<f64>,
}

/// How values are written.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Count,
    Percent,
}

impl Unit {
    fn text(self, v: f64) -> String {
        match self {
            Unit::Count => format!("{v:.0}"),
            Unit::Percent => format!("{v:.1}%"),
        }
    }
}

const HEIGHT: f64 = 180.0;
const LEFT: f64 = 48.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 40.0;
const MIN_WIDTH: f64 = 320.0;

/// Bars per day, the series stacked in order; `id` names the chart (`data-chart`).
pub fn bars(id: &str, title: &str, days: &[String], series: &[Series<'_>], unit: Unit) -> String {
    let step = (560.0 / days.len().max(1) as f64).clamp(8.0, 48.0);
    // Wide enough for the legend's names however few the days.
    let width = (LEFT + step * days.len().max(1) as f64 + 16.0).max(MIN_WIDTH);
    let legend_h = 18.0 * series.len() as f64;
    let total_h = TOP + HEIGHT + BOTTOM + legend_h;
    let top_value = (0..days.len())
        .map(|d| {
            series
                .iter()
                .map(|s| s.values.get(d).copied().unwrap_or(0.0))
                .sum::<f64>()
        })
        .fold(0.0_f64, f64::max);
    let max = match unit {
        Unit::Percent => 100.0,
        Unit::Count => top_value.max(1.0),
    };
    let mut out = String::new();
    let _ = write!(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" data-chart=\"{id}\" role=\"img\" \
aria-label=\"{t}\" viewBox=\"0 0 {width:.0} {total_h:.0}\" width=\"{width:.0}\" height=\"{total_h:.0}\" \
font-family=\"sans-serif\" font-size=\"11\"><title>{t}</title>",
        id = esc(id),
        t = esc(title)
    );
    // Axes and the top of the scale.
    let base = TOP + HEIGHT;
    let _ = write!(
        out,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{base}\" stroke=\"#888\"/>\
<line x1=\"{LEFT}\" y1=\"{base}\" x2=\"{:.0}\" y2=\"{base}\" stroke=\"#888\"/>\
<text x=\"{:.0}\" y=\"{:.0}\" text-anchor=\"end\">{}</text>\
<text x=\"{:.0}\" y=\"{base}\" text-anchor=\"end\">0</text>",
        width - 8.0,
        LEFT - 4.0,
        TOP + 8.0,
        esc(&unit.text(max)),
        LEFT - 4.0
    );
    for (d, day) in days.iter().enumerate() {
        let x = LEFT + step * d as f64 + step * 0.15;
        let w = step * 0.7;
        let mut y = base;
        for s in series {
            let v = s.values.get(d).copied().unwrap_or(0.0);
            if v <= 0.0 {
                continue;
            }
            let h = v / max * HEIGHT;
            y -= h;
            let _ = write!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{w:.1}\" height=\"{h:.1}\" fill=\"{}\" \
data-day=\"{}\" data-series=\"{}\" data-value=\"{}\"><title>{} {}: {}</title></rect>",
                esc(s.color),
                esc(day),
                esc(s.name),
                esc(&unit.text(v)),
                esc(day),
                esc(s.name),
                esc(&unit.text(v))
            );
        }
        // Every label when they fit; otherwise the first, the last and a few between.
        let every = (days.len() / 8).max(1);
        if d % every == 0 || d + 1 == days.len() {
            let lx = LEFT + step * d as f64 + step / 2.0;
            let _ = write!(
                out,
                "<text x=\"{lx:.1}\" y=\"{:.0}\" text-anchor=\"end\" transform=\"rotate(-45 {lx:.1} {:.0})\">{}</text>",
                base + 14.0,
                base + 14.0,
                esc(day.get(5..).unwrap_or(day))
            );
        }
    }
    for (i, s) in series.iter().enumerate() {
        let ly = TOP + HEIGHT + BOTTOM + 18.0 * i as f64;
        let _ = write!(
            out,
            "<rect x=\"{LEFT}\" y=\"{:.0}\" width=\"10\" height=\"10\" fill=\"{}\"/>\
<text x=\"{:.0}\" y=\"{:.0}\">{}</text>",
            ly,
            esc(s.color),
            LEFT + 16.0,
            ly + 9.0,
            esc(s.name)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bar_carries_its_value_and_nothing_is_unescaped() {
        let days = vec!["2026-12-01".to_owned(), "2026-12-02".to_owned()];
        let svg = bars(
            "calls",
            "Calls <per> day",
            &days,
            &[
                Series {
                    name: "ok",
                    color: "#1e7b34",
                    values: vec![3.0, 0.0],
                },
                Series {
                    name: "denied",
                    color: "#b00020",
                    values: vec![1.0, 2.0],
                },
            ],
            Unit::Count,
        );
        assert!(svg.contains("data-day=\"2026-12-01\" data-series=\"ok\" data-value=\"3\""));
        assert!(svg.contains("data-day=\"2026-12-02\" data-series=\"denied\" data-value=\"2\""));
        // No bar for a zero.
        assert!(!svg.contains("data-day=\"2026-12-02\" data-series=\"ok\""));
        assert!(svg.contains("Calls &lt;per&gt; day"));
    }
}
