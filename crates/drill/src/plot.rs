//! Minimal SVG line charts (no plotting dependency): time on x in seconds, one polyline per
//! series broken where a value is missing, the fault window shaded, a legend on the right.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::timing::Series;

const WIDTH: f64 = 780.0;
const HEIGHT: f64 = 280.0;
const LEFT: f64 = 62.0;
const RIGHT: f64 = 190.0;
const TOP: f64 = 34.0;
const BOTTOM: f64 = 42.0;
const COLORS: [&str; 8] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
];

/// A shaded time window with a label.
#[derive(Debug, Clone)]
pub struct Band {
    /// Start (ms).
    pub from_ms: u64,
    /// End (ms).
    pub to_ms: u64,
    /// Label drawn at its top.
    pub label: String,
}

/// What to draw.
#[derive(Debug, Clone)]
pub struct Chart<'a> {
    /// Title on top.
    pub title: String,
    /// Y axis label.
    pub y_label: &'a str,
    /// Series by name.
    pub series: &'a BTreeMap<String, Series>,
    /// Right end of the x axis (ms).
    pub x_end_ms: u64,
    /// Fixed top of the y axis; automatic when `None`.
    pub y_max: Option<f64>,
    /// Shaded windows.
    pub bands: Vec<Band>,
    /// Vertical lines (ms, label).
    pub markers: Vec<(u64, String)>,
}

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" tick step (1, 2 or 5 × 10ⁿ) giving about `ticks` ticks over `range`.
pub fn nice_step(range: f64, ticks: f64) -> f64 {
    if range <= 0.0 || !range.is_finite() {
        return 1.0;
    }
    let raw = range / ticks.max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let n = raw / mag;
    let nice = if n <= 1.0 {
        1.0
    } else if n <= 2.0 {
        2.0
    } else if n <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_tick(v: f64) -> String {
    if v.abs() >= 1000.0 && (v / 1000.0).fract() == 0.0 {
        format!("{}k", v / 1000.0)
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// Renders the chart as a standalone SVG document.
pub fn line_chart(c: &Chart<'_>) -> String {
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let x_end = c.x_end_ms.max(1) as f64;
    let data_max = c
        .series
        .values()
        .flatten()
        .filter_map(|(_, v)| *v)
        .fold(0.0_f64, f64::max);
    let y_step = nice_step(c.y_max.unwrap_or(data_max).max(1.0), 5.0);
    let y_top = match c.y_max {
        Some(m) => m,
        None => (data_max / y_step).ceil().max(1.0) * y_step,
    };
    let x = |ms: f64| LEFT + plot_w * (ms / x_end).clamp(0.0, 1.0);
    // 5 % headroom, so a line at the top value stays visible above the frame.
    let y = |v: f64| TOP + plot_h * (1.0 - (v / (y_top * 1.05)).clamp(0.0, 1.0));

    let mut s = String::with_capacity(16 * 1024);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{HEIGHT}\" \
         viewBox=\"0 0 {WIDTH} {HEIGHT}\" font-family=\"sans-serif\" font-size=\"11\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{LEFT}\" y=\"20\" font-size=\"13\" font-weight=\"bold\">{}</text>\n",
        esc(&c.title)
    );
    for b in &c.bands {
        let (x0, x1) = (x(b.from_ms as f64), x(b.to_ms as f64));
        let _ = write!(
            s,
            "<rect x=\"{x0:.1}\" y=\"{TOP}\" width=\"{:.1}\" height=\"{plot_h}\" fill=\"#f4c7c3\" \
             fill-opacity=\"0.45\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#a33\">{}</text>\n",
            (x1 - x0).max(0.5),
            x0 + 3.0,
            TOP + 12.0,
            esc(&b.label)
        );
    }
    // Grid and y ticks.
    let mut v = 0.0;
    for _ in 0..=20 {
        if v > y_top + 1e-9 {
            break;
        }
        let yy = y(v);
        let _ = write!(
            s,
            "<line x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#e5e5e5\"/>\n\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>\n",
            LEFT + plot_w,
            LEFT - 6.0,
            yy + 4.0,
            fmt_tick(v)
        );
        v += y_step;
    }
    // X ticks in seconds.
    let x_step = nice_step(x_end / 1000.0, 10.0);
    let mut t = 0.0;
    for _ in 0..=40 {
        if t * 1000.0 > x_end + 1e-9 {
            break;
        }
        let xx = x(t * 1000.0);
        let _ = write!(
            s,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\"/>\n\
             <text x=\"{xx:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>\n",
            TOP + plot_h,
            TOP + plot_h + 4.0,
            TOP + plot_h + 16.0,
            fmt_tick(t)
        );
        t += x_step;
    }
    let _ = write!(
        s,
        "<rect x=\"{LEFT}\" y=\"{TOP}\" width=\"{plot_w}\" height=\"{plot_h}\" fill=\"none\" \
         stroke=\"#333\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">time (s)</text>\n\
         <text transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>\n",
        LEFT + plot_w / 2.0,
        HEIGHT - 8.0,
        TOP + plot_h / 2.0,
        esc(c.y_label)
    );
    for (ms, label) in &c.markers {
        let xx = x(*ms as f64);
        let _ = write!(
            s,
            "<line x1=\"{xx:.1}\" x2=\"{xx:.1}\" y1=\"{TOP}\" y2=\"{:.1}\" stroke=\"#555\" \
             stroke-dasharray=\"4 3\"/>\n<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#555\">{}</text>\n",
            TOP + plot_h,
            xx + 3.0,
            TOP + plot_h - 4.0,
            esc(label)
        );
    }
    for (i, (name, points)) in c.series.iter().enumerate() {
        let color = COLORS.get(i % COLORS.len()).copied().unwrap_or("#000");
        // Earlier series are drawn wider, so lines that coincide (e.g. every client at 100 %)
        // all stay visible.
        let width = (4.5 - 0.8 * i as f64).max(1.4);
        let mut run: Vec<String> = Vec::new();
        let flush = |run: &mut Vec<String>, s: &mut String| {
            match run.len() {
                0 => {}
                1 => {
                    let (px, py) = run[0].split_once(',').unwrap_or(("0", "0"));
                    let _ = writeln!(
                        s,
                        "<circle cx=\"{px}\" cy=\"{py}\" r=\"1.8\" fill=\"{color}\"/>"
                    );
                }
                _ => {
                    let _ = writeln!(
                        s,
                        "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"{width:.1}\" \
                         stroke-opacity=\"0.85\" points=\"{}\"/>",
                        run.join(" ")
                    );
                }
            }
            run.clear();
        };
        for (t, v) in points {
            match v {
                Some(v) => run.push(format!("{:.1},{:.1}", x(*t as f64), y(*v))),
                None => flush(&mut run, &mut s),
            }
        }
        flush(&mut run, &mut s);
        let ly = TOP + 8.0 + 16.0 * i as f64;
        let lx = LEFT + plot_w + 12.0;
        let _ = write!(
            s,
            "<line x1=\"{lx:.1}\" x2=\"{:.1}\" y1=\"{ly:.1}\" y2=\"{ly:.1}\" stroke=\"{color}\" \
             stroke-width=\"3\"/>\n<text x=\"{:.1}\" y=\"{:.1}\">{}</text>\n",
            lx + 18.0,
            lx + 24.0,
            ly + 4.0,
            esc(name)
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(100.0, 5.0), 20.0);
        assert_eq!(nice_step(7.0, 10.0), 1.0);
        assert_eq!(nice_step(35.0, 10.0), 5.0);
        assert_eq!(nice_step(0.0, 5.0), 1.0);
    }

    #[test]
    fn draws_lines_broken_at_gaps_with_legend_and_fault_band() {
        let mut series = BTreeMap::new();
        series.insert(
            "a → b".to_string(),
            vec![
                (0, Some(10.0)),
                (250, Some(20.0)),
                (500, None),
                (750, Some(5.0)),
            ],
        );
        series.insert("b → a".to_string(), vec![(0, Some(1.0)), (250, Some(2.0))]);
        let svg = line_chart(&Chart {
            title: "lag <test>".into(),
            y_label: "ms",
            series: &series,
            x_end_ms: 1000,
            y_max: None,
            bands: vec![Band {
                from_ms: 250,
                to_ms: 500,
                label: "fault".into(),
            }],
            markers: vec![(900, "stop".into())],
        });
        assert!(svg.starts_with("<svg"));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("lag &lt;test&gt;"));
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(svg.contains("a → b") && svg.contains(">fault<") && svg.contains(">stop<"));
    }
}
