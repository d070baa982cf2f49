//! Latency percentiles against offered rate, one color per variant, as an SVG beside the
//! report. plotters' SVG backend writes text as `<text>` elements, so no font is needed.

use std::path::Path;

use plotters::prelude::*;

use super::{Options, Results, Run, VARIANTS};

/// A percentile's label, how to read it off a run, its line width and opacity.
type Percentile = (&'static str, fn(&Run) -> f64, u32, f64);

const COLORS: [RGBColor; 3] = [
    RGBColor(214, 39, 40),
    RGBColor(31, 119, 180),
    RGBColor(44, 160, 44),
];

pub(crate) fn write(path: &Path, results: &Results, options: &Options) -> Result<(), String> {
    let runs: Vec<&Run> = results.search.iter().chain(&results.hold).collect();
    let x_max = runs.iter().map(|r| r.asked).fold(1.0, f64::max) * 1.05;
    let finite = |v: f64| v.is_finite() && v > 0.0;
    let y_max = runs
        .iter()
        .flat_map(|r| [r.p50, r.p99, r.p999])
        .filter(|v| finite(*v))
        .fold(options.p99_limit_ms * 2.0, f64::max)
        * 1.5;
    let y_min = runs
        .iter()
        .map(|r| r.p50)
        .filter(|v| finite(*v))
        .fold(1.0, f64::min)
        / 1.5;

    let error = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    let root = SVGBackend::new(path, (960, 600)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| error(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "GET /orders/{id}: latency percentiles against offered rate",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..x_max, (y_min..y_max).log_scale())
        .map_err(|e| error(&e))?;
    chart
        .configure_mesh()
        .x_desc("offered rate, requests/s")
        .y_desc("latency from schedule, ms (log)")
        .draw()
        .map_err(|e| error(&e))?;

    let limit = options.p99_limit_ms;
    chart
        .draw_series(LineSeries::new(
            [(0.0, limit), (x_max, limit)],
            BLACK.mix(0.4).stroke_width(1),
        ))
        .map_err(|e| error(&e))?
        .label(format!("p99 limit {limit} ms"))
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.mix(0.4)));

    for (i, variant) in VARIANTS.iter().enumerate() {
        let mut points: Vec<&Run> = runs.iter().copied().filter(|r| r.variant == i).collect();
        points.sort_by(|a, b| a.asked.total_cmp(&b.asked));
        let percentiles: [Percentile; 3] = [
            ("p50", |r| r.p50, 1, 0.5),
            ("p99", |r| r.p99, 3, 1.0),
            ("p99.9", |r| r.p999, 1, 0.8),
        ];
        for (label, value, width, alpha) in percentiles {
            let style = COLORS[i].mix(alpha).stroke_width(width);
            let series: Vec<(f64, f64)> = points
                .iter()
                .map(|r| (r.asked, value(r).clamp(y_min, y_max)))
                .collect();
            chart
                .draw_series(LineSeries::new(series.clone(), style))
                .map_err(|e| error(&e))?
                .label(format!("{} {label}", variant.name))
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], style));
            chart
                .draw_series(
                    series
                        .into_iter()
                        .map(|p| Circle::new(p, width + 1, COLORS[i].mix(alpha).filled())),
                )
                .map_err(|e| error(&e))?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(|e| error(&e))?;
    root.present().map_err(|e| error(&e))?;
    Ok(())
}
