//! The alive/suspect/dead chart: how many members a live member sees in
//! each state, on average, over virtual time (SVG, via plotters).

use std::path::Path;

use plotters::prelude::*;

use crate::error::SimError;
use crate::report::Report;

/// Draws `report`'s samples as an SVG file at `path`.
pub fn write_svg(report: &Report, path: &Path) -> Result<(), SimError> {
    let svg = render_svg(report)?;
    std::fs::write(path, svg).map_err(|source| SimError::Io { path: path.to_owned(), source })
}

/// The chart as SVG text.
pub fn render_svg(report: &Report) -> Result<String, SimError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 540)).into_drawing_area();
        draw(report, &root).map_err(|e| SimError::Plot(e.to_string()))?;
        root.present().map_err(|e| SimError::Plot(e.to_string()))?;
    }
    Ok(svg)
}

/// A line: its label, its colour and how to read it from a sample.
type Series = (&'static str, RGBColor, fn(&crate::report::Sample) -> f64);

type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw(report: &Report, root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> DrawResult {
    root.fill(&WHITE)?;
    let period = report.period_ms.max(1e-9);
    let x_max = (report.duration_ms / period).max(1.0);
    let y_max =
        report.samples.iter().map(|s| s.alive.max(s.dead).max(s.suspect).max(s.left)).fold(1.0, f64::max) * 1.05;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("{}: members seen per live member (seed {})", report.scenario, report.seed),
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(0f64..x_max, 0f64..y_max)?;
    chart.configure_mesh().x_desc("protocol periods").y_desc("members").draw()?;
    let series: [Series; 4] = [
        ("alive", GREEN, |s| s.alive),
        ("suspect", RGBColor(230, 150, 0), |s| s.suspect),
        ("dead", RED, |s| s.dead),
        ("left", BLUE, |s| s.left),
    ];
    for (name, color, get) in series {
        let points: Vec<(f64, f64)> = report.samples.iter().map(|s| (s.t_ms / period, get(s))).collect();
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2)));
    }
    for f in &report.faults {
        let x = f.at_ms / period;
        if f.kind != "pending" && x <= x_max {
            chart.draw_series(LineSeries::new(vec![(x, 0.0), (x, y_max)], BLACK.mix(0.25)))?;
        }
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    Ok(())
}
