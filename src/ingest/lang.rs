//! Language identification with `whatlang` (trigram models for 69
//! languages, no model files, fast on short text), reported as ISO 639-1.

use whatlang::Lang;

/// The code used when no language could be detected.
pub const UNKNOWN: &str = "und";

/// Detects the language of a text, if any can be guessed.
pub fn detect(text: &str) -> Option<String> {
    whatlang::detect(text).map(|info| iso639_1(info.lang()).to_string())
}

/// Detects the language only when whatlang is confident.
pub fn detect_confident(text: &str) -> Option<String> {
    whatlang::detect(text)
        .filter(|info| info.is_reliable())
        .map(|info| iso639_1(info.lang()).to_string())
}

/// Returns true when `code` is a language code wenda can detect, or "und".
pub fn is_known_code(code: &str) -> bool {
    code == UNKNOWN || Lang::all().iter().any(|&l| iso639_1(l) == code)
}

/// ISO 639-1 where one exists, else whatlang's ISO 639-3 code.
pub fn iso639_1(lang: Lang) -> &'static str {
    match lang {
        Lang::Cmn => "zh",
        Lang::Eng => "en",
        Lang::Vie => "vi",
        Lang::Jpn => "ja",
        Lang::Kor => "ko",
        Lang::Fra => "fr",
        Lang::Deu => "de",
        Lang::Spa => "es",
        Lang::Por => "pt",
        Lang::Ita => "it",
        Lang::Rus => "ru",
        Lang::Ara => "ar",
        Lang::Hin => "hi",
        Lang::Tha => "th",
        Lang::Ind => "id",
        Lang::Nld => "nl",
        Lang::Tur => "tr",
        Lang::Pol => "pl",
        Lang::Ukr => "uk",
        other => other.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_the_three_corpus_languages() {
        assert_eq!(
            detect("OpenInfra 基金会的首席运营官是谁？").as_deref(),
            Some("zh")
        );
        assert_eq!(
            detect("Who is the executive director of the Linux Foundation?").as_deref(),
            Some("en")
        );
        assert_eq!(
            detect("Vì sao OpenInfra quyết định gia nhập Linux Foundation?").as_deref(),
            Some("vi")
        );
    }

    #[test]
    fn known_codes() {
        assert!(is_known_code("zh") && is_known_code("vi") && is_known_code("und"));
        assert!(!is_known_code("xx"));
    }
}
