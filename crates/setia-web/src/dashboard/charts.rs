//! Charts as inline SVG, drawn with plotters' SVG backend: its coordinate systems, tick
//! choice (`key_points`) and elements do the geometry.
//!
//! Text is always placed with explicit anchors (`Text` elements), never laid out from font
//! metrics: plotters' ab_glyph feature is on in the binary (setia-mail's PNG chart needs
//! it), and with it any metric-based layout (mesh labels, captions) fails unless a font file
//! was registered. The SVG names a font family and the browser draws the text.

use plotters::coord::ranged1d::Ranged;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::render::PageError;

/// Charts are drawn in this many units across and scaled to the card by CSS; text sizes
/// are chosen to stay legible at a phone's width.
const WIDTH: u32 = 560;
const HEATMAP_WIDTH: u32 = 720;
const FONT: &str = "sans-serif";

pub const INK: RGBColor = RGBColor(0x33, 0x3d, 0x47);
pub const MUTED: RGBColor = RGBColor(0x6b, 0x75, 0x80);
const GRID: RGBColor = RGBColor(0xe3, 0xe7, 0xeb);
/// The series colours; the stylesheet's `.swatch-N` match them.
pub const SERIES: [RGBColor; 4] = [
    RGBColor(0x0f, 0x76, 0x6e),
    RGBColor(0xf5, 0x9e, 0x0b),
    RGBColor(0x63, 0x66, 0xf1),
    RGBColor(0xe1, 0x1d, 0x48),
];

fn failed(error: impl std::fmt::Display) -> PageError {
    PageError::Internal(format!("drawing a chart: {error}"))
}

fn style(size: f64, color: RGBColor, h: HPos, v: VPos) -> TextStyle<'static> {
    let mut style = TextStyle::from((FONT, size).into_font()).pos(Pos::new(h, v));
    style.color = color.to_backend_color();
    style
}

/// Adds the accessible name and the class the stylesheet sizes charts by.
fn finish(svg: String, label: &str) -> String {
    let label = label
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;");
    svg.replacen(
        "<svg ",
        &format!("<svg class=\"chart\" role=\"img\" aria-label=\"{label}\" "),
        1,
    )
}

/// Tick values of a bottom..top axis, plotters' choice of round numbers.
fn ticks(bottom: f64, top: f64) -> Vec<f64> {
    let axis: RangedCoordf64 = (bottom..top).into();
    axis.key_points(5)
}

/// Horizontal grid lines at the axis' ticks from `x_from` to `x_to`, each labelled on the
/// left with `format`.
fn grid_with_labels(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    chart: &mut ChartContext<'_, SVGBackend<'_>, Cartesian2d<RangedCoordf64, RangedCoordf64>>,
    (x_from, x_to): (f64, f64),
    (bottom, top): (f64, f64),
    format: &dyn Fn(f64) -> String,
) -> Result<(), PageError> {
    for tick in ticks(bottom, top) {
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(x_from, tick), (x_to, tick)],
                GRID.stroke_width(1),
            )))
            .map_err(failed)?;
        let (x, y) = chart.backend_coord(&(x_from, tick));
        root.draw(&Text::new(
            format(tick),
            (x - 8, y),
            style(21.0, MUTED, HPos::Right, VPos::Center),
        ))
        .map_err(failed)?;
    }
    Ok(())
}

fn nice_top(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        1.0
    } else {
        max * 1.12
    }
}

/// At most `wanted` evenly spread indices of `count`, always with the last.
fn label_indices(count: usize, wanted: usize) -> Vec<usize> {
    if count == 0 {
        return Vec::new();
    }
    let step = count.div_ceil(wanted.max(1)).max(1);
    let mut out: Vec<usize> = (0..count).rev().step_by(step).collect();
    out.reverse();
    out
}

