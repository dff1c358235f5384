//! Line charts: t/s against threads (one line per ISA), and t/s over history (one line
//! per series) with change points marked by dashed vertical lines and their step size.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    BAD_COLOR, Chart, DrawResult, GOOD_COLOR, SERIES_COLORS, axis_top, font, font_colored,
};

/// One line: points (x, y, ±error) in x order.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64, f64)>,
}

/// A vertical marker (a change point) at `x`, with a short label ("-12.3%").
#[derive(Debug, Clone, PartialEq)]
pub struct Marker {
    pub x: f64,
    pub label: String,
    /// Whether the change was for the better (colours the marker).
    pub good: bool,
}

/// Lines with optional markers.
#[derive(Debug, Clone, PartialEq)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    pub markers: Vec<Marker>,
    /// Tick labels for integer x positions (dates or commits on a history chart);
    /// empty = plain numbers.
    pub x_ticks: Vec<String>,
    /// Only integer x positions get ticks (threads, run numbers).
    pub integer_x: bool,
    /// Where the legend goes: the corner the data leave empty (upper left for rising
    /// scaling lines, lower left for history lines that sit high on a zero-based axis).
    pub legend: LegendCorner,
}

/// A corner of the plot for the legend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegendCorner {
    UpperLeft,
    LowerLeft,
    LowerRight,
}

impl Chart for LineChart {
    fn size(&self) -> (u32, u32) {
        (900, 540)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).drawing()?;
        let pts = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut top) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
        for &(x, y, e) in pts {
            x0 = x0.min(x);
            x1 = x1.max(x);
            top = top.max(y + e.max(0.0));
        }
        if !x0.is_finite() {
            (x0, x1) = (0.0, 1.0);
        }
        let pad = ((x1 - x0) * 0.05).max(0.5);
        let (x0, x1) = (x0 - pad, x1 + pad);
        // Headroom above the data for the legend and the marker labels.
        let ymax = axis_top(top, 1.3);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, font(22.0))
            .margin(14)
            .x_label_area_size(56)
            .y_label_area_size(78)
            .build_cartesian_2d(x0..x1, 0.0..ymax)
            .drawing()?;
        let ticks = self.x_ticks.clone();
        let integer = self.integer_x;
        let xf = move |v: &f64| {
            let r = v.round();
            if integer && (v - r).abs() > 1e-6 {
                return String::new();
            }
            if !ticks.is_empty() {
                return if r >= 0.0 {
                    ticks.get(r as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                };
            }
            if integer {
                format!("{r:.0}")
            } else {
                format!("{v}")
            }
        };
        let span = (x1 - x0).round() as usize;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc(&self.y_label)
            .x_labels(if integer { span.clamp(2, 12) } else { 10 })
            .x_label_formatter(&xf)
            .label_style(font(14.0))
            .axis_desc_style(font(15.0))
            .y_labels(8)
            .y_label_formatter(&|v: &f64| super::heatmap::format_value(*v))
            .light_line_style(TRANSPARENT)
            .bold_line_style(RGBColor(225, 225, 225))
            .draw()
            .drawing()?;

        for (i, s) in self.series.iter().enumerate() {
            let color = SERIES_COLORS[i % SERIES_COLORS.len()];
            chart
                .draw_series(LineSeries::new(
                    s.points.iter().map(|&(x, y, _)| (x, y)),
                    color.stroke_width(2),
                ))
                .drawing()?
                .label(&s.name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], color.stroke_width(3))
                });
            chart
                .draw_series(
                    s.points
                        .iter()
                        .map(|&(x, y, _)| Circle::new((x, y), 4, color.filled())),
                )
                .drawing()?;
            chart
                .draw_series(s.points.iter().filter(|p| p.2 > 0.0).map(|&(x, y, e)| {
                    ErrorBar::new_vertical(x, y - e, y, y + e, color.stroke_width(1), 8)
                }))
                .drawing()?;
        }

        // Change points: dashed vertical line, label near the top, labels alternating
        // between two heights so neighbours do not overprint each other.
        for (i, m) in self.markers.iter().enumerate() {
            let color = if m.good { GOOD_COLOR } else { BAD_COLOR };
            let dashes = 24;
            chart
                .draw_series((0..dashes).filter(|d| d % 2 == 0).map(|d| {
                    let a = ymax * d as f64 / dashes as f64;
                    let b = ymax * (d + 1) as f64 / dashes as f64;
                    PathElement::new([(m.x, a), (m.x, b)], color.stroke_width(2))
                }))
                .drawing()?;
            let y = if i % 2 == 0 { ymax * 0.97 } else { ymax * 0.90 };
            let style = font_colored(13.0, color).pos(Pos::new(HPos::Left, VPos::Top));
            chart
                .plotting_area()
                .draw(&(EmptyElement::at((m.x, y)) + Text::new(m.label.clone(), (5, 0), style)))
                .drawing()?;
        }

        if !self.series.is_empty() {
            chart
                .configure_series_labels()
                .position(match self.legend {
                    LegendCorner::UpperLeft => SeriesLabelPosition::UpperLeft,
                    LegendCorner::LowerLeft => SeriesLabelPosition::LowerLeft,
                    LegendCorner::LowerRight => SeriesLabelPosition::LowerRight,
                })
                .label_font(font(14.0))
                .background_style(WHITE.mix(0.9))
                .border_style(RGBColor(160, 160, 160))
                .draw()
                .drawing()?;
        }
        Ok(())
    }
}
