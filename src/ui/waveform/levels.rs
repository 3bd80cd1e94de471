//! A min/max pyramid over one channel: level 0 holds the minimum and maximum of every
//! [`BASE`] samples, each level above combines [`FACTOR`] bins of the one below. Any range
//! of samples is then answered exactly from a few bins per level plus at most `2 × BASE`
//! raw samples at its ragged ends, so drawing an hour of audio costs the same as a minute.

use std::ops::Range;

/// Samples per bin of level 0.
pub const BASE: usize = 256;
/// Bins of one level per bin of the next.
pub const FACTOR: usize = 4;

/// The pyramid of one channel.
#[derive(Debug, Clone, Default)]
pub struct Levels {
    len: usize,
    /// `levels[k][i]` is `[min, max]` of samples `i·BASE·FACTOR^k ..` (the last bin of a
    /// level may be short).
    levels: Vec<Vec<[f32; 2]>>,
}

fn fold(bins: &[[f32; 2]]) -> [f32; 2] {
    bins.iter()
        .fold([f32::INFINITY, f32::NEG_INFINITY], |a, b| {
            [a[0].min(b[0]), a[1].max(b[1])]
        })
}

fn scan(samples: &[f32]) -> [f32; 2] {
    samples
        .iter()
        .fold([f32::INFINITY, f32::NEG_INFINITY], |a, &s| {
            [a[0].min(s), a[1].max(s)]
        })
}

impl Levels {
    /// Builds the pyramid (one pass over the samples, split over the cores).
    pub fn build(samples: &[f32]) -> Levels {
        let bins = samples.len().div_ceil(BASE);
        let parts = crate::audio::spectral::par_ranges(bins, |range| {
            range
                .map(|i| scan(&samples[i * BASE..((i + 1) * BASE).min(samples.len())]))
                .collect::<Vec<_>>()
        });
        let mut levels = vec![parts.concat()];
        while let Some(last) = levels.last()
            && last.len() > 1
        {
            let next = last.chunks(FACTOR).map(fold).collect();
            levels.push(next);
        }
        Levels {
            len: samples.len(),
            levels,
        }
    }

    /// Number of samples the pyramid covers.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Number of levels (0 for empty audio).
    pub fn depth(&self) -> usize {
        if self.len == 0 { 0 } else { self.levels.len() }
    }

    /// Minimum and maximum of `samples[range]`, exactly; `None` for an empty range.
    /// `samples` must be the slice the pyramid was built from.
    pub fn min_max(&self, samples: &[f32], range: Range<usize>) -> Option<(f32, f32)> {
        let end = range.end.min(self.len).min(samples.len());
        let mut pos = range.start;
        if pos >= end {
            return None;
        }
        let mut acc = [f32::INFINITY, f32::NEG_INFINITY];
        let mut take = |v: [f32; 2]| {
            acc = [acc[0].min(v[0]), acc[1].max(v[1])];
        };
        // Ragged head up to the first level-0 boundary.
        let head_end = pos.next_multiple_of(BASE).min(end);
        take(scan(&samples[pos..head_end]));
        pos = head_end;
        // Whole bins: climb while aligned to bigger bins that fit, then come down.
        let mut level = 0usize;
        let mut size = BASE;
        let top = self.levels.len();
        while pos < end {
            if level + 1 < top && pos.is_multiple_of(size * FACTOR) && pos + size * FACTOR <= end {
                level += 1;
                size *= FACTOR;
            } else if pos + size <= end {
                take(self.levels[level][pos / size]);
                pos += size;
            } else if level > 0 {
                level -= 1;
                size /= FACTOR;
            } else {
                break;
            }
        }
        // Ragged tail, shorter than one level-0 bin.
        take(scan(&samples[pos..end]));
        Some((acc[0], acc[1]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(n: usize) -> Vec<f32> {
        // Deterministic, irregular values with isolated extremes.
        let mut state = 0x1234_5678u32;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                (state as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn brute(samples: &[f32], r: Range<usize>) -> Option<(f32, f32)> {
        let s = &samples[r.start.min(samples.len())..r.end.min(samples.len())];
        (!s.is_empty()).then(|| {
            let v = scan(s);
            (v[0], v[1])
        })
    }

    #[test]
    fn exact_against_a_scan_at_several_zooms() {
        for n in [1, 255, 256, 257, 1023, 4097, 65_536 + 3, 300_001] {
            let x = signal(n);
            let levels = Levels::build(&x);
            assert_eq!(levels.len(), n);
            // Columns of a view at several zooms, with unaligned starts.
            for per_column in [1usize, 7, 256, 300, 1024, 4096, 70_000] {
                for start in [0usize, 1, 129, 1000] {
                    let mut a = start;
                    while a < n {
                        let b = a + per_column;
                        assert_eq!(
                            levels.min_max(&x, a..b),
                            brute(&x, a..b),
                            "n={n} range {a}..{b}"
                        );
                        a = b;
                    }
                }
            }
            assert_eq!(levels.min_max(&x, 0..n), brute(&x, 0..n));
        }
    }

    #[test]
    fn finds_a_single_spike_anywhere() {
        let n = 50_000;
        for at in [0, 1, 255, 256, 1024, 33_333, n - 1] {
            let mut x = vec![0.0f32; n];
            x[at] = 1.0;
            x[(at + 7) % n] = -1.0;
            let levels = Levels::build(&x);
            assert_eq!(levels.min_max(&x, 0..n), Some((-1.0, 1.0)));
            assert_eq!(levels.min_max(&x, at..at + 1), Some((1.0, 1.0)));
        }
    }

    #[test]
    fn empty_audio_and_empty_ranges() {
        let levels = Levels::build(&[]);
        assert!(levels.is_empty());
        assert_eq!(levels.depth(), 0);
        assert_eq!(levels.min_max(&[], 0..10), None);
        let x = signal(1000);
        let levels = Levels::build(&x);
        assert_eq!(levels.min_max(&x, 5..5), None);
        assert_eq!(levels.min_max(&x, 2000..3000), None);
        assert_eq!(levels.min_max(&x, 990..5000), brute(&x, 990..1000));
    }

    #[test]
    fn levels_shrink_by_the_factor() {
        let x = signal(BASE * FACTOR * FACTOR * 3 + 5);
        let levels = Levels::build(&x);
        let lens: Vec<usize> = levels.levels.iter().map(Vec::len).collect();
        assert_eq!(lens, [49, 13, 4, 1]);
    }
}