/// A line over time: `values[i]` at `labels[i]`.
pub fn line(
    label: &str,
    labels: &[String],
    values: &[f64],
    fixed_top: Option<f64>,
    format: &dyn Fn(f64) -> String,
) -> Result<String, PageError> {
    let max = values.iter().copied().fold(0.0, f64::max);
    let top = fixed_top.unwrap_or_else(|| nice_top(max));
    let values: Vec<Option<f64>> = values.iter().copied().map(Some).collect();
    line_with_gaps(label, labels, &values, (0.0, top), format)
}

/// A line over time on a fixed `(bottom, top)` axis: `values[i]` at `labels[i]`, and where a
/// value is `None` (nothing to measure) the line breaks. The last value is written beside
/// its point.
pub fn line_with_gaps(
    label: &str,
    labels: &[String],
    values: &[Option<f64>],
    (bottom, top): (f64, f64),
    format: &dyn Fn(f64) -> String,
) -> Result<String, PageError> {
    let height = 280;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let right = (values.len().max(2) - 1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .margin_top(14)
            .margin_right(28)
            .margin_left(8)
            .set_label_area_size(LabelAreaPosition::Left, 80)
            .set_label_area_size(LabelAreaPosition::Bottom, 34)
            .build_cartesian_2d(-0.3f64..right + 0.3, bottom..top)
            .map_err(failed)?;
        grid_with_labels(
            &root,
            &mut chart,
            (-0.3, right + 0.3),
            (bottom, top),
            format,
        )?;
        for i in label_indices(labels.len(), 5) {
            let (x, y) = chart.backend_coord(&(i as f64, bottom));
            root.draw(&Text::new(
                labels[i].clone(),
                (x, y + 8),
                style(21.0, MUTED, HPos::Center, VPos::Top),
            ))
            .map_err(failed)?;
        }
        let points: Vec<(f64, f64)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i as f64, v)))
            .collect();
        // One stroke per run of consecutive values (a lone value is its dot).
        for run in points
            .chunk_by(|a, b| b.0 - a.0 == 1.0)
            .filter(|run| run.len() > 1)
        {
            chart
                .draw_series(LineSeries::new(run.to_vec(), SERIES[0].stroke_width(3)))
                .map_err(failed)?;
        }
        chart
            .draw_series(
                points
                    .iter()
                    .map(|p| Circle::new(*p, 4, SERIES[0].filled())),
            )
            .map_err(failed)?;
        if let Some(&(x, y)) = points.last() {
            let (px, py) = chart.backend_coord(&(x, y));
            root.draw(&Text::new(
                format(y),
                (px, py - 10),
                style(22.0, INK, HPos::Center, VPos::Bottom),
            ))
            .map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    Ok(finish(svg, label))
}

/// Stacked bars per category; `series` are (values per category) bottom to top, coloured
/// `SERIES[0]`, `SERIES[1]`, …
pub fn stacked_bars(
    label: &str,
    labels: &[String],
    series: &[Vec<f64>],
    format: &dyn Fn(f64) -> String,
) -> Result<String, PageError> {
    let height = 300;
    let count = labels.len();
    let totals: Vec<f64> = (0..count)
        .map(|i| {
            series
                .iter()
                .map(|s| s.get(i).copied().unwrap_or(0.0))
                .sum()
        })
        .collect();
    let top = nice_top(totals.iter().copied().fold(0.0, f64::max));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin_top(14)
            .margin_right(12)
            .margin_left(8)
            .set_label_area_size(LabelAreaPosition::Left, 112)
            .set_label_area_size(LabelAreaPosition::Bottom, 34)
            .build_cartesian_2d(0f64..count.max(1) as f64, 0f64..top)
            .map_err(failed)?;
        grid_with_labels(
            &root,
            &mut chart,
            (0.0, count.max(1) as f64),
            (0.0, top),
            format,
        )?;
        for i in 0..count {
            let mut base = 0.0;
            for (s, values) in series.iter().enumerate() {
                let value = values.get(i).copied().unwrap_or(0.0).max(0.0);
                if value > 0.0 {
                    let color = SERIES[s % SERIES.len()];
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(i as f64 + 0.15, base), (i as f64 + 0.85, base + value)],
                            color.filled(),
                        )))
                        .map_err(failed)?;
                }
                base += value;
            }
        }
        for i in label_indices(count, 5) {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
            root.draw(&Text::new(
                labels[i].clone(),
                (x, y + 8),
                style(21.0, MUTED, HPos::Center, VPos::Top),
            ))
            .map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    Ok(finish(svg, label))
}

