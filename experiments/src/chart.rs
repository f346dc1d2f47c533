//! Minimal SVG charts: line charts and grouped bar charts.
//!
//! Experiments need a handful of chart shapes (availability over time,
//! latency per object size, cost per configuration), always rendered the same
//! way so results from different runs can be compared side by side. SVG is
//! text: it diffs, renders in browsers and on GitHub, and converts to PNG with
//! `rsvg-convert` or `inkscape` when a raster image is needed.
//!
//! Every chart is drawn on a fixed [`WIDTH`] × [`HEIGHT`] canvas with "nice"
//! axis ticks (1, 2 or 5 × 10ⁿ, or powers of ten on log axes), gridlines, a
//! legend and colours from the colour-blind-safe Okabe–Ito palette. Bad data
//! never panics: non-finite points (and non-positive values on log axes) are
//! skipped, empty charts still draw their axes, and a constant series gets a
//! padded range instead of a zero-height axis.
//!
//! ```
//! use infinicache_experiments::chart::{Chart, LineChart};
//! let svg = LineChart::new("Availability", "time (s)", "available (%)")
//!     .series("GET", [(0.0, 100.0), (60.0, 99.2), (120.0, 100.0)])
//!     .y_range(95.0, 100.0)
//!     .step(true)
//!     .to_svg();
//! assert!(svg.starts_with("<?xml"));
//! ```

use std::fmt::Write as _;
use std::path::Path;

/// Canvas width in pixels.
pub const WIDTH: f64 = 800.0;
/// Canvas height in pixels.
pub const HEIGHT: f64 = 450.0;

/// Okabe–Ito colours, distinguishable with the common forms of colour
/// blindness. Yellow is last because it has the least contrast on white.
/// Series beyond the eighth reuse the colours with a dashed line.
pub const PALETTE: [&str; 8] = [
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000", "#F0E442",
];

/// Writing into a `String` cannot fail, so the `fmt::Result` is dropped here
/// once instead of being unwrapped at every call site.
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        let _ = write!($out, $($arg)*);
    }};
}

/// Something that renders to a standalone SVG document.
pub trait Chart {
    /// The complete SVG document, including the XML declaration.
    fn to_svg(&self) -> String;
}

/// Renders `chart` and writes it to `path`, creating missing parent
/// directories (experiments write into fresh per-run result directories).
pub fn write_svg(path: impl AsRef<Path>, chart: &(impl Chart + ?Sized)) -> std::io::Result<()> {
    let path = path.as_ref();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, chart.to_svg())
}

/// One named line of a [`LineChart`]. Points are drawn in the given order,
/// so they should be sorted by x.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
}

impl Series {
    pub fn new(name: impl Into<String>, points: impl IntoIterator<Item = (f64, f64)>) -> Self {
        Self {
            name: name.into(),
            points: points.into_iter().collect(),
        }
    }
}

/// A line chart with numeric x and y axes.
///
/// Ranges left as `None` are derived from the data and widened to the
/// surrounding ticks. An explicit range is used exactly, which is how a
/// percentage axis is pinned to `0..100` or zoomed to `95..100`; data outside
/// it is clipped. Invalid ranges (empty, non-finite, or non-positive on a log
/// axis) are ignored.
///
/// A non-finite point (or a non-positive y on a log axis) breaks the line
/// rather than being bridged, so missing samples show up as gaps.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub x_range: Option<(f64, f64)>,
    pub y_range: Option<(f64, f64)>,
    /// Logarithmic y axis with ticks at powers of ten.
    pub y_log: bool,
    /// Draw a dot at every point (isolated points always get one).
    pub markers: bool,
    /// Draw each value as holding until the next point (step-after), which
    /// is how sampled states such as availability should be read.
    pub step: bool,
}

impl LineChart {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Self::default()
        }
    }

    /// Appends a series.
    pub fn series(
        mut self,
        name: impl Into<String>,
        points: impl IntoIterator<Item = (f64, f64)>,
    ) -> Self {
        self.series.push(Series::new(name, points));
        self
    }

    pub fn x_range(mut self, lo: f64, hi: f64) -> Self {
        self.x_range = Some((lo, hi));
        self
    }

    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }

    pub fn y_log(mut self, on: bool) -> Self {
        self.y_log = on;
        self
    }

    pub fn markers(mut self, on: bool) -> Self {
        self.markers = on;
        self
    }

    pub fn step(mut self, on: bool) -> Self {
        self.step = on;
        self
    }

    fn usable(&self, &(x, y): &(f64, f64)) -> bool {
        x.is_finite() && usable(y, self.y_log)
    }
}

