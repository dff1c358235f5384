//! Heatmap of t/s over tile sizes: one cell per M×N, coloured on a viridis-like scale
//! with the value written in it, and a colour bar with the scale's units.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Chart, DrawResult, fit_text, font, font_colored};

/// Cells over M (rows, bottom to top) × N (columns, left to right).
#[derive(Debug, Clone, PartialEq)]
pub struct Heatmap {
    pub title: String,
    /// Units of the values, for the colour bar ("tokens/s").
    pub value_label: String,
    /// Tile N values (columns), ascending.
    pub n_values: Vec<u32>,
    /// Tile M values (rows), ascending.
    pub m_values: Vec<u32>,
    /// `cells[row][col]`: the value for (m_values[row], n_values[col]), if measured.
    pub cells: Vec<Vec<Option<f64>>>,
}

/// Parses a tile "MxNxK" (also "MxN") into (m, n, k); k is 0 when absent.
pub fn parse_tile(tile: &str) -> Result<(u32, u32, u32)> {
    let parts: Vec<&str> = tile.trim().split(['x', 'X']).collect();
    let num = |s: &str| s.trim().parse::<u32>().ok();
    match parts.as_slice() {
        [m, n] => {
            if let (Some(m), Some(n)) = (num(m), num(n)) {
                return Ok((m, n, 0));
            }
        }
        [m, n, k] => {
            if let (Some(m), Some(n), Some(k)) = (num(m), num(n), num(k)) {
                return Ok((m, n, k));
            }
        }
        _ => {}
    }
    bail!("bad tile '{tile}': expected MxNxK, e.g. 16x16x32")
}

impl Heatmap {
    /// Builds the grid from (tile, value) pairs. When several values land on one M×N
    /// cell (different K, repeated runs), the cell shows the best (largest), and the
    /// title says so, since "how fast can this M×N go" is the question a heatmap answers.
    pub fn from_tiles(title: &str, value_label: &str, points: &[(String, f64)]) -> Result<Heatmap> {
        let mut best: BTreeMap<(u32, u32), f64> = BTreeMap::new();
        let mut ks = std::collections::BTreeSet::new();
        let mut dup = false;
        for (tile, v) in points {
            let (m, n, k) = parse_tile(tile)?;
            ks.insert(k);
            let e = best.entry((m, n)).or_insert(f64::NEG_INFINITY);
            if e.is_finite() {
                dup = true;
            }
            *e = e.max(*v);
        }
        if best.is_empty() {
            bail!("no tiles to draw a heatmap of");
        }
        let mut m_values: Vec<u32> = best.keys().map(|k| k.0).collect();
        let mut n_values: Vec<u32> = best.keys().map(|k| k.1).collect();
        m_values.dedup();
        n_values.sort_unstable();
        n_values.dedup();
        let cells = m_values
            .iter()
            .map(|m| {
                n_values
                    .iter()
                    .map(|n| best.get(&(*m, *n)).copied())
                    .collect()
            })
            .collect();
        let title = if dup && ks.len() > 1 {
            format!("{title} (best over K)")
        } else if dup {
            format!("{title} (best of repeats)")
        } else {
            title.to_string()
        };
        Ok(Heatmap {
            title,
            value_label: value_label.to_string(),
            n_values,
            m_values,
            cells,
        })
    }