/// Horizontal bars, one per row, with the row's label at the left and its value at the end.
pub fn bars(
    label: &str,
    labels: &[String],
    values: &[f64],
    format: &dyn Fn(f64) -> String,
) -> Result<String, PageError> {
    let row = 32u32;
    let height = row * labels.len().max(1) as u32 + 16;
    let top = nice_top(values.iter().copied().fold(0.0, f64::max));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let rows = labels.len().max(1) as f64;
        let mut chart = ChartBuilder::on(&root)
            .margin(8)
            .margin_right(80)
            .set_label_area_size(LabelAreaPosition::Left, 210)
            .build_cartesian_2d(0f64..top, 0f64..rows)
            .map_err(failed)?;
        for (i, name) in labels.iter().enumerate() {
            // Row 0 at the top.
            let y0 = rows - i as f64 - 0.85;
            let y1 = rows - i as f64 - 0.15;
            let value = values.get(i).copied().unwrap_or(0.0).max(0.0);
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(0.0, y0), (value, y1)],
                    SERIES[0].filled(),
                )))
                .map_err(failed)?;
            let (lx, ly) = chart.backend_coord(&(0.0, (y0 + y1) / 2.0));
            root.draw(&Text::new(
                name.clone(),
                (lx - 8, ly),
                style(22.0, INK, HPos::Right, VPos::Center),
            ))
            .map_err(failed)?;
            let (vx, vy) = chart.backend_coord(&(value, (y0 + y1) / 2.0));
            root.draw(&Text::new(
                format(value),
                (vx + 6, vy),
                style(21.0, MUTED, HPos::Left, VPos::Center),
            ))
            .map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    Ok(finish(svg, label))
}

