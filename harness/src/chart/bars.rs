//! Grouped bars: baseline vs candidate t/s per test and configuration, with ±1 stddev
//! error bars and the change written above each group in the verdict's colour.

use anyhow::Result;
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{
    BASE_COLOR, CAND_COLOR, Chart, DrawResult, GroupAxes, Tone, axis_top, fit_text, font,
    font_colored,
};

/// One group: two bars (either may be missing when that side did not run ok).
#[derive(Debug, Clone, PartialEq)]
pub struct BarGroup {
    /// First label line (the test, "pp512").
    pub label: String,
    /// Second label line (the configuration, "threads=2").
    pub sublabel: String,
    /// (mean, stddev) of the baseline, `None` when it did not run ok.
    pub base: Option<(f64, f64)>,
    pub cand: Option<(f64, f64)>,
    /// Text above the group ("-10.3%", "failed").
    pub note: String,
    pub tone: Tone,
}

/// Baseline vs candidate bars.
#[derive(Debug, Clone, PartialEq)]
pub struct BarChart {
    pub title: String,
    pub y_label: String,
    pub base_name: String,
    pub cand_name: String,
    pub groups: Vec<BarGroup>,
}

/// Pixels per group: room for two bars and a label of ~16 characters.
const GROUP_PX: u32 = 130;

impl Chart for BarChart {
    fn size(&self) -> (u32, u32) {
        let w = (self.groups.len() as u32).saturating_mul(GROUP_PX) + 160;
        (w.clamp(720, 8000), 520)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).drawing()?;
        let n = self.groups.len().max(1);
        let top = self
            .groups
            .iter()
            .flat_map(|g| [g.base, g.cand])
            .flatten()
            .map(|(m, s)| m + s.max(0.0))
            .fold(0.0, f64::max);
        // Headroom for the notes above the bars and the legend in the corner.
        let ymax = axis_top(top, 1.45);
        // Group labels are drawn below, two lines each, centred on the groups.
        let mut chart = GroupAxes {
            title: &self.title,
            title_px: 22.0,
            x_label_px: 88,
            x_desc: "test, configuration",
            y_desc: &self.y_label,
            groups: n,
            ymax,
        }
        .draw(root)?;

        let bar = |x0: f64, x1: f64, m: f64, color: RGBColor| {
            Rectangle::new([(x0, 0.0), (x1, m)], color.filled())
        };
        let base_bars: Vec<_> = self
            .groups
            .iter()
            .enumerate()
            .filter_map(|(i, g)| {
                g.base
                    .map(|(m, _)| bar(i as f64 + 0.14, i as f64 + 0.49, m, BASE_COLOR))
            })
            .collect();
        let cand_bars: Vec<_> = self
            .groups
            .iter()
            .enumerate()
            .filter_map(|(i, g)| {
                g.cand
                    .map(|(m, _)| bar(i as f64 + 0.51, i as f64 + 0.86, m, CAND_COLOR))
            })
            .collect();
        chart
            .draw_series(base_bars)
            .drawing()?
            .label(&self.base_name)
            .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], BASE_COLOR.filled()));
        chart
            .draw_series(cand_bars)
            .drawing()?
            .label(&self.cand_name)
            .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 14, y + 6)], CAND_COLOR.filled()));

        let mut errors = Vec::new();
        for (i, g) in self.groups.iter().enumerate() {
            for (side, x) in [(g.base, i as f64 + 0.315), (g.cand, i as f64 + 0.685)] {
                if let Some((m, s)) = side
                    && s > 0.0
                {
                    // Whiskers only: a marker at the mean would hide small spreads.
                    let (lo, hi, w) = (m - s, m + s, 0.05);
                    errors.push(PathElement::new([(x, lo), (x, hi)], BLACK.stroke_width(1)));
                    errors.push(PathElement::new(
                        [(x - w, lo), (x + w, lo)],
                        BLACK.stroke_width(1),
                    ));
                    errors.push(PathElement::new(
                        [(x - w, hi), (x + w, hi)],
                        BLACK.stroke_width(1),
                    ));
                }
            }
        }
        chart.draw_series(errors).drawing()?;

        // Notes above each group, and "n/a" where a side has no bar.
        let plot_px = chart.plotting_area().dim_in_pixel().0;
        let group_px = (plot_px / n as u32).saturating_sub(8).max(20);
        let note_style =
            |tone: Tone| font_colored(14.0, tone.color()).pos(Pos::new(HPos::Center, VPos::Bottom));
        for (i, g) in self.groups.iter().enumerate() {
            let high = [g.base, g.cand]
                .iter()
                .flatten()
                .map(|(m, s)| m + s.max(0.0))
                .fold(0.0, f64::max);
            let style = note_style(g.tone);
            let text = fit_text(root, &g.note, &style, group_px);
            chart
                .plotting_area()
                .draw(&(EmptyElement::at((i as f64 + 0.5, high)) + Text::new(text, (0, -6), style)))
                .drawing()?;
            for (side, x) in [(g.base, i as f64 + 0.315), (g.cand, i as f64 + 0.685)] {
                if side.is_none() {
                    let style = font_colored(11.0, super::NEUTRAL_COLOR)
                        .pos(Pos::new(HPos::Center, VPos::Bottom));
                    chart
                        .plotting_area()
                        .draw(&(EmptyElement::at((x, 0.0)) + Text::new("n/a", (0, -3), style)))
                        .drawing()?;
                }
            }
        }

        // Two-line group labels under the axis, each shortened to its group's width.
        let label_style = font(14.0).pos(Pos::new(HPos::Center, VPos::Top));
        let sub_style =
            font_colored(12.0, super::NEUTRAL_COLOR).pos(Pos::new(HPos::Center, VPos::Top));
        for (i, g) in self.groups.iter().enumerate() {
            let at = (i as f64 + 0.5, 0.0);
            let label = fit_text(root, &g.label, &label_style, group_px);
            let sub = fit_text(root, &g.sublabel, &sub_style, group_px);
            chart
                .plotting_area()
                .draw(&(EmptyElement::at(at) + Text::new(label, (0, 10), label_style.clone())))
                .drawing()?;
            chart
                .plotting_area()
                .draw(&(EmptyElement::at(at) + Text::new(sub, (0, 30), sub_style.clone())))
                .drawing()?;
        }

        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font(font(14.0))
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(160, 160, 160))
            .draw()
            .drawing()?;
        Ok(())
    }
}
