//! Latency charts: per protocol, every row's percentile distribution on one chart, as
//! HdrHistogram plots it (x: percentile on a log scale of 1/(1-p), so the tail out to
//! 99.99% gets as much room as the median; y: latency in ms). Written as SVG with
//! `plotters` (SVG backend only: text is emitted as `<text>`, no font files are read).

use hdrhistogram::Histogram;
use plotters::prelude::*;

use crate::report::Row;

/// The x axis ends at 1/(1-0.9999): runs of a few seconds have too few samples beyond.
const X_MAX: f64 = 10_000.0;
/// Points per curve, spaced evenly on the log axis.
const POINTS: usize = 120;

/// The curve of one row: (x = 1/(1-p), latency ms), read from its histogram.
pub fn curve(hist: &Histogram<u64>) -> Vec<(f64, f64)> {
    if hist.is_empty() {
        return Vec::new();
    }
    (0..=POINTS)
        .map(|i| {
            let x = X_MAX.powf(i as f64 / POINTS as f64);
            let q = 1.0 - 1.0 / x;
            (x, hist.value_at_quantile(q) as f64 / 1000.0)
        })
        .collect()
}

/// One SVG chart with the rows of `proto`, or `None` when there are none with samples.
pub fn svg(rows: &[Row], proto: &str, title: &str) -> Result<Option<String>, String> {
    let rows: Vec<&Row> = rows
        .iter()
        .filter(|r| r.proto == proto && !r.curve.is_empty())
        .collect();
    if rows.is_empty() {
        return Ok(None);
    }
    let y_max = rows
        .iter()
        .flat_map(|r| r.curve.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(0.01)
        * 1.05;
    let several_modes = rows.windows(2).any(|w| w[0].mode != w[1].mode);
    let mut out = String::new();
    {
        let height = 420 + 18 * rows.len() as u32;
        let root = SVGBackend::with_string(&mut out, (960, height)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(
                (1.0f64..X_MAX)
                    .log_scale()
                    .with_key_points(vec![2.0, 10.0, 100.0, 1_000.0, 10_000.0]),
                0.0f64..y_max,
            )
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("percentile")
            .y_desc("latency (ms)")
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|y| format!("{y:.2}"))
            .draw()
            .map_err(err)?;
        for (i, r) in rows.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let label = if several_modes {
                format!("{} [{}]", r.label, r.mode)
            } else {
                r.label.clone()
            };
            chart
                .draw_series(LineSeries::new(
                    r.curve.iter().copied(),
                    color.stroke_width(2),
                ))
                .map_err(err)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(Some(out))
}

/// `2` -> `50%`, `10` -> `90%`, ..., `10000` -> `99.99%`.
fn percentile_label(x: f64) -> String {
    let p = (1.0 - 1.0 / x) * 100.0;
    let digits = (x.log10().round() as usize).saturating_sub(2);
    format!("{p:.digits$}%")
}

fn err<E: std::fmt::Debug>(e: E) -> String {
    format!("chart: {e:?}")
}
