//! `melkit show`: a tensor rendered as a PNG, long segments in a grid (short segments side by
//! side in each tile, low mel bins at the bottom), on a dB colour scale with axis labels and a
//! colour bar.

use std::path::Path;

pub use melkit_io::read::StoredTensor;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

/// Dynamic range shown, in dB below the tensor's maximum.
pub const RANGE_DB: f64 = 80.0;

const LEFT: u32 = 70;
const RIGHT: u32 = 110;
const TOP: u32 = 44;
const BOTTOM: u32 = 44;
const GAP: u32 = 6;
const LABEL: u32 = 16;

/// Where everything goes in the image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Long segments drawn.
    pub tiles: usize,
    /// Pixels per value, across and up.
    pub cell: u32,
    /// Tiles per row.
    pub columns: usize,
    /// Rows of tiles.
    pub rows: usize,
    /// A tile's size in pixels: short segments × time frames across, mel bins up.
    pub tile: (u32, u32),
    /// The image's size in pixels.
    pub size: (u32, u32),
}

impl Layout {
    /// The layout of the first `max_long` long segments of a `[long, short, mel, time]` tensor:
    /// values 1 to 4 pixels square so that a tile is about 128 pixels, tiles in a grid about
    /// 1.6 times as wide as it is tall.
    pub fn new(shape: [usize; 4], max_long: usize) -> Self {
        let [long, short, mel, time] = shape;
        let tiles = long.min(max_long).max(1);
        let (across, up) = ((short * time).max(1), mel.max(1));
        let cell = (128 / across.max(up)).clamp(1, 4) as u32;
        let tile = (across as u32 * cell, up as u32 * cell);
        let ideal = (tiles as f64 * 1.6 * f64::from(tile.1) / f64::from(tile.0)).sqrt().ceil();
        let columns = (ideal as usize).clamp(1, tiles);
        let rows = tiles.div_ceil(columns);
        let width = LEFT + RIGHT + columns as u32 * (tile.0 + GAP);
        let height = TOP + BOTTOM + rows as u32 * (tile.1 + GAP + LABEL);
        Layout { tiles, cell, columns, rows, tile, size: (width, height) }
    }

    /// The top-left pixel of tile `i`.
    pub fn tile_origin(&self, i: usize) -> (u32, u32) {
        let (c, r) = ((i % self.columns) as u32, (i / self.columns) as u32);
        (LEFT + c * (self.tile.0 + GAP), TOP + LABEL + r * (self.tile.1 + GAP + LABEL))
    }
}

/// How the stored values become dB.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Values {
    /// Already dB (`scale = "db"`).
    Db,
    /// `|X|^power`: dB is `20 / power · log10`.
    Power(f64),
}

impl Values {
    /// What a tensor holds: from its configuration, else dB when any value is negative.
    pub fn of(tensor: &StoredTensor) -> Self {
        let config = tensor
            .config
            .as_deref()
            .and_then(|c| serde_json::from_str::<serde_json::Value>(c).ok());
        match config {
            Some(c) if c["scale"] == "db" => Values::Db,
            Some(c) => Values::Power(c["power"].as_f64().unwrap_or(2.0)),
            None if tensor.values.iter().any(|&v| v < 0.0) => Values::Db,
            None => Values::Power(2.0),
        }
    }

    fn db(self, v: f32) -> f64 {
        match self {
            Values::Db => f64::from(v),
            Values::Power(p) => 20.0 / p * f64::from(v).max(1e-30).log10(),
        }
    }
}