impl Chart for LineChart {
    fn to_svg(&self) -> String {
        let f = Frame::new(self.series.iter().map(|s| s.name.as_str()));
        let pts = || {
            self.series
                .iter()
                .flat_map(|s| &s.points)
                .filter(|p| self.usable(p))
        };
        let x = Axis::new(pts().map(|p| p.0), self.x_range, false, false, 8);
        let y = Axis::new(pts().map(|p| p.1), self.y_range, self.y_log, false, 5);
        let mut s = Svg::open(&f, [&self.title, &self.x_label, &self.y_label], &y);
        for (&t, label) in x.ticks.iter().zip(&x.labels) {
            let px = f.x(&x, t);
            s.line((px, f.top), (px, f.bottom), GRID);
            s.text((px, f.bottom + 18.0), MIDDLE, label);
        }
        s.raw(r#"<g clip-path="url(#plot)" fill="none" stroke-width="2" stroke-linejoin="round">"#);
        for (i, series) in self.series.iter().enumerate() {
            let (color, dash) = style(i);
            for seg in series
                .points
                .split(|p| !self.usable(p))
                .filter(|g| !g.is_empty())
            {
                let px: Vec<_> = seg.iter().map(|&(a, b)| (f.x(&x, a), f.y(&y, b))).collect();
                if px.len() > 1 {
                    w!(s.0, r#"<polyline stroke="{color}"{dash} points=""#);
                    for (j, &(a, b)) in px.iter().enumerate() {
                        if self.step && j > 0 {
                            w!(s.0, "{a:.1},{:.1} ", px[j - 1].1);
                        }
                        w!(s.0, "{a:.1},{b:.1} ");
                    }
                    s.raw("\"/>");
                }
                if self.markers || px.len() == 1 {
                    px.into_iter().for_each(|p| s.circle(p, color));
                }
            }
        }
        s.raw("</g>");
        for (i, series) in self.series.iter().enumerate() {
            let (lx, ly) = f.legend_pos(i);
            let (color, dash) = style(i);
            let stroke = format!(r#"stroke="{color}" stroke-width="2"{dash}"#);
            s.line((lx, ly), (lx + 20.0, ly), &stroke);
            if self.markers {
                s.circle((lx + 10.0, ly), color);
            }
            s.text((lx + 26.0, ly + 4.0), "", &series.name);
        }
        s.close(&f)
    }
}

/// One named series of a [`BarChart`]: `values[i]` belongs to category `i`.
/// Missing or non-finite values (and non-positive ones on a log axis) leave
/// a gap in the group.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BarSeries {
    pub name: String,
    pub values: Vec<f64>,
}

/// Grouped bars: one group per category, one bar per series in each group.
///
/// On a linear axis bars grow from zero (zero is always in range, so bar
/// lengths stay comparable). Latencies often span orders of magnitude; with
/// `y_log` the axis has ticks at powers of ten and bars grow from its bottom.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub categories: Vec<String>,
    pub series: Vec<BarSeries>,
    pub y_range: Option<(f64, f64)>,
    pub y_log: bool,
}

impl BarChart {
    pub fn new(
        title: impl Into<String>,
        x_label: impl Into<String>,
        y_label: impl Into<String>,
    ) -> Self {
        Self {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            ..Self::default()
        }
    }

    pub fn categories<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.categories = names.into_iter().map(Into::into).collect();
        self
    }

    /// Appends a series with one value per category.
    pub fn series(
        mut self,
        name: impl Into<String>,
        values: impl IntoIterator<Item = f64>,
    ) -> Self {
        self.series.push(BarSeries {
            name: name.into(),
            values: values.into_iter().collect(),
        });
        self
    }

    pub fn y_range(mut self, lo: f64, hi: f64) -> Self {
        self.y_range = Some((lo, hi));
        self
    }

    pub fn y_log(mut self, on: bool) -> Self {
        self.y_log = on;
        self
    }
}

