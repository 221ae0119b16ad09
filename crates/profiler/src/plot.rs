//! `--plot FILE.svg`: a bar chart of each stage's lane time beside the run's wall time and the
//! what-if of each stage.

use std::path::Path;

use plotters::prelude::*;

use crate::analysis::Analysis;

/// Width and height of the chart, in pixels.
pub const SIZE: (u32, u32) = (900, 420);

/// Draws the stage breakdown of `analysis` to an SVG file.
///
/// # Errors
/// The file cannot be written.
pub fn stage_chart(
    analysis: &Analysis,
    title: &str,
    path: &Path,
) -> Result<(), crate::ProfilerError> {
    crate::fonts::register();
    let rows: Vec<_> = analysis.stages.iter().filter(|r| r.what_if_seconds.is_some()).collect();
    let max =
        rows.iter().map(|r| r.lane_seconds).fold(analysis.wall_seconds, f64::max).max(1e-6) * 1.1;
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    let draw = |e: &dyn std::fmt::Display| crate::ProfilerError::Draw {
        path: path.into(),
        reason: e.to_string(),
    };
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let n = rows.len() as i32;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(90)
        .build_cartesian_2d(0.0..max, (0..n + 1).into_segmented())
        .map_err(|e| draw(&e))?;
    let label = |v: &SegmentValue<i32>| match v {
        SegmentValue::CenterOf(i) if *i < n => rows[*i as usize].name.clone(),
        SegmentValue::CenterOf(i) if *i == n => "wall".into(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc("seconds (stage: time on its lane; outlined: the run's time without it)")
        .y_label_formatter(&label)
        .y_labels(rows.len() + 1)
        .draw()
        .map_err(|e| draw(&e))?;
    let bar = |i: i32, v: f64, color: RGBColor, filled: bool| {
        let style = if filled { color.filled() } else { color.stroke_width(2) };
        Rectangle::new([(0.0, SegmentValue::Exact(i)), (v, SegmentValue::Exact(i + 1))], style)
    };
    let bottleneck = analysis.bottleneck.as_deref();
    chart
        .draw_series(rows.iter().enumerate().map(|(i, r)| {
            let color = if Some(r.name.as_str()) == bottleneck { RED } else { BLUE };
            bar(i as i32, r.lane_seconds, color.mix(0.7).to_rgba().into_rgb(), true)
        }))
        .map_err(|e| draw(&e))?;
    chart
        .draw_series(
            rows.iter()
                .enumerate()
                .map(|(i, r)| bar(i as i32, r.what_if_seconds.unwrap_or(0.0), BLACK, false)),
        )
        .map_err(|e| draw(&e))?;
    chart
        .draw_series([bar(n, analysis.wall_seconds, RGBColor(90, 90, 90), true)])
        .map_err(|e| draw(&e))?;
    root.present().map_err(|e| draw(&e))
}

trait IntoRgb {
    fn into_rgb(self) -> RGBColor;
}

impl IntoRgb for RGBAColor {
    fn into_rgb(self) -> RGBColor {
        // Blend over white: SVG viewers and image tools agree on opaque colours.
        let blend = |c: u8| (f64::from(c) * self.3 + 255.0 * (1.0 - self.3)).round() as u8;
        RGBColor(blend(self.0), blend(self.1), blend(self.2))
    }
}
