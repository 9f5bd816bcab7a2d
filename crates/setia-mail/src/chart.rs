//! The weekly report's chart: daily revenue of the last 7 days against the 7 before, drawn
//! with plotters into an RGB buffer and encoded as PNG, embedded in the email (`cid:`).
//!
//! Text needs a font file; plotters' `ab_glyph` backend loads DejaVu Sans (Debian's
//! fonts-dejavu-core) when it is installed. Without it the chart is drawn without
//! labels, and the email's text says what the lines are.

use std::sync::OnceLock;

use plotters::prelude::*;

pub const WIDTH: u32 = 640;
pub const HEIGHT: u32 = 260;

const FONT_FILES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
];

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("drawing the chart: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG: {0}")]
    Encode(#[from] png::EncodingError),
}

/// Registers a sans-serif font once per process; false when none is installed.
fn font_available() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        FONT_FILES.iter().any(|path| {
            let Ok(bytes) = std::fs::read(path) else {
                return false;
            };
            // plotters keeps fonts for the life of the process.
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
        })
    })
}

/// Two weeks of daily revenue (minor units, previous 7 days then the last 7) as a PNG, with
/// `labels` under the last 7 days' points.
pub fn weekly_revenue_png(
    daily_revenue_minor: &[i64],
    labels: &[String],
    legend: (&str, &str),
) -> Result<Vec<u8>, ChartError> {
    let (previous, current) = daily_revenue_minor.split_at(daily_revenue_minor.len().min(7));
    let rupiah = |v: &i64| (*v as f64 / 100.0).max(0.0);
    let top = daily_revenue_minor
        .iter()
        .map(rupiah)
        .fold(0.0_f64, f64::max)
        .max(10_000.0)
        * 1.15;
    let mut buffer = vec![0u8; (WIDTH * HEIGHT * 3) as usize];
    let with_text = font_available();
    {
        let draw = |e: &dyn std::fmt::Display| ChartError::Draw(e.to_string());
        let root = BitMapBackend::with_buffer(&mut buffer, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| draw(&e))?;
        let mut builder = ChartBuilder::on(&root);
        builder.margin(12).margin_right(30);
        if with_text {
            builder.x_label_area_size(28).y_label_area_size(64);
        }
        let mut chart = builder
            .build_cartesian_2d(0f64..6f64, 0f64..top)
            .map_err(|e| draw(&e))?;
        if with_text {
            let labels = labels.to_vec();
            chart
                .configure_mesh()
                .x_labels(7)
                .x_label_formatter(&|x| {
                    labels
                        .get(x.round().max(0.0) as usize)
                        .cloned()
                        .unwrap_or_default()
                })
                .y_labels(5)
                .y_label_formatter(&|y| compact_rupiah(*y))
                .light_line_style(WHITE)
                .draw()
                .map_err(|e| draw(&e))?;
        }
        let blue = RGBColor(37, 99, 235);
        let grey = RGBColor(156, 163, 175);
        let series = |values: &[i64]| -> Vec<(f64, f64)> {
            values
                .iter()
                .enumerate()
                .map(|(i, v)| (i as f64, rupiah(v)))
                .collect()
        };
        chart
            .draw_series(AreaSeries::new(series(current), 0.0, blue.mix(0.15)))
            .map_err(|e| draw(&e))?;
        let previous_line = chart
            .draw_series(LineSeries::new(series(previous), grey.stroke_width(2)))
            .map_err(|e| draw(&e))?;
        if with_text {
            previous_line
                .label(legend.1)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], grey));
        }
        let current_line = chart
            .draw_series(LineSeries::new(series(current), blue.stroke_width(3)))
            .map_err(|e| draw(&e))?;
        if with_text {
            current_line
                .label(legend.0)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], blue));
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.9))
                .border_style(grey)
                .position(SeriesLabelPosition::UpperLeft)
                .draw()
                .map_err(|e| draw(&e))?;
        }
        root.present().map_err(|e| draw(&e))?;
    }
    let mut png_bytes = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_bytes, WIDTH, HEIGHT);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Best);
    let mut writer = encoder.write_header()?;
    writer.write_image_data(&buffer)?;
    writer.finish()?;
    Ok(png_bytes)
}

/// `Rp 1,2 jt`-style axis labels: short enough for a chart.
fn compact_rupiah(value: f64) -> String {
    if value >= 1_000_000_000.0 {
        format!("Rp {:.1} M", value / 1_000_000_000.0).replace('.', ",")
    } else if value >= 1_000_000.0 {
        format!("Rp {:.1} jt", value / 1_000_000.0).replace('.', ",")
    } else if value >= 1_000.0 {
        format!("Rp {:.0} rb", value / 1_000.0)
    } else {
        format!("Rp {value:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_png_of_the_right_size() {
        let revenue: Vec<i64> = (0..14).map(|i| i * 25_000_000).collect();
        let labels: Vec<String> = (1..=7).map(|d| format!("{d} Mar")).collect();
        let png_bytes =
            weekly_revenue_png(&revenue, &labels, ("this week", "week before")).unwrap();
        assert_eq!(&png_bytes[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(&png_bytes));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!((info.width, info.height), (WIDTH, HEIGHT));
        // Something other than the white background was drawn.
        let mut reader = reader;
        let mut pixels = vec![0; reader.output_buffer_size()];
        reader.next_frame(&mut pixels).unwrap();
        assert!(pixels.chunks(3).any(|p| p != [255, 255, 255]));
    }

    #[test]
    fn a_quiet_fortnight_still_draws() {
        let png_bytes = weekly_revenue_png(&[0; 14], &[], ("a", "b")).unwrap();
        assert_eq!(&png_bytes[..4], b"\x89PNG");
    }

    #[test]
    fn axis_labels_are_short() {
        assert_eq!(compact_rupiah(1_300_000.0), "Rp 1,3 jt");
        assert_eq!(compact_rupiah(45_000.0), "Rp 45 rb");
        assert_eq!(compact_rupiah(500.0), "Rp 500");
        assert_eq!(compact_rupiah(2_500_000_000.0), "Rp 2,5 M");
    }
}
