//! Language centring of the embedding space. Multilingual e5 vectors carry
//! the language of a text as well as its meaning, so an English question
//! prefers English passages whatever they say. Subtracting each language's
//! mean vector (estimated from the indexed passages) removes most of that
//! identity; docs/retrieval.md has the figures.

use std::collections::HashMap;

use crate::index::normalize;

/// Mean passage vector per language.
#[derive(Debug, Clone, Default)]
pub struct LanguageCentroids {
    per_language: HashMap<String, Vec<f32>>,
    global: Option<Vec<f32>>,
}

impl LanguageCentroids {
    /// Estimates the centroids from (language, vector) pairs.
    pub fn estimate<'a>(items: impl Iterator<Item = (&'a str, &'a [f32])>) -> Self {
        let mut sums: HashMap<String, (Vec<f32>, usize)> = HashMap::new();
        let mut global: Option<(Vec<f32>, usize)> = None;
        for (lang, v) in items {
            let (sum, n) = sums
                .entry(lang.to_string())
                .or_insert_with(|| (vec![0.0; v.len()], 0));
            sum.iter_mut().zip(v).for_each(|(s, x)| *s += x);
            *n += 1;
            let (g, gn) = global.get_or_insert_with(|| (vec![0.0; v.len()], 0));
            g.iter_mut().zip(v).for_each(|(s, x)| *s += x);
            *gn += 1;
        }
        let mean = |(sum, n): (Vec<f32>, usize)| {
            sum.into_iter().map(|s| s / n as f32).collect::<Vec<f32>>()
        };
        Self {
            per_language: sums.into_iter().map(|(l, s)| (l, mean(s))).collect(),
            global: global.map(mean),
        }
    }

    /// Returns `v` minus its language's centroid (the global one for a
    /// language without passages), renormalised. Without any centroid, `v`.
    pub fn center(&self, v: &[f32], language: &str) -> Vec<f32> {
        match self.per_language.get(language).or(self.global.as_ref()) {
            Some(c) => normalize(v.iter().zip(c).map(|(x, m)| x - m).collect()),
            None => v.to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centering_removes_the_shared_language_direction() {
        // Two languages, each with its own offset along axis 2.
        let zh = [vec![1.0, 0.0, 1.0], vec![0.0, 1.0, 1.0]];
        let en = [vec![1.0, 0.0, -1.0], vec![0.0, 1.0, -1.0]];
        let items = zh
            .iter()
            .map(|v| ("zh", v.as_slice()))
            .chain(en.iter().map(|v| ("en", v.as_slice())));
        let c = LanguageCentroids::estimate(items);
        let a = c.center(&zh[0], "zh");
        let b = c.center(&en[0], "en");
        let cos: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!(
            (cos - 1.0).abs() < 1e-5,
            "same meaning, different language: cos {cos}"
        );
    }
}
