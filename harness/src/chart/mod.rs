//! Charts as files: PNG or SVG (chosen by extension), drawn with plotters and the
//! embedded DejaVu Sans font, so no system font or fontconfig is needed anywhere.
//!
//! Each chart kind is a plain data struct implementing [`Chart`]; the drawing code is
//! generic over the backend, so the PNG and the SVG of a chart are the same drawing.

pub mod bars;
pub mod heatmap;
pub mod lines;
pub mod stacked;

use std::fmt::Display;
use std::path::Path;
use std::sync::Once;

use anyhow::{Result, anyhow, bail};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::FontStyle;

pub use bars::{BarChart, BarGroup};
pub use heatmap::Heatmap;
pub use lines::{LegendCorner, LineChart, Marker, Series};
pub use stacked::{StackedBars, StackedGroup};

/// Family name under which the embedded font is registered; every text style uses it.
pub const FONT: &str = "sans-serif";

/// Baseline bars.
pub const BASE_COLOR: RGBColor = RGBColor(96, 128, 176);
/// Candidate bars.
pub const CAND_COLOR: RGBColor = RGBColor(234, 140, 48);
/// Good news (improved).
pub const GOOD_COLOR: RGBColor = RGBColor(24, 128, 56);
/// Bad news (regressed, failed, change points).
pub const BAD_COLOR: RGBColor = RGBColor(200, 36, 36);
/// Neither.
pub const NEUTRAL_COLOR: RGBColor = RGBColor(80, 80, 80);

/// Line colours (the Tableau 10 hues), cycled per series.
pub const SERIES_COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
];

/// How a note (a diff label) should read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Good,
    Bad,
    Neutral,
}

impl Tone {
    pub fn color(self) -> RGBColor {
        match self {
            Tone::Good => GOOD_COLOR,
            Tone::Bad => BAD_COLOR,
            Tone::Neutral => NEUTRAL_COLOR,
        }
    }
}

/// A chart kind: a pixel size and a drawing that works on any plotters backend.
pub trait Chart {
    /// Width and height in pixels (SVG user units).
    fn size(&self) -> (u32, u32);
    /// Draws the whole chart onto `root`, background included.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()>;
}

/// Output format of a chart file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    Png,
    Svg,
}

impl ImageFormat {
    /// The format named by a path's extension (`.png` or `.svg`, any case).
    pub fn from_path(path: &Path) -> Result<ImageFormat> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("png") => Ok(ImageFormat::Png),
            Some("svg") => Ok(ImageFormat::Svg),
            _ => bail!("chart file '{}' must end in .png or .svg", path.display()),
        }
    }
}

/// Registers the embedded font once per process. plotters' ab_glyph text looks fonts
/// up by family and style in a global table, so this must precede any drawing.
pub fn register_fonts() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bytes are DejaVu Sans as shipped by the crate: parsing cannot fail, and if
        // it did, text would be missing rather than the program stopping.
        let _ = plotters::style::register_font(FONT, FontStyle::Normal, dejavu::sans::regular());
        let _ = plotters::style::register_font(FONT, FontStyle::Bold, dejavu::sans::bold());
    });
}

/// Writes `chart` to `path` as PNG or SVG according to the extension.
pub fn save(chart: &impl Chart, path: &Path) -> Result<()> {
    let format = ImageFormat::from_path(path)?;
    register_fonts();
    let size = chart.size();
    match format {
        ImageFormat::Png => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            chart.draw(&root)?;
            root.present()
                .map_err(|e| anyhow!("writing '{}': {e}", path.display()))?;
        }
        ImageFormat::Svg => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            chart.draw(&root)?;
            root.present()
                .map_err(|e| anyhow!("writing '{}': {e}", path.display()))?;
        }
    }
    Ok(())
}

/// The chart as an SVG document in memory.
pub fn svg_string(chart: &impl Chart) -> Result<String> {
    register_fonts();
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, chart.size()).into_drawing_area();
        chart.draw(&root)?;
        root.present().map_err(|e| anyhow!("drawing SVG: {e}"))?;
    }
    Ok(out)
}

/// Turns a plotters error (generic over the backend's error type) into anyhow.
pub(crate) trait DrawResult<T> {
    fn drawing(self) -> Result<T>;
}

impl<T, E: Display> DrawResult<T> for std::result::Result<T, E> {
    fn drawing(self) -> Result<T> {
        self.map_err(|e| anyhow!("drawing chart: {e}"))
    }
}

/// A text style in the embedded font.
pub(crate) fn font(size: f64) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font())
}

/// A text style in the embedded font and `color`.
pub(crate) fn font_colored(size: f64, color: RGBColor) -> TextStyle<'static> {
    let mut style = font(size);
    style.color = color.to_backend_color();
    style
}

/// Shortens `text` with "…" until it fits `max_px` at `style` (by the font's metrics).
pub(crate) fn fit_text<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
    max_px: u32,
) -> String {
    let fits = |s: &str| {
        area.estimate_text_size(s, style)
            .map(|(w, _)| w <= max_px)
            .unwrap_or(true)
    };
    if fits(text) {
        return text.to_string();
    }
    let chars: Vec<char> = text.chars().collect();
    for keep in (1..chars.len()).rev() {
        let s: String = chars[..keep].iter().collect::<String>() + "…";
        if fits(&s) {
            return s;
        }
    }
    "…".to_string()
}

/// A round upper bound for an axis: `max` times `headroom`, or 1 when there is no data.
pub(crate) fn axis_top(max: f64, headroom: f64) -> f64 {
    if max.is_finite() && max > 0.0 {
        max * headroom
    } else {
        1.0
    }
}

/// The axes two grouped-bar charts share ([`BarChart`], [`StackedBars`]): `groups` slots on x
/// with no x mesh and no x tick labels (each chart writes its own group labels under the
/// axis), 0..`ymax` on y with eight labelled lines.
pub(crate) struct GroupAxes<'a> {
    pub title: &'a str,
    pub title_px: f64,
    pub x_label_px: u32,
    pub x_desc: &'a str,
    pub y_desc: &'a str,
    pub groups: usize,
    pub ymax: f64,
}

impl GroupAxes<'_> {
    pub(crate) fn draw<'b, DB: DrawingBackend>(
        &self,
        area: &'b DrawingArea<DB, Shift>,
    ) -> Result<ChartContext<'b, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>> {
        let mut chart = ChartBuilder::on(area)
            .caption(self.title, font(self.title_px))
            .margin(14)
            .x_label_area_size(self.x_label_px)
            .y_label_area_size(78)
            .build_cartesian_2d(0.0..self.groups as f64, 0.0..self.ymax)
            .drawing()?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(0)
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .y_label_style(font(14.0))
            .axis_desc_style(font(15.0))
            .y_labels(8)
            .y_label_formatter(&|v: &f64| heatmap::format_value(*v))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()
            .drawing()?;
        Ok(chart)
    }
}