impl Chart for BarChart {
    fn to_svg(&self) -> String {
        let f = Frame::new(self.series.iter().map(|s| s.name.as_str()));
        let n = self.categories.len();
        let values = self.series.iter().flat_map(|s| s.values.iter().take(n));
        let y = Axis::new(values.copied(), self.y_range, self.y_log, true, 5);
        let mut s = Svg::open(&f, [&self.title, &self.x_label, &self.y_label], &y);
        let band = (f.right - f.left) / n.max(1) as f64;
        let bar = band * 0.8 / self.series.len().max(1) as f64;
        for (c, cat) in self.categories.iter().enumerate() {
            let cx = f.left + band * (c as f64 + 0.5);
            s.text((cx, f.bottom + 18.0), MIDDLE, cat);
        }
        let zero = if y.log {
            y.lo
        } else {
            0.0_f64.clamp(y.lo, y.hi)
        };
        let base = f.y(&y, zero);
        s.raw(r#"<g clip-path="url(#plot)">"#);
        for (i, series) in self.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            for (c, (&v, cat)) in series.values.iter().zip(&self.categories).enumerate() {
                if usable(v, y.log) {
                    let x0 = f.left + band * (c as f64 + 0.1) + bar * i as f64;
                    let (top, h, width) =
                        (f.y(&y, v).min(base), (f.y(&y, v) - base).abs(), bar * 0.92);
                    w!(
                        s.0,
                        r#"<rect x="{x0:.1}" y="{top:.1}" width="{width:.1}" height="{h:.1}" fill="{color}">"#
                    );
                    let (name, cat) = (escape(&series.name), escape(cat));
                    w!(s.0, "<title>{name} / {cat}: {}</title></rect>", fmt_si(v));
                }
            }
        }
        s.raw("</g>");
        for (i, series) in self.series.iter().enumerate() {
            let (lx, ly) = f.legend_pos(i);
            let color = PALETTE[i % PALETTE.len()];
            w!(
                s.0,
                r#"<rect x="{lx:.1}" y="{:.1}" width="14" height="10" fill="{color}"/>"#,
                ly - 5.0
            );
            s.text((lx + 20.0, ly + 4.0), "", &series.name);
        }
        s.close(&f)
    }
}

/// Escapes text for use in XML content and attribute values. Characters XML
/// 1.0 forbids outright (control characters other than tab, CR and LF) are
/// dropped, since no escape makes them legal.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c < ' ' && !matches!(c, '\t' | '\n' | '\r') => {}
            c => out.push(c),
        }
    }
    out
}

