//! A small SVG line chart (jobs → sessions/s) for `smsrefresh bench --svg`, written by hand:
//! one chart does not justify a plotting dependency.

use std::fmt::Write as _;

/// The chart's size, margin and scales.
struct Frame {
    w: f64,
    h: f64,
    m: f64,
    max_x: f64,
    max_y: f64,
}

impl Frame {
    fn x(&self, v: f64) -> f64 {
        self.m + (v / self.max_x) * (self.w - 2.0 * self.m)
    }

    fn y(&self, v: f64) -> f64 {
        self.h - self.m - (v / self.max_y) * (self.h - 2.0 * self.m)
    }

    /// The axes, the grid, the ticks and the axis labels.
    fn axes(&self, s: &mut String, points: &[(usize, f64)]) {
        let Frame { w, h, m, max_y, .. } = *self;
        let _ = writeln!(
            s,
            r#"<line x1="{m}" y1="{}" x2="{}" y2="{}" stroke="black"/>"#,
            h - m,
            w - m,
            h - m
        );
        let _ = writeln!(
            s,
            r#"<line x1="{m}" y1="{m}" x2="{m}" y2="{}" stroke="black"/>"#,
            h - m
        );
        for i in 0..=4 {
            let v = max_y * f64::from(i) / 4.0;
            let _ = writeln!(
                s,
                r#"<text x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                m - 6.0,
                self.y(v) + 4.0,
                human(v)
            );
            let _ = writeln!(
                s,
                r##"<line x1="{m}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#ddd"/>"##,
                self.y(v),
                w - m
            );
        }
        for (jobs, _) in points {
            let _ = writeln!(
                s,
                r#"<text x="{:.1}" y="{}" text-anchor="middle">{jobs}</text>"#,
                self.x(*jobs as f64),
                h - m + 18.0
            );
        }
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{}" text-anchor="middle">jobs (worker threads)</text>"#,
            w / 2.0,
            h - 14.0
        );
        let _ = writeln!(
            s,
            r#"<text x="16" y="{}" transform="rotate(-90 16 {})" text-anchor="middle">sessions refreshed per second</text>"#,
            h / 2.0,
            h / 2.0
        );
    }
}

/// Renders `points` (x = jobs, y = sessions per second) as an SVG document.
pub fn chart(title: &str, points: &[(usize, f64)]) -> String {
    let f = Frame {
        w: 640.0,
        h: 400.0,
        m: 60.0,
        max_x: points.iter().map(|p| p.0).max().unwrap_or(1).max(1) as f64,
        max_y: points.iter().map(|p| p.1).fold(0.0_f64, f64::max).max(1.0) * 1.1,
    };
    let (w, h) = (f.w, f.h);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{w}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="16">{}</text>"#,
        w / 2.0,
        escape(title)
    );
    f.axes(&mut s, points);
    let path: Vec<String> = points
        .iter()
        .map(|(j, v)| format!("{:.1},{:.1}", f.x(*j as f64), f.y(*v)))
        .collect();
    let _ = writeln!(
        s,
        r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
        path.join(" ")
    );
    for (j, v) in points {
        let _ = writeln!(
            s,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#1f77b4"/>"##,
            f.x(*j as f64),
            f.y(*v)
        );
    }
    s.push_str("</svg>\n");
    s
}

/// 12.3M, 450k, 999.
pub fn human(v: f64) -> String {
    if v >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{:.0}k", v / 1e3)
    } else {
        format!("{v:.0}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_has_a_point_per_jobs_value() {
        let svg = chart("t <1>", &[(1, 1e6), (2, 1.9e6), (4, 3.5e6)]);
        assert!(svg.starts_with("<svg"));
        assert_eq!(svg.matches("<circle").count(), 3);
        assert!(svg.contains("t &lt;1&gt;"));
        assert_eq!(human(12_300_000.0), "12.3M");
        assert_eq!(human(450_000.0), "450k");
    }
}