/// Estimates with their intervals, one column per category: a bar from the interval's low
/// to its high with a dot at the estimate, on an axis through zero (drawn darker). A
/// category without an interval (`None`) stays empty but keeps its label.
pub fn intervals(
    label: &str,
    labels: &[String],
    values: &[Option<(f64, f64, f64)>],
    format: &dyn Fn(f64) -> String,
) -> Result<String, PageError> {
    let height = 280;
    let count = labels.len().max(1);
    let (low, high) = values
        .iter()
        .flatten()
        .flat_map(|&(estimate, low, high)| [estimate, low, high])
        .filter(|v| v.is_finite())
        .fold((0.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let span = if high - low > 0.0 { high - low } else { 1.0 };
    let (bottom, top) = (low - span * 0.12, high + span * 0.12);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        let mut chart = ChartBuilder::on(&root)
            .margin_top(14)
            .margin_right(12)
            .margin_left(8)
            .set_label_area_size(LabelAreaPosition::Left, 112)
            .set_label_area_size(LabelAreaPosition::Bottom, 34)
            .build_cartesian_2d(0f64..count as f64, bottom..top)
            .map_err(failed)?;
        grid_with_labels(
            &root,
            &mut chart,
            (0.0, count as f64),
            (bottom, top),
            format,
        )?;
        chart
            .draw_series(std::iter::once(PathElement::new(
                vec![(0.0, 0.0), (count as f64, 0.0)],
                MUTED.stroke_width(2),
            )))
            .map_err(failed)?;
        for (i, value) in values.iter().enumerate() {
            let Some((estimate, low, high)) = *value else {
                continue;
            };
            let x = i as f64 + 0.5;
            let cap = 0.12f64.min(0.3 / count as f64 * 2.0);
            for path in [
                vec![(x, low), (x, high)],
                vec![(x - cap, low), (x + cap, low)],
                vec![(x - cap, high), (x + cap, high)],
            ] {
                chart
                    .draw_series(std::iter::once(PathElement::new(
                        path,
                        SERIES[0].stroke_width(3),
                    )))
                    .map_err(failed)?;
            }
            chart
                .draw_series(std::iter::once(Circle::new(
                    (x, estimate),
                    5,
                    SERIES[0].filled(),
                )))
                .map_err(failed)?;
        }
        for i in label_indices(labels.len(), 6) {
            let (x, y) = chart.backend_coord(&(i as f64 + 0.5, bottom));
            root.draw(&Text::new(
                labels[i].clone(),
                (x, y + 8),
                style(21.0, MUTED, HPos::Center, VPos::Top),
            ))
            .map_err(failed)?;
        }
        root.present().map_err(failed)?;
    }
    Ok(finish(svg, label))
}

/// A cohort heatmap: one row per cohort (`rows[i]` its label), `values[i][k]` the share of
/// the cohort in period k. The last cell of each row is hatched when `last_in_progress`.
pub fn heatmap(
    label: &str,
    rows: &[String],
    values: &[Vec<f64>],
    columns: usize,
    last_in_progress: bool,
    format: &dyn Fn(f64) -> String,
) -> Result<String, PageError> {
    let cell_h = 30u32;
    let height = cell_h * rows.len().max(1) as u32 + 44;
    let columns = columns.max(1);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (HEATMAP_WIDTH, height)).into_drawing_area();
        let n_rows = rows.len().max(1) as f64;
        let chart = ChartBuilder::on(&root)
            .margin(4)
            .margin_right(8)
            .set_label_area_size(LabelAreaPosition::Left, 100)
            .set_label_area_size(LabelAreaPosition::Top, 28)
            .build_cartesian_2d(0f64..columns as f64, 0f64..n_rows)
            .map_err(failed)?;
        let mut chart = chart;
        let wide = columns <= 16;
        for k in label_indices(columns, if wide { columns } else { 12 }) {
            let (x, y) = chart.backend_coord(&(k as f64 + 0.5, n_rows));
            root.draw(&Text::new(
                k.to_string(),
                (x, y - 6),
                style(19.0, MUTED, HPos::Center, VPos::Bottom),
            ))
            .map_err(failed)?;
        }
        for (i, name) in rows.iter().enumerate() {
            let y1 = n_rows - i as f64;
            let y0 = y1 - 1.0;
            let (lx, ly) = chart.backend_coord(&(0.0, y0 + 0.5));
            root.draw(&Text::new(
                name.clone(),
                (lx - 8, ly),
                style(21.0, INK, HPos::Right, VPos::Center),
            ))
            .map_err(failed)?;
            let cells = values.get(i).map_or(&[][..], Vec::as_slice);
            let shown = cells.len().min(columns);
            for (k, value) in cells.iter().take(shown).enumerate() {
                let share = value.clamp(0.0, 1.0);
                let color = shade(share);
                let x0 = k as f64;
                chart
                    .draw_series(std::iter::once(Rectangle::new(
                        [(x0 + 0.03, y0 + 0.06), (x0 + 0.97, y1 - 0.06)],
                        color.filled(),
                    )))
                    .map_err(failed)?;
                let in_progress = last_in_progress && k + 1 == cells.len();
                if in_progress {
                    chart
                        .draw_series(std::iter::once(Rectangle::new(
                            [(x0 + 0.03, y0 + 0.06), (x0 + 0.97, y1 - 0.06)],
                            ShapeStyle {
                                color: INK.to_rgba(),
                                filled: false,
                                stroke_width: 2,
                            },
                        )))
                        .map_err(failed)?;
                }
                if wide {
                    let (cx, cy) = chart.backend_coord(&(x0 + 0.5, y0 + 0.5));
                    let ink = if share > 0.55 { WHITE } else { INK };
                    root.draw(&Text::new(
                        format(*value),
                        (cx, cy),
                        style(19.0, ink, HPos::Center, VPos::Center),
                    ))
                    .map_err(failed)?;
                }
            }
        }
        root.present().map_err(failed)?;
    }
    Ok(finish(svg, label))
}

