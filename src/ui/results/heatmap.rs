//! MFCC and chroma heat maps (frames × coefficients) of a clip: the per-frame matrices
//! from [`crate::audio::frames`], averaged down to at most [`MAX_COLUMNS`] columns and
//! coloured into images on a background thread.

use egui::{Color32, ColorImage};

use crate::audio::frames::feature_frames;
use crate::audio::{AudioBuffer, FeatureParams};

/// Widest heat-map image; longer clips average neighbouring frames into a column.
pub const MAX_COLUMNS: usize = 2048;

/// A matrix of `rows` × `columns` values, row-major, row 0 the first coefficient.
#[derive(Debug, Clone, PartialEq)]
pub struct Matrix {
    pub rows: usize,
    pub columns: usize,
    pub values: Vec<f32>,
}

impl Matrix {
    pub fn get(&self, row: usize, column: usize) -> f32 {
        self.values[row * self.columns + column]
    }
}

/// Turns `frames` (one row of coefficients per frame) into a coefficients × columns
/// matrix, averaging runs of frames so that there are at most `max_columns` columns.
pub fn downsample(frames: &[Vec<f32>], max_columns: usize) -> Matrix {
    let rows = frames.first().map_or(0, Vec::len);
    let per = frames.len().div_ceil(max_columns.max(1)).max(1);
    let columns = frames.len().div_ceil(per);
    let mut values = vec![0.0f32; rows * columns];
    for (c, group) in frames.chunks(per).enumerate() {
        let scale = 1.0 / group.len() as f32;
        for frame in group {
            for (r, &v) in frame.iter().enumerate().take(rows) {
                values[r * columns + c] += v * scale;
            }
        }
    }
    Matrix {
        rows,
        columns,
        values,
    }
}

/// Scales each row to 0–1 on its own range (MFCC coefficients differ in scale by orders
/// of magnitude; per-coefficient scaling shows how each one moves).
pub fn normalize_rows(m: &mut Matrix) {
    let columns = m.columns;
    if columns == 0 {
        return;
    }
    for row in m.values.chunks_mut(columns) {
        let (lo, hi) = row
            .iter()
            .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        let range = hi - lo;
        for v in row.iter_mut() {
            *v = if range > f32::EPSILON {
                (*v - lo) / range
            } else {
                0.5
            };
        }
    }
}

/// The image of a 0–1 matrix: one pixel per value, the first row at the bottom.
pub fn image(m: &Matrix) -> ColorImage {
    let mut pixels = vec![Color32::BLACK; m.rows * m.columns];
    for r in 0..m.rows {
        let y = m.rows - 1 - r;
        for c in 0..m.columns {
            pixels[y * m.columns + c] =
                crate::ui::waveform::spectrogram::colormap(m.get(r, c).clamp(0.0, 1.0));
        }
    }
    ColorImage::new([m.columns, m.rows], pixels)
}

/// Both heat maps of one clip, ready to upload.
pub struct HeatMaps {
    /// Seconds the columns cover, from the clip's start.
    pub covered: f64,
    pub mfcc: ColorImage,
    pub chroma: ColorImage,
}

/// Computes the heat maps of `audio` (slow: run it on a background thread).
pub fn compute(audio: &AudioBuffer) -> Result<HeatMaps, String> {
    let frames = feature_frames(audio, &FeatureParams::default()).map_err(|e| e.to_string())?;
    let covered = frames.mfcc.len() as f64 * frames.hop_seconds;
    let mut mfcc = downsample(&frames.mfcc, MAX_COLUMNS);
    normalize_rows(&mut mfcc);
    let chroma = downsample(&frames.chroma, MAX_COLUMNS);
    Ok(HeatMaps {
        covered,
        mfcc: image(&mfcc),
        chroma: image(&chroma),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_become_columns_and_long_clips_are_averaged() {
        let frames: Vec<Vec<f32>> = (0..10).map(|i| vec![i as f32, 1.0]).collect();
        let m = downsample(&frames, 100);
        assert_eq!((m.rows, m.columns), (2, 10));
        assert_eq!(m.get(0, 3), 3.0);
        assert_eq!(m.get(1, 9), 1.0);
        // Ten frames into at most four columns: groups of three, the last one short.
        let m = downsample(&frames, 4);
        assert_eq!(m.columns, 4);
        assert_eq!(m.get(0, 0), 1.0);
        assert_eq!(m.get(0, 3), 9.0);
        assert_eq!(m.get(1, 2), 1.0);
        assert_eq!(downsample(&[], 4).values.len(), 0);
    }

    #[test]
    fn rows_scale_to_their_own_range() {
        let mut m = Matrix {
            rows: 2,
            columns: 3,
            values: vec![-100.0, 0.0, 100.0, 5.0, 5.0, 5.0],
        };
        normalize_rows(&mut m);
        assert_eq!(m.values, [0.0, 0.5, 1.0, 0.5, 0.5, 0.5]);
    }

    #[test]
    fn the_first_row_is_drawn_at_the_bottom() {
        let m = Matrix {
            rows: 2,
            columns: 1,
            values: vec![1.0, 0.0],
        };
        let img = image(&m);
        assert_eq!(img.size, [1, 2]);
        let lum = |c: Color32| u32::from(c.r()) + u32::from(c.g()) + u32::from(c.b());
        assert!(
            lum(img.pixels[1]) > lum(img.pixels[0]),
            "row 0 (bright) at the bottom"
        );
    }
}
