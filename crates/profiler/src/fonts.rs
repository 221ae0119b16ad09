//! The font charts and images are labelled with (Hack, embedded, so that rendering needs no
//! system fonts), registered with plotters once.

use std::sync::Once;

use plotters::style::FontStyle;

/// Registers the embedded font as plotters' `sans-serif`.
pub fn register() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            epaint_default_fonts::HACK_REGULAR,
        )
        .is_err()
        {
            tracing::warn!("the embedded font could not be loaded: labels will be missing");
        }
    });
}