/// White to the first series colour. Retention falls fast after the first period, so the
/// scale is a square root: small shares stay distinguishable.
fn shade(share: f64) -> RGBColor {
    let t = share.sqrt();
    let RGBColor(r, g, b) = SERIES[0];
    let mix = |c: u8| (255.0 + (f64::from(c) - 255.0) * t).round() as u8;
    RGBColor(mix(r), mix(g), mix(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pct(v: f64) -> String {
        format!("{:.0}%", v * 100.0)
    }

    #[test]
    fn charts_are_svg_with_their_text_and_an_accessible_name() {
        let labels: Vec<String> = (1..=8).map(|i| format!("d{i}")).collect();
        let values = [0.1, 0.2, 0.15, 0.3, 0.25, 0.4, 0.35, 0.5];
        let svg = line("Repeat <rate>", &labels, &values, None, &pct).unwrap();
        assert!(
            svg.starts_with("<svg class=\"chart\" role=\"img\" aria-label=\"Repeat &lt;rate&gt;\"")
        );
        assert!(svg.contains("\nd8\n") && svg.contains("\n50%\n"), "{svg}");
        assert_eq!(
            svg.matches("http").count(),
            svg.matches("http://www.w3.org/").count(),
            "no link to another host"
        );

        let svg = stacked_bars(
            "Revenue",
            &labels,
            &[values.to_vec(), values.to_vec()],
            &pct,
        )
        .unwrap();
        assert!(svg.contains("<rect"));
        let svg = line_with_gaps(
            "NPS",
            &labels[..4],
            &[Some(-0.5), None, Some(0.1), Some(0.2)],
            (-1.0, 1.0),
            &pct,
        )
        .unwrap();
        assert!(
            svg.contains("\n20%\n") && svg.contains("\n-100%\n"),
            "{svg}"
        );
        let stroke = "stroke=\"#0F766E\" stroke-width=\"3\" points=\"";
        assert_eq!(
            (svg.matches(stroke).count(), svg.matches("<circle").count()),
            (1, 3),
            "the line breaks where there is no value: {svg}"
        );
        let svg = bars("Segments", &labels, &values, &pct).unwrap();
        assert!(svg.contains("d1") && svg.contains("50%"));
        let rows = vec!["Jan 1997".to_owned(), "Feb 1997".to_owned()];
        let svg = heatmap(
            "Retention",
            &rows,
            &[vec![1.0, 0.2, 0.1], vec![1.0, 0.3]],
            3,
            true,
            &pct,
        )
        .unwrap();
        assert!(svg.contains("Jan 1997") && svg.contains("30%"));
        let svg = intervals("Difference", &rows, &[Some((0.1, -0.05, 0.25)), None], &pct).unwrap();
        assert!(svg.contains("Feb 1997") && svg.contains("<circle"));
        assert_eq!(
            svg.matches("<circle").count(),
            1,
            "no dot without an interval"
        );
    }

    #[test]
    fn empty_and_flat_data_still_draw() {
        assert!(line("x", &[], &[], None, &pct).is_ok());
        assert!(line("x", &["a".into()], &[0.0], Some(1.0), &pct).is_ok());
        assert!(line_with_gaps("x", &["a".into()], &[None], (-1.0, 1.0), &pct).is_ok());
        assert!(stacked_bars("x", &[], &[], &pct).is_ok());
        assert!(bars("x", &[], &[], &pct).is_ok());
        assert!(heatmap("x", &[], &[], 0, false, &pct).is_ok());
        assert!(intervals("x", &[], &[], &pct).is_ok());
        assert!(intervals("x", &["a".into()], &[None], &pct).is_ok());
        assert!(intervals("x", &["a".into()], &[Some((0.0, 0.0, 0.0))], &pct).is_ok());
    }

    #[test]
    fn few_labels_on_long_axes_always_with_the_last() {
        assert_eq!(label_indices(3, 6), vec![0, 1, 2]);
        let many = label_indices(26, 6);
        assert!(many.len() <= 7 && many.last() == Some(&25));
        assert!(label_indices(0, 6).is_empty());
    }
}