/// Short human-readable number for tick and value labels: at most four
/// significant digits with SI prefixes for large values (`1.5k`, `2M`),
/// plain decimals down to `0.001` and scientific notation below that.
pub fn fmt_si(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "inf" } else { "-inf" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    // Round to four significant digits first, so that 999_999 picks the
    // prefix of its rounded value ("1M", not "1000k").
    let v: f64 = format!("{v:.3e}").parse().unwrap_or(v);
    let a = v.abs();
    if !(1e-3..1e18).contains(&a) {
        let s = format!("{v:.2e}");
        let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
        return format!("{}e{exp}", trim_zeros(mantissa));
    }
    const PREFIXES: [(f64, &str); 5] =
        [(1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")];
    let (scaled, suffix) = PREFIXES
        .iter()
        .find(|(p, _)| a >= *p)
        .map_or((v, ""), |&(p, s)| (v / p, s));
    let decimals = (3 - scaled.abs().log10().floor() as i32).max(0) as usize;
    format!("{}{suffix}", trim_zeros(&format!("{scaled:.decimals$}")))
}

fn trim_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

/// Up to about `target` evenly spaced ticks inside `lo..=hi`, spaced 1, 2 or
/// 5 × 10ⁿ apart. Empty if the range is empty or not finite.
pub fn nice_ticks(lo: f64, hi: f64, target: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite() && lo < hi) {
        return Vec::new();
    }
    let target = target.max(1) as f64;
    linear_ticks(lo, hi, nice_step(hi / target - lo / target))
}

/// Powers of ten inside `lo..=hi` (thinned to at most about ten). A range
/// that holds fewer than two powers of ten falls back to [`nice_ticks`],
/// since a single tick cannot show the scale. Empty for invalid ranges.
pub fn log_ticks(lo: f64, hi: f64) -> Vec<f64> {
    if !(usable(lo, true) && usable(hi, true) && lo < hi) {
        return Vec::new();
    }
    let (d0, d1) = ((lo.log10() - 1e-9).ceil(), (hi.log10() + 1e-9).floor());
    if d1 - d0 < 1.0 {
        return nice_ticks(lo, hi, 5);
    }
    let stride = ((d1 - d0) / 10.0).ceil().max(1.0);
    let mut d = d0;
    let mut out = Vec::new();
    while d <= d1 {
        out.push(pow10(d as i32));
        d += stride;
    }
    out
}

/// A tick spacing `m × 10^e` kept in two parts so tick values are computed
/// as integers scaled once (`0.6`, not `0.6000000000000001`).
#[derive(Debug, Clone, Copy)]
struct Step {
    m: f64,
    e: i32,
}

impl Step {
    fn at(self, k: f64) -> f64 {
        let v = if self.e >= 0 {
            k * self.m * pow10(self.e)
        } else {
            k * self.m / pow10(-self.e)
        };
        v + 0.0 // normalises -0.0, which would print as "-0"
    }
}

/// The smallest 1, 2 or 5 × 10ⁿ that is at least `raw`.
fn nice_step(raw: f64) -> Step {
    if !(raw.is_finite() && raw > 0.0) {
        return Step { m: 1.0, e: 0 };
    }
    let e = raw.log10().floor() as i32;
    let f = raw / pow10(e);
    match [1.0, 2.0, 5.0].into_iter().find(|&m| f <= m * (1.0 + 1e-9)) {
        Some(m) => Step { m, e },
        None => Step { m: 1.0, e: e + 1 },
    }
}

fn linear_ticks(lo: f64, hi: f64, step: Step) -> Vec<f64> {
    let s = step.at(1.0);
    let (k1, mut k) = ((hi / s + 1e-9).floor(), (lo / s - 1e-9).ceil());
    let mut out = Vec::new();
    // The bound also stops the loop where `k + 1.0 == k` for huge `k`.
    while k <= k1 && out.len() <= 1000 {
        out.push(step.at(k));
        k += 1.0;
    }
    out
}

/// `10^e`, exact for the powers of ten that `f64` can represent exactly and
/// correctly rounded for negative exponents (`1.0 / 1000.0 == 0.001`).
fn pow10(e: i32) -> f64 {
    if e >= 0 {
        10f64.powi(e)
    } else {
        1.0 / 10f64.powi(-e)
    }
}

fn usable(v: f64, log: bool) -> bool {
    v.is_finite() && (!log || v > 0.0)
}

/// A resolved axis: its range, major ticks with their labels, and minor
/// gridlines (log axes only).
#[derive(Debug, Clone, PartialEq)]
struct Axis {
    lo: f64,
    hi: f64,
    log: bool,
    ticks: Vec<f64>,
    labels: Vec<String>,
    minor: Vec<f64>,
}

impl Axis {
    /// Resolves an axis from an explicit range (if valid) or from the data.
    /// Bar charts pass `include_zero` so linear bars grow from zero.
    fn new(
        data: impl IntoIterator<Item = f64>,
        fixed: Option<(f64, f64)>,
        log: bool,
        include_zero: bool,
        target: usize,
    ) -> Self {
        let target = target as f64;
        let valid = |&(a, b): &(f64, f64)| usable(a, log) && usable(b, log) && a < b;
        let (lo, hi, step) = match fixed.filter(valid) {
            // Divide first: `b - a` overflows for ±1e308.
            Some((a, b)) => (a, b, nice_step(b / target - a / target)),
            None => auto_range(data, log, include_zero, target),
        };
        let (ticks, labels, minor) = if log {
            let ticks = log_ticks(lo, hi);
            let (d0, d1) = (lo.log10().floor() as i32, hi.log10().floor() as i32);
            let decades = ticks.first().is_some_and(|t| t.log10().fract() == 0.0);
            let minor = (d0..=d1)
                .filter(|_| decades && d1 - d0 <= 6)
                .flat_map(|d| (2..10).map(move |j| f64::from(j) * pow10(d)))
                .filter(|&v| v > lo && v < hi)
                .collect();
            let labels = ticks.iter().map(|&t| fmt_si(t)).collect();
            (ticks, labels, minor)
        } else {
            let ticks = linear_ticks(lo, hi, step);
            // Decimals follow the tick spacing so that zoomed axes such as
            // 99.990..100 keep distinct labels; large values use SI prefixes.
            let si = step.e < -6 || ticks.iter().any(|t| t.abs() >= 1e4);
            let decimals = (-step.e).clamp(0, 9) as usize;
            let label = |&t: &f64| {
                if si {
                    fmt_si(t)
                } else {
                    format!("{t:.decimals$}")
                }
            };
            let labels = ticks.iter().map(label).collect();
            (ticks, labels, Vec::new())
        };
        Axis {
            lo,
            hi,
            log,
            ticks,
            labels,
            minor,
        }
    }

    /// Maps a value to the pixel range `p0..p1` (`p0` is where `lo` lands).
    /// Clamped so absurd outliers cannot produce coordinates renderers reject;
    /// they are clipped to the plot area anyway.
    fn map(&self, v: f64, p0: f64, p1: f64) -> f64 {
        // Halved so that differences of huge values cannot overflow.
        let t = |v: f64| if self.log { v.log10() } else { v / 2.0 };
        let frac = (t(v) - t(self.lo)) / (t(self.hi) - t(self.lo));
        (p0 + frac * (p1 - p0)).clamp(-1e4, 1e4)
    }
}

/// The range an axis gets from its data: widened to the enclosing ticks
/// (linear) or decades (log), padded when all values are equal, and a
/// default when there is no usable data at all.
fn auto_range(
    data: impl IntoIterator<Item = f64>,
    log: bool,
    include_zero: bool,
    target: f64,
) -> (f64, f64, Step) {
    let (mut lo, mut hi) = data
        .into_iter()
        .filter(|&v| usable(v, log))
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
            (a.min(v), b.max(v))
        });
    if lo > hi {
        (lo, hi) = if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log {
        // Start a decade below the smallest value so its bar stays visible.
        // Clamped to the decades an f64 can hold.
        let d0 = ((lo.log10() - 1e-9).ceil() - 1.0).clamp(-307.0, 307.0);
        let d1 = (hi.log10() - 1e-9).ceil().clamp(d0 + 1.0, 308.0);
        return (pow10(d0 as i32), pow10(d1 as i32), Step { m: 1.0, e: 0 });
    }
    if include_zero {
        (lo, hi) = (lo.min(0.0), hi.max(0.0));
    }
    if lo == hi {
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        (lo, hi) = (lo - pad, hi + pad);
    }
    let step = nice_step(hi / target - lo / target);
    let s = step.at(1.0);
    (
        step.at((lo / s + 1e-9).floor()),
        step.at((hi / s - 1e-9).ceil()),
        step,
    )
}

