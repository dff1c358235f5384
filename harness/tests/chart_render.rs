//! Charts drawn to PNG and SVG with the embedded font: decoded and checked to be the
//! right size, not blank, carrying their colours and text.

use std::collections::HashSet;
use std::path::Path;

use tessera::chart::{
    self, BASE_COLOR, BarChart, BarGroup, CAND_COLOR, Chart, Heatmap, LegendCorner, LineChart,
    Marker, Series, Tone,
};

/// (width, height, RGB pixels).
fn decode(path: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(path).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    assert!(channels >= 3, "{:?}", info.color_type);
    let px = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|c| [c[0], c[1], c[2]])
        .collect();
    (info.width, info.height, px)
}

/// Checks size, colour variety and the share of non-white pixels; returns the pixels.
fn check_png(chart: &impl Chart, path: &Path, min_colors: usize) -> Vec<[u8; 3]> {
    chart::save(chart, path).unwrap();
    let (w, h, px) = decode(path);
    assert_eq!((w, h), chart.size());
    let colors: HashSet<[u8; 3]> = px.iter().copied().collect();
    assert!(colors.len() >= min_colors, "only {} colours", colors.len());
    let ink = px.iter().filter(|p| **p != [255, 255, 255]).count() as f64 / px.len() as f64;
    assert!(ink > 0.03 && ink < 0.9, "non-background fraction {ink}");
    // Text in the title band (top 40 rows) proves the embedded font rendered:
    // anti-aliased glyphs leave dark pixels there and nothing else is drawn there.
    let title_dark = px[..(w * 40) as usize]
        .iter()
        .filter(|p| p.iter().all(|c| *c < 100))
        .count();
    assert!(
        title_dark > 30,
        "title text missing ({title_dark} dark pixels)"
    );
    px
}

fn bars() -> BarChart {
    BarChart {
        title: "Throughput: baseline vs candidate".into(),
        y_label: "throughput (tokens/s)".into(),
        base_name: "baseline: main".into(),
        cand_name: "candidate: amx".into(),
        groups: vec![
            BarGroup {
                label: "pp512".into(),
                sublabel: "threads=2".into(),
                base: Some((1160.0, 11.0)),
                cand: Some((1044.0, 10.0)),
                note: "-10.0% regressed".into(),
                tone: Tone::Bad,
            },
            BarGroup {
                label: "tg128".into(),
                sublabel: "threads=2".into(),
                base: Some((340.0, 3.0)),
                cand: None,
                note: "failed".into(),
                tone: Tone::Bad,
            },
        ],
    }
}

#[test]
fn bar_chart_png_has_both_bar_colours_and_text() {
    let dir = tempfile::tempdir().unwrap();
    let px = check_png(&bars(), &dir.path().join("bars.png"), 20);
    let has = |c: [u8; 3]| px.contains(&c);
    assert!(has([BASE_COLOR.0, BASE_COLOR.1, BASE_COLOR.2]));
    assert!(has([CAND_COLOR.0, CAND_COLOR.1, CAND_COLOR.2]));
}

#[test]
fn svg_contains_title_labels_and_legend() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bars.SVG");
    chart::save(&bars(), &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "{}", &svg[..60.min(svg.len())]);
    for text in [
        "Throughput: baseline vs candidate",
        "throughput (tokens/s)",
        "baseline: main",
        "pp512",
        "-10.0% regressed",
        "n/a",
    ] {
        assert!(svg.contains(text), "missing {text}");
    }
    assert_eq!(
        svg,
        chart::svg_string(&bars()).unwrap().replace("\r\n", "\n")
    );
}

#[test]
fn heatmap_png_spans_the_colour_scale() {
    let dir = tempfile::tempdir().unwrap();
    let pts: Vec<(String, f64)> = [
        ("16x16x32", 100.0),
        ("16x32x32", 140.0),
        ("32x16x32", 120.0),
        ("32x32x32", 180.0),
    ]
    .iter()
    .map(|(t, v)| (t.to_string(), *v))
    .collect();
    let h = Heatmap::from_tiles("pp512 by tile", "throughput (tokens/s)", &pts).unwrap();
    let px = check_png(&h, &dir.path().join("tiles.png"), 30);
    // The smallest and largest cells take the two ends of the scale.
    for c in [chart::heatmap::colormap(0.0), chart::heatmap::colormap(1.0)] {
        assert!(px.contains(&[c.0, c.1, c.2]), "{c:?} missing");
    }
    let svg = chart::svg_string(&h).unwrap();
    assert!(
        svg.contains("pp512 by tile") && svg.contains("tile N (columns)") && svg.contains("180")
    );
}

#[test]
fn line_charts_draw_series_and_change_points() {
    let dir = tempfile::tempdir().unwrap();
    let scaling = LineChart {
        title: "pp512: throughput vs threads".into(),
        x_label: "threads".into(),
        y_label: "throughput (tokens/s)".into(),
        series: vec![
            Series {
                name: "avx2".into(),
                points: vec![(1.0, 600.0, 5.0), (2.0, 1150.0, 8.0), (4.0, 2100.0, 20.0)],
            },
            Series {
                name: "avx512".into(),
                points: vec![(1.0, 800.0, 5.0), (2.0, 1500.0, 9.0), (4.0, 2800.0, 25.0)],
            },
        ],
        markers: vec![],
        x_ticks: vec![],
        integer_x: true,
        legend: LegendCorner::UpperLeft,
    };
    let px = check_png(&scaling, &dir.path().join("scaling.png"), 20);
    for c in &chart::SERIES_COLORS[..2] {
        assert!(px.contains(&[c.0, c.1, c.2]), "{c:?} missing");
    }
    let history = LineChart {
        title: "tg128 history".into(),
        x_label: "run".into(),
        y_label: "throughput (tokens/s)".into(),
        series: vec![Series {
            name: "tg128".into(),
            points: (0..20)
                .map(|i| (i as f64, if i < 12 { 340.0 } else { 300.0 }, 0.0))
                .collect(),
        }],
        markers: vec![Marker {
            x: 11.5,
            label: "-11.8%".into(),
            good: false,
        }],
        x_ticks: (0..20).map(|i| format!("r{i}")).collect(),
        integer_x: true,
        legend: LegendCorner::LowerLeft,
    };
    let px = check_png(&history, &dir.path().join("history.png"), 10);
    let bad = chart::BAD_COLOR;
    assert!(
        px.contains(&[bad.0, bad.1, bad.2]),
        "change point not drawn"
    );
    let svg = chart::svg_string(&history).unwrap();
    assert!(svg.contains("-11.8%") && svg.contains("r12"));
}

#[test]
fn unknown_extensions_are_refused() {
    let err = chart::save(&bars(), Path::new("/tmp/x.jpeg"))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("x.jpeg") && err.contains(".png or .svg"),
        "{err}"
    );
}
