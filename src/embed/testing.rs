use super::*;

/// Hashes character bigrams into a normalised vector: texts sharing
/// words or characters are close, which is all engine tests need.
pub struct BigramBackend;

pub const DIM: usize = 64;

pub fn bigram_vector(text: &str) -> Vec<f32> {
    let chars: Vec<char> = text
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let mut v = vec![0f32; DIM];
    for w in chars.windows(2) {
        let h = (w[0] as u64)
            .wrapping_mul(31)
            .wrapping_add(w[1] as u64)
            .wrapping_mul(0x9E3779B97F4A7C15);
        v[(h >> 58) as usize % DIM] += 1.0;
    }
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-6);
    v.iter().map(|x| x / norm).collect()
}

impl EmbedBackend for BigramBackend {
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>> {
        Ok(texts
            .iter()
            .map(|t| bigram_vector(t.split_once(": ").map_or(t.as_str(), |x| x.1)))
            .collect())
    }
    fn count_tokens(&self, text: &str) -> usize {
        text.split_whitespace().count() + 2
    }
}

pub fn manifest() -> ModelManifest {
    ModelManifest {
        name: "test/bigram".into(),
        dimension: DIM,
        max_tokens: 512,
        query_prefix: "query: ".into(),
        passage_prefix: "passage: ".into(),
        onnx: OnnxFiles::default(),
        files: Default::default(),
        precision: Precision::default(),
    }
}

pub fn embedder() -> Embedder {
    Embedder::with_backend(BigramBackend, manifest(), 8)
}