/// The plot area in pixels. The right margin grows with the longest legend
/// entry, so long series names do not overlap the data.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Frame {
    left: f64,
    top: f64,
    right: f64,
    bottom: f64,
}

impl Frame {
    fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Self {
        let longest = names.into_iter().map(|n| n.chars().count()).max();
        let legend = longest.map_or(0.0, |c| (40.0 + 7.0 * c as f64).min(260.0));
        Frame {
            left: 75.0,
            top: 45.0,
            right: WIDTH - 20.0 - legend,
            bottom: HEIGHT - 60.0,
        }
    }

    fn x(&self, axis: &Axis, v: f64) -> f64 {
        axis.map(v, self.left, self.right)
    }

    fn y(&self, axis: &Axis, v: f64) -> f64 {
        axis.map(v, self.bottom, self.top)
    }

    fn legend_pos(&self, i: usize) -> (f64, f64) {
        (self.right + 15.0, self.top + 8.0 + 18.0 * i as f64)
    }
}

/// Series `i`'s colour, plus a dash pattern once the palette has wrapped.
fn style(i: usize) -> (&'static str, &'static str) {
    let dashed = (i / PALETTE.len()) % 2 == 1;
    (
        PALETTE[i % PALETTE.len()],
        if dashed {
            r#" stroke-dasharray="6 3""#
        } else {
            ""
        },
    )
}

const MIDDLE: &str = r#"text-anchor="middle""#;
const GRID: &str = r##"stroke="#e4e4e4""##;

/// An SVG document being written; the helpers keep the drawing code short.
struct Svg(String);

