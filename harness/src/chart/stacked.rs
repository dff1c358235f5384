//! Stacked bars: for each test, the baseline's and the candidate's time split into
//! segments (ops), side by side, one colour per segment and a legend naming them.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Chart, DrawResult, GroupAxes, SERIES_COLORS, axis_top, fit_text, font, font_colored};

/// One test: the segment values of each side, in [`StackedBars::segments`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct StackedGroup {
    pub label: String,
    pub base: Vec<f64>,
    pub cand: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StackedBars {
    pub title: String,
    pub y_label: String,
    pub base_name: String,
    pub cand_name: String,
    /// Segment names, bottom first.
    pub segments: Vec<String>,
    pub groups: Vec<StackedGroup>,
}

/// Pixels per test: two bars and their side labels.
const GROUP_PX: u32 = 220;
/// Width of the legend column.
const LEGEND_PX: u32 = 220;

/// The colour of segment `i`: the series colours, then lighter variants of them.
fn segment_color(i: usize) -> RGBColor {
    let c = SERIES_COLORS[i % SERIES_COLORS.len()];
    let lighten = (i / SERIES_COLORS.len()) as u32 * 60;
    let l = |v: u8| (u32::from(v) + lighten).min(235) as u8;
    RGBColor(l(c.0), l(c.1), l(c.2))
}

impl Chart for StackedBars {
    fn size(&self) -> (u32, u32) {
        let w = (self.groups.len() as u32).saturating_mul(GROUP_PX) + 140 + LEGEND_PX;
        let h = (self.segments.len() as u32 * 22 + 160).max(520);
        (w.clamp(720, 8000), h.min(2000))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).drawing()?;
        let (w, _) = root.dim_in_pixel();
        let (plot, legend) = root.split_horizontally(w.saturating_sub(LEGEND_PX));
        let n = self.groups.len().max(1);
        let total = |v: &[f64]| v.iter().map(|x| x.max(0.0)).sum::<f64>();
        let top = self
            .groups
            .iter()
            .flat_map(|g| [total(&g.base), total(&g.cand)])
            .fold(0.0, f64::max);
        let ymax = axis_top(top, 1.12);
        let mut chart = GroupAxes {
            title: &self.title,
            title_px: 20.0,
            x_label_px: 60,
            x_desc: "test",
            y_desc: &self.y_label,
            groups: n,
            ymax,
        }
        .draw(&plot)?;

        let mut rects = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            for (values, x0, x1) in [
                (&g.base, i as f64 + 0.12, i as f64 + 0.47),
                (&g.cand, i as f64 + 0.53, i as f64 + 0.88),
            ] {
                let mut y = 0.0;
                for (s, v) in values.iter().enumerate() {
                    let v = v.max(0.0);
                    if v > 0.0 {
                        rects.push(Rectangle::new(
                            [(x0, y), (x1, y + v)],
                            segment_color(s).filled(),
                        ));
                        rects.push(Rectangle::new(
                            [(x0, y), (x1, y + v)],
                            WHITE.stroke_width(1),
                        ));
                    }
                    y += v;
                }
            }
        }
        chart.draw_series(rects).drawing()?;

        // Side names under each bar, the test under the pair.
        let plot_px = chart.plotting_area().dim_in_pixel().0;
        let bar_px = (plot_px / n as u32 / 2).saturating_sub(6).max(20);
        let side_style =
            font_colored(12.0, super::NEUTRAL_COLOR).pos(Pos::new(HPos::Center, VPos::Top));
        let label_style = font(14.0).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, g) in self.groups.iter().enumerate() {
            for (name, x) in [
                (&self.base_name, i as f64 + 0.295),
                (&self.cand_name, i as f64 + 0.705),
            ] {
                let text = fit_text(root, name, &side_style, bar_px);
                chart
                    .plotting_area()
                    .draw(
                        &(EmptyElement::at((x, 0.0)) + Text::new(text, (0, 6), side_style.clone())),
                    )
                    .drawing()?;
            }
            let label = fit_text(root, &g.label, &label_style, bar_px * 2);
            chart
                .plotting_area()
                .draw(
                    &(EmptyElement::at((i as f64 + 0.5, 0.0))
                        + Text::new(label, (0, 26), label_style.clone())),
                )
                .drawing()?;
        }

        // Legend: top segment first, as the bars read from the top.
        for (row, s) in (0..self.segments.len()).rev().enumerate() {
            let y = 50 + row as i32 * 22;
            legend
                .draw(&Rectangle::new(
                    [(8, y), (24, y + 14)],
                    segment_color(s).filled(),
                ))
                .drawing()?;
            let style = font(13.0).pos(Pos::new(HPos::Left, VPos::Top));
            let text = fit_text(root, &self.segments[s], &style, LEGEND_PX - 40);
            legend.draw(&Text::new(text, (30, y), style)).drawing()?;
        }
        Ok(())
    }
}