/// Renders the first `max_long` long segments of `tensor` to `png`; the layout drawn.
///
/// # Errors
/// A tensor that is not 4-D, or a PNG that cannot be written.
pub fn render(
    tensor: &StoredTensor,
    title: &str,
    png: &Path,
    max_long: usize,
) -> Result<Layout, crate::ProfilerError> {
    crate::fonts::register();
    let shape: [usize; 4] = tensor
        .shape
        .clone()
        .try_into()
        .map_err(|_| crate::ProfilerError::NotATensor(tensor.shape.len()))?;
    let layout = Layout::new(shape, max_long);
    let values = Values::of(tensor);
    let top = tensor.values.iter().map(|&v| values.db(v)).fold(f64::MIN, f64::max);
    let bottom = top - RANGE_DB;
    let colour = |db: f64| {
        let t = ((db - bottom) / RANGE_DB).clamp(0.0, 1.0);
        ViridisRGB::get_color_normalized(t, 0.0, 1.0)
    };
    let draw = |e: &dyn std::fmt::Display| crate::ProfilerError::Draw {
        path: png.into(),
        reason: e.to_string(),
    };
    let root = BitMapBackend::new(png, layout.size).into_drawing_area();
    root.fill(&WHITE).map_err(|e| draw(&e))?;
    let text = |size: u32| TextStyle::from(("sans-serif", size).into_font()).color(&BLACK);
    let [long, short, mel, time] = shape;
    let shown = if layout.tiles < long {
        format!(
            "{title}  [{long}, {short}, {mel}, {time}], long segments 0-{} of {long}",
            layout.tiles - 1
        )
    } else {
        format!("{title}  [{long}, {short}, {mel}, {time}]")
    };
    root.draw_text(&shown, &text(16), (LEFT as i32, 12)).map_err(|e| draw(&e))?;
    let per_long = short * mel * time;
    for i in 0..layout.tiles {
        let (x0, y0) = layout.tile_origin(i);
        root.draw_text(&format!("long {i}"), &text(11), (x0 as i32, y0 as i32 - LABEL as i32 + 2))
            .map_err(|e| draw(&e))?;
        let tile = &tensor.values[i * per_long..(i + 1) * per_long];
        for s in 0..short {
            for m in 0..mel {
                for t in 0..time {
                    let c = colour(values.db(tile[(s * mel + m) * time + t]));
                    let x = x0 + (s * time + t) as u32 * layout.cell;
                    let y = y0 + (mel - 1 - m) as u32 * layout.cell;
                    for (dx, dy) in
                        (0..layout.cell).flat_map(|dx| (0..layout.cell).map(move |dy| (dx, dy)))
                    {
                        root.draw_pixel(((x + dx) as i32, (y + dy) as i32), &c)
                            .map_err(|e| draw(&e))?;
                    }
                }
            }
        }
    }
    let (width, height) = layout.size;
    let axis_y = (height - BOTTOM + 14) as i32;
    root.draw_text(
        "time frame → (short segments side by side in each tile)",
        &text(13),
        (LEFT as i32, axis_y),
    )
    .map_err(|e| draw(&e))?;
    root.draw_text("mel bin ↑", &text(13), (6, (TOP + LABEL) as i32)).map_err(|e| draw(&e))?;
    // The colour bar, with ticks every 20 dB.
    let (bar_x, bar_top, bar_h) =
        (width - RIGHT + 20, TOP + LABEL, (height - TOP - BOTTOM - LABEL).max(40));
    for y in 0..bar_h {
        let db = top - RANGE_DB * f64::from(y) / f64::from(bar_h - 1);
        for x in 0..16 {
            root.draw_pixel(((bar_x + x) as i32, (bar_top + y) as i32), &colour(db))
                .map_err(|e| draw(&e))?;
        }
    }
    for k in 0..=4 {
        let y = bar_top + (bar_h - 1) * k / 4;
        let label = format!("{:.0} dB", top - RANGE_DB * f64::from(k) / 4.0);
        root.draw_text(&label, &text(11), ((bar_x + 20) as i32, y as i32 - 5))
            .map_err(|e| draw(&e))?;
    }
    root.present().map_err(|e| draw(&e))?;
    Ok(layout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_tensor_is_a_wide_grid() {
        let l = Layout::new([40, 2, 64, 17], 64);
        assert_eq!((l.cell, l.tile), (2, (68, 128)));
        assert_eq!((l.columns, l.rows), (11, 4));
        assert_eq!(l.size, (70 + 110 + 11 * 74, 44 + 44 + 4 * 150));
        assert_eq!(Layout::new([1000, 2, 64, 17], 64).tiles, 64);
    }

    #[test]
    fn values_follow_the_configuration() {
        let t = |config: Option<&str>, v: f32| StoredTensor {
            shape: vec![1],
            values: vec![v],
            config: config.map(str::to_string),
        };
        assert_eq!(Values::of(&t(Some(r#"{"scale":"db","power":2.0}"#), 1.0)), Values::Db);
        assert_eq!(
            Values::of(&t(Some(r#"{"scale":"power","power":1.0}"#), 1.0)),
            Values::Power(1.0)
        );
        assert_eq!(Values::of(&t(None, -3.0)), Values::Db);
        assert!((Values::Power(2.0).db(100.0) - 20.0).abs() < 1e-12);
        assert!((Values::Power(1.0).db(100.0) - 40.0).abs() < 1e-12);
    }
}
