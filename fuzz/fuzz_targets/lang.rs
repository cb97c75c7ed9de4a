//! Fuzzes language detection (`wenda::ingest::lang`) on arbitrary text: it
//! never panics; `detect` and `detect_confident` give a code wenda knows (two
//! lowercase letters) or none, and agree when the confident one answers;
//! `detect_query` gives a known code or "und", and, unless the script
//! decides (zh, ja, ko, vi), only one of the allowed languages or English.
//! The first byte picks the allow-list.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use wenda::ingest::lang;

const ALLOW_LISTS: &[&[&str]] = &[
    &[],
    &["zh", "en", "vi"],
    &["fr", "de"],
    &["vi"],
    &["xx", "", "und"],
];

fn two_letters(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_lowercase())
}

fuzz_target!(|data: &[u8]| {
    let Some((&pick, rest)) = data.split_first() else {
        return;
    };
    let text = common::text(rest);
    let detected = lang::detect(&text);
    if let Some(code) = detected {
        assert!(
            two_letters(code) && lang::is_known_code(code),
            "detect gave {code:?}"
        );
    }
    let confident = lang::detect_confident(&text);
    if let Some(code) = confident {
        assert!(
            two_letters(code) && lang::is_known_code(code),
            "detect_confident gave {code:?}"
        );
        assert_eq!(detected, Some(code), "detect and detect_confident disagree");
    }
    let allowed = ALLOW_LISTS[usize::from(pick) % ALLOW_LISTS.len()];
    let query = lang::detect_query(&text, allowed);
    assert!(lang::is_known_code(query), "detect_query gave {query:?}");
    assert!(
        query == lang::UNKNOWN
            || ["zh", "ja", "ko", "vi", "en"].contains(&query)
            || allowed.contains(&query),
        "detect_query gave {query:?}, not in {allowed:?}"
    );
});
