//! The alive/suspect/dead chart of `gossamer sim run --plot`: how many
//! members a live member sees in each state, on average, over virtual time
//! (SVG, via plotters). It lives in the binary so that the gossamer-sim
//! library does not link a plotting crate.

use std::path::{Path, PathBuf};

use gossamer_sim::{Report, Sample};
use plotters::prelude::*;

/// Why the chart was not written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// plotters refused to draw it.
    #[error("plot: {0}")]
    Draw(String),
    /// The SVG file could not be written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Draws `report`'s samples as an SVG file at `path`.
pub fn write_svg(report: &Report, path: &Path) -> Result<(), PlotError> {
    let svg = render_svg(report)?;
    std::fs::write(path, svg).map_err(|source| PlotError::Io { path: path.to_owned(), source })
}

/// The chart as SVG text.
pub fn render_svg(report: &Report) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 540)).into_drawing_area();
        draw(report, &root).map_err(|e| PlotError::Draw(e.to_string()))?;
        root.present().map_err(|e| PlotError::Draw(e.to_string()))?;
    }
    Ok(svg)
}

/// A line: its label, its colour and how to read it from a sample.
type Series = (&'static str, RGBColor, fn(&Sample) -> f64);

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

#[cfg(test)]
mod tests {
    use super::*;
    use gossamer_sim::{Scenario, Simulation};

    #[test]
    fn draws_every_series_of_a_run() {
        let s = Scenario::from_toml(
            "name = \"p\"\nnodes = 6\nduration = \"30 periods\"\n[[fault]]\nat = \"10 periods\"\nkind = \"crash\"\nnodes = [5]",
        )
        .unwrap();
        let report = Simulation::new(s).unwrap().run();
        let svg = render_svg(&report).unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("<polyline"), "{}", &svg[..200.min(svg.len())]);
        for series in ["alive", "suspect", "dead", "left"] {
            assert!(svg.contains(series), "no {series} line");
        }
        let missing = std::env::temp_dir().join(format!("gossamer-no-such-dir-{}", std::process::id())).join("p.svg");
        assert!(matches!(write_svg(&report, &missing), Err(PlotError::Io { .. })));
    }
}