    fn range(&self) -> (f64, f64) {
        let vals = self.cells.iter().flatten().flatten().copied();
        let (lo, hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        if !lo.is_finite() {
            (0.0, 1.0)
        } else if hi - lo < 1e-9 {
            (lo - 0.5, hi + 0.5)
        } else {
            (lo, hi)
        }
    }
}

/// Viridis-like colour scale, t in [0, 1] (stops from the published viridis map).
pub fn colormap(t: f64) -> RGBColor {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let pos = t * (STOPS.len() - 1) as f64;
    let i = (pos.floor() as usize).min(STOPS.len() - 2);
    let f = pos - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

impl Chart for Heatmap {
    fn size(&self) -> (u32, u32) {
        let w = 260 + 96 * self.n_values.len() as u32;
        let h = 170 + 64 * self.m_values.len() as u32;
        (w.clamp(560, 4000), h.clamp(400, 4000))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<()> {
        root.fill(&WHITE).drawing()?;
        let (w, _) = root.dim_in_pixel();
        let (main, bar) = root.split_horizontally(w.saturating_sub(120));
        let (lo, hi) = self.range();
        let (nx, ny) = (self.n_values.len().max(1), self.m_values.len().max(1));
        let mut chart = ChartBuilder::on(&main)
            .caption(&self.title, font(20.0))
            .margin(14)
            .x_label_area_size(56)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..nx as f64, 0.0..ny as f64)
            .drawing()?;
        chart
            .configure_mesh()
            .disable_mesh()
            // Tick labels are drawn per cell below, centred on the rows and columns.
            .x_labels(0)
            .y_labels(0)
            .x_desc("tile N (columns)")
            .y_desc("tile M (rows)")
            .label_style(font(14.0))
            .axis_desc_style(font(15.0))
            .draw()
            .drawing()?;

        let cell_px = chart.plotting_area().dim_in_pixel().0 / nx as u32;
        let tick = font(14.0);
        for (c, n) in self.n_values.iter().enumerate() {
            let style = tick.clone().pos(Pos::new(HPos::Center, VPos::Top));
            chart
                .plotting_area()
                .draw(
                    &(EmptyElement::at((c as f64 + 0.5, 0.0))
                        + Text::new(n.to_string(), (0, 8), style)),
                )
                .drawing()?;
        }
        for (r, m) in self.m_values.iter().enumerate() {
            let style = tick.clone().pos(Pos::new(HPos::Right, VPos::Center));
            chart
                .plotting_area()
                .draw(
                    &(EmptyElement::at((0.0, r as f64 + 0.5))
                        + Text::new(m.to_string(), (-8, 0), style)),
                )
                .drawing()?;
        }
        for (r, row) in self.cells.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let (x, y) = (c as f64, r as f64);
                let color = match v {
                    Some(v) => colormap((v - lo) / (hi - lo)),
                    None => RGBColor(225, 225, 225),
                };
                chart
                    .draw_series([Rectangle::new([(x, y), (x + 1.0, y + 1.0)], color.filled())])
                    .drawing()?;
                chart
                    .draw_series([Rectangle::new(
                        [(x, y), (x + 1.0, y + 1.0)],
                        WHITE.stroke_width(2),
                    )])
                    .drawing()?;
                // Dark text on the light end of the scale, white on the dark end.
                let luma = 0.299 * color.0 as f64 + 0.587 * color.1 as f64 + 0.114 * color.2 as f64;
                let text_color = if luma > 140.0 { BLACK } else { WHITE };
                let text = match v {
                    Some(v) => format_value(*v),
                    None => "–".to_string(),
                };
                let style =
                    font_colored(14.0, text_color).pos(Pos::new(HPos::Center, VPos::Center));
                let text = fit_text(root, &text, &style, cell_px.saturating_sub(6));
                chart
                    .plotting_area()
                    .draw(&Text::new(text, (x + 0.5, y + 0.5), style))
                    .drawing()?;
            }
        }

        // Colour bar: a vertical strip of the scale, labelled with the value units.
        let mut cb = ChartBuilder::on(&bar)
            .margin_top(50)
            .margin_bottom(70)
            .margin_right(10)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..1.0, lo..hi)
            .drawing()?;
        cb.configure_mesh()
            .disable_mesh()
            .disable_x_axis()
            .y_desc(&self.value_label)
            .y_labels(6)
            .y_label_formatter(&|v: &f64| format_value(*v))
            .label_style(font(12.0))
            .axis_desc_style(font(13.0))
            .draw()
            .drawing()?;
        let steps = 64;
        cb.draw_series((0..steps).map(|i| {
            let a = lo + (hi - lo) * i as f64 / steps as f64;
            let b = lo + (hi - lo) * (i + 1) as f64 / steps as f64;
            Rectangle::new(
                [(0.0, a), (1.0, b)],
                colormap((i as f64 + 0.5) / steps as f64).filled(),
            )
        }))
        .drawing()?;
        Ok(())
    }
}

/// Compact value text: 1160, 95.3, 4.21, and whole numbers without decimals.
pub fn format_value(v: f64) -> String {
    if v.abs() >= 100.0 || v == v.round() {
        format!("{v:.0}")
    } else if v.abs() >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tiles_parse_and_grid_takes_the_best_k() {
        assert_eq!(parse_tile("16x32x64").unwrap(), (16, 32, 64));
        assert_eq!(parse_tile("8X8").unwrap(), (8, 8, 0));
        let err = parse_tile("16x").unwrap_err().to_string();
        assert!(err.contains("16x") && err.contains("MxNxK"), "{err}");
        let pts = vec![
            ("16x16x32".to_string(), 100.0),
            ("16x16x64".to_string(), 120.0),
            ("32x16x32".to_string(), 90.0),
        ];
        let h = Heatmap::from_tiles("t", "t/s", &pts).unwrap();
        assert_eq!(h.m_values, vec![16, 32]);
        assert_eq!(h.n_values, vec![16]);
        assert_eq!(h.cells, vec![vec![Some(120.0)], vec![Some(90.0)]]);
        assert!(h.title.contains("best over K"));
    }

    #[test]
    fn colormap_ends() {
        assert_eq!(colormap(0.0), RGBColor(68, 1, 84));
        assert_eq!(colormap(1.0), RGBColor(253, 231, 37));
        assert_eq!(colormap(f64::NAN), RGBColor(68, 1, 84));
    }
}