impl Svg {
    /// Document header, title, axis labels and the y axis, drawn first so the
    /// data sits on top of the gridlines.
    fn open(f: &Frame, [title, x_label, y_label]: [&str; 3], y: &Axis) -> Self {
        let mut s = Svg(String::with_capacity(16 * 1024));
        s.raw("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        w!(
            s.0,
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
        );
        w!(
            s.0,
            r#"<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>"#
        );
        // The clip area overhangs the plot by a few pixels so that a line
        // sitting exactly on the range limit (100 % availability) or a marker
        // on an edge is drawn whole rather than cut in half.
        let (cx, cy, cw, ch) = (
            f.left - 4.0,
            f.top - 4.0,
            f.right - f.left + 8.0,
            f.bottom - f.top + 8.0,
        );
        let clip = format!(r#"<rect x="{cx:.1}" y="{cy:.1}" width="{cw:.1}" height="{ch:.1}"/>"#);
        w!(s.0, r#"<defs><clipPath id="plot">{clip}</clipPath></defs>"#);
        s.text(
            (WIDTH / 2.0, 26.0),
            r#"text-anchor="middle" font-size="16" font-weight="bold""#,
            title,
        );
        s.text(((f.left + f.right) / 2.0, HEIGHT - 14.0), MIDDLE, x_label);
        let mid = (f.top + f.bottom) / 2.0;
        s.text(
            (18.0, mid),
            &format!(r#"{MIDDLE} transform="rotate(-90 18 {mid:.1})""#),
            y_label,
        );
        for &v in &y.minor {
            s.line(
                (f.left, f.y(y, v)),
                (f.right, f.y(y, v)),
                r##"stroke="#f2f2f2""##,
            );
        }
        for (&t, label) in y.ticks.iter().zip(&y.labels) {
            let py = f.y(y, t);
            let zero = t == 0.0 && y.lo < 0.0;
            s.line(
                (f.left, py),
                (f.right, py),
                if zero { r##"stroke="#999999""## } else { GRID },
            );
            s.text((f.left - 6.0, py + 4.0), r#"text-anchor="end""#, label);
        }
        s
    }

    /// Axis lines on top of the data, then the closing tag.
    fn close(mut self, f: &Frame) -> String {
        let (l, t, b, r) = (f.left, f.top, f.bottom, f.right);
        w!(
            self.0,
            r##"<path d="M{l:.1} {t:.1}V{b:.1}H{r:.1}" fill="none" stroke="#333333"/></svg>"##
        );
        self.0.push('\n');
        self.0
    }

    fn raw(&mut self, s: &str) {
        self.0.push_str(s);
    }

    fn line(&mut self, (x1, y1): (f64, f64), (x2, y2): (f64, f64), attrs: &str) {
        w!(
            self.0,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" {attrs}/>"#
        );
    }

    fn circle(&mut self, (x, y): (f64, f64), color: &str) {
        w!(
            self.0,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{color}" stroke="none"/>"#
        );
    }

    fn text(&mut self, (x, y): (f64, f64), attrs: &str, content: &str) {
        w!(
            self.0,
            r#"<text x="{x:.1}" y="{y:.1}" {attrs}>{}</text>"#,
            escape(content)
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `svg` with a real XML tokenizer, checks that tags balance
    /// around a single root and that every `&` starts a predefined entity.
    fn assert_well_formed(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut roots = 0;
        for token in xmlparser::Tokenizer::from(svg) {
            match token.unwrap_or_else(|e| panic!("bad XML: {e}\n{svg}")) {
                xmlparser::Token::ElementStart { local, .. } => {
                    roots += usize::from(stack.is_empty());
                    stack.push(local.to_string());
                }
                xmlparser::Token::ElementEnd { end, .. } => match end {
                    xmlparser::ElementEnd::Open => {}
                    xmlparser::ElementEnd::Empty => {
                        stack.pop();
                    }
                    xmlparser::ElementEnd::Close(_, name) => {
                        assert_eq!(stack.pop().as_deref(), Some(name.as_str()));
                    }
                },
                _ => {}
            }
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
        assert_eq!(roots, 1);
        for (i, _) in svg.match_indices('&') {
            let rest = &svg[i..];
            assert!(
                ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;"]
                    .iter()
                    .any(|e| rest.starts_with(e)),
                "raw & at {i}"
            );
        }
        assert!(
            !svg.contains("NaN") && !svg.contains("inf\""),
            "non-finite number in output"
        );
    }

    fn sample_line() -> LineChart {
        LineChart::new("Availability <during> reclaim", "time (s)", "available (%)")
            .series(
                "GET",
                [(0.0, 100.0), (30.0, 98.5), (60.0, 100.0), (90.0, 99.0)],
            )
            .series("PUT & GET", [(0.0, 97.0), (45.0, 96.0), (90.0, 100.0)])
            .y_range(95.0, 100.0)
            .markers(true)
            .step(true)
    }

    fn sample_bars() -> BarChart {
        BarChart::new("GET latency", "object size", "latency (ms)")
            .categories(["1 KiB", "1 MiB", "100 MiB"])
            .series("infinicache GET p50", [0.9, 12.0, 850.0])
            .series("redis GET p50", [0.2, 3.5, 420.0])
            .y_log(true)
    }

    #[test]
    fn linear_ticks_are_nice() {
        assert_eq!(nice_ticks(0.0, 1.0, 5), [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]);
        assert_eq!(nice_ticks(0.0, 97.3, 5), [0.0, 20.0, 40.0, 60.0, 80.0]);
        assert_eq!(
            nice_ticks(95.0, 100.0, 5),
            [95.0, 96.0, 97.0, 98.0, 99.0, 100.0]
        );
        assert_eq!(nice_ticks(-3.0, 7.0, 5), [-2.0, 0.0, 2.0, 4.0, 6.0]);
        assert_eq!(nice_ticks(0.0, 0.003, 3), [0.0, 0.001, 0.002, 0.003]);
        assert!(nice_ticks(1.0, 1.0, 5).is_empty() && nice_ticks(0.0, f64::NAN, 5).is_empty());
        // Automatic ranges widen to the enclosing ticks.
        let axis = Axis::new([0.0, 97.3], None, false, false, 5);
        assert_eq!((axis.lo, axis.hi), (0.0, 100.0));
        assert_eq!(axis.labels, ["0", "20", "40", "60", "80", "100"]);
        // Zoomed percentage axes keep distinct labels.
        let axis = Axis::new([], Some((99.99, 100.0)), false, false, 5);
        assert_eq!(axis.labels.first().map(String::as_str), Some("99.990"));
        assert_eq!(axis.labels.last().map(String::as_str), Some("100.000"));
    }

    #[test]
    fn log_ticks_are_powers_of_ten() {
        assert_eq!(
            log_ticks(1e-3, 1e4),
            [1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0, 1e3, 1e4]
        );
        assert_eq!(log_ticks(0.5, 2000.0), [1.0, 10.0, 100.0, 1000.0]);
        assert_eq!(log_ticks(1.0, 1e30).len(), 11); // thinned to every third decade
        assert_eq!(log_ticks(200.0, 800.0), [200.0, 400.0, 600.0, 800.0]);
        assert!(log_ticks(0.0, 10.0).is_empty());
        let axis = Axis::new([0.9, 850.0, -1.0, 0.0], None, true, true, 5);
        assert_eq!((axis.lo, axis.hi), (0.1, 1000.0));
        assert_eq!(axis.labels, ["0.1", "1", "10", "100", "1k"]);
        assert!(axis.minor.contains(&200.0) && !axis.minor.contains(&1000.0));
    }

    #[test]
    fn range_ends_land_on_plot_edges() {
        let f = Frame::new(["a"]);
        let x = Axis::new([], Some((0.0, 10.0)), false, false, 8);
        let y = Axis::new([], Some((95.0, 100.0)), false, false, 5);
        assert_eq!(
            (f.x(&x, 0.0), f.x(&x, 10.0), f.x(&x, 5.0)),
            (f.left, f.right, (f.left + f.right) / 2.0)
        );
        assert_eq!((f.y(&y, 95.0), f.y(&y, 100.0)), (f.bottom, f.top));
        let log = Axis::new([], Some((1.0, 100.0)), true, false, 5);
        assert!((f.y(&log, 10.0) - (f.top + f.bottom) / 2.0).abs() < 1e-9);

        let chart = LineChart::new("t", "x", "y")
            .series("a", [(0.0, 95.0), (10.0, 100.0)])
            .x_range(0.0, 10.0)
            .y_range(95.0, 100.0);
        let svg = chart.to_svg();
        let expected = format!(
            "points=\"{:.1},{:.1} {:.1},{:.1} \"",
            f.left, f.bottom, f.right, f.top
        );
        assert!(svg.contains(&expected), "{expected} not in {svg}");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape(r#"<a & b> "c" 'd'"#),
            "&lt;a &amp; b&gt; &quot;c&quot; &apos;d&apos;"
        );
        assert_eq!(escape("bell\u{7}tab\t"), "belltab\t");
        let name = r#"p50 <GET> & "PUT""#;
        let line = LineChart::new("a<b", "x&y", "\"y\"")
            .series(name, [(0.0, 1.0), (1.0, 2.0)])
            .to_svg();
        let bars = BarChart::new("t", "x", "y")
            .categories(["<1 KiB"])
            .series(name, [1.0])
            .to_svg();
        for svg in [&line, &bars] {
            assert_well_formed(svg);
            assert!(svg.contains("p50 &lt;GET&gt; &amp; &quot;PUT&quot;"));
        }
        assert!(line.contains(">a&lt;b<") && bars.contains("&lt;1 KiB"));
    }

    #[test]
    fn non_finite_points_are_skipped() {
        let nan = [
            (0.0, 1.0),
            (1.0, f64::NAN),
            (2.0, 3.0),
            (3.0, 2.0),
            (f64::INFINITY, 1e9),
        ];
        let chart = LineChart::new("t", "x", "y").series("a", nan);
        let svg = chart.to_svg();
        assert_well_formed(&svg);
        // The NaN splits the line: an isolated dot, then a two-point line.
        assert_eq!(svg.matches("<polyline").count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        // The infinite-x point does not stretch the y axis to 1e9.
        assert!(svg.contains(">3.0<") && !svg.contains("1e9") && !svg.contains(">10<"));
        let bars = BarChart::new("t", "x", "y")
            .categories(["a", "b"])
            .series("s", [f64::NAN, 0.0])
            .y_log(true);
        let svg = bars.to_svg();
        assert_well_formed(&svg);
        assert_eq!(svg.matches("<rect").count(), 3); // background, clip, legend swatch
    }

    #[test]
    fn degenerate_charts_render_axes() {
        let charts: Vec<Box<dyn Chart>> = vec![
            Box::new(LineChart::new("", "", "")),
            Box::new(LineChart::new("t", "x", "y").series("empty", [])),
            Box::new(LineChart::new("t", "x", "y").series("one", [(5.0, 5.0)])),
            Box::new(LineChart::new("t", "x", "y").series("flat", [(0.0, 0.0), (1.0, 0.0)])),
            Box::new(
                LineChart::new("t", "x", "y")
                    .series("neg", [(-5.0, -2.0), (3.0, -0.5)])
                    .y_range(3.0, 1.0),
            ),
            Box::new(LineChart::new("t", "x", "y").series("huge", [(0.0, -1e308), (1.0, 1e308)])),
            Box::new(
                LineChart::new("t", "x", "y")
                    .series("wide", [(0.0, 1e-320), (1.0, 1e308)])
                    .y_log(true),
            ),
            Box::new(BarChart::new("t", "x", "y")),
            Box::new(
                BarChart::new("t", "x", "y")
                    .categories(["a"])
                    .series("neg", [-3.0])
                    .y_log(true),
            ),
            Box::new(
                BarChart::new("t", "x", "y")
                    .categories(["a", "b"])
                    .series("s", [-3.0, 4.0]),
            ),
        ];
        for chart in &charts {
            let svg = chart.to_svg();
            assert_well_formed(&svg);
            assert!(svg.contains(r##"stroke="#333333""##), "no axes in {svg}");
            assert!(svg.matches("<text").count() >= 5, "too few labels in {svg}");
        }
        let single = Axis::new([5.0], None, false, false, 5);
        assert!(single.lo < 5.0 && single.hi > 5.0 && single.ticks.len() >= 2);
        let neg = Axis::new([-3.0, 4.0], None, false, true, 5);
        assert!(neg.lo <= -3.0 && neg.hi >= 4.0 && neg.ticks.contains(&0.0));
    }

    #[test]
    fn si_labels() {
        let cases = [
            (0.0, "0"),
            (1500.0, "1.5k"),
            (2e6, "2M"),
            (0.001, "0.001"),
            (0.25, "0.25"),
            (97.3, "97.3"),
            (-42.0, "-42"),
            (1e-4, "1e-4"),
            (2.5e-7, "2.5e-7"),
            (3e9, "3G"),
            (999_999.0, "1M"),
            (1234.56, "1.235k"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-inf"),
        ];
        for (v, s) in cases {
            assert_eq!(fmt_si(v), s, "{v}");
        }
    }

    #[test]
    fn writes_sample_charts() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let line = dir.path().join("charts/availability.svg");
        let bars = dir.path().join("charts/latency.svg");
        write_svg(&line, &sample_line())?;
        write_svg(&bars, &sample_bars())?;
        for path in [line, bars] {
            let svg = std::fs::read_to_string(&path)?;
            assert_well_formed(&svg);
            assert!(svg.contains("<svg ") && svg.matches("<text").count() > 10);
        }
        Ok(())
    }
}
