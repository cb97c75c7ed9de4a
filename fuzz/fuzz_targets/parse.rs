//! Fuzzes `wenda::ingest::parse::parse` (the markup cleaner): it never panics,
//! every clean char's origin is a non-empty span inside the original (in
//! chars), origins are in order, `text` and `original_span` work on ranges in
//! bounds, and text with no markup characters maps to itself char for char.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use wenda::ingest::parse::parse;

/// Chars that can start markup the cleaner removes (tags, entities, links,
/// images, emphasis, headings, quotes, front matter).
const MARKUP: &[char] = &['<', '>', '&', '[', ']', '!', '#', '*', '_', '-'];

fuzz_target!(|data: &[u8]| {
    let original = common::text(data);
    let chars: Vec<char> = original.chars().collect();
    let doc = parse(&original);
    common::check_clean(&chars, &doc);
    if !original.contains(MARKUP) {
        // Plain text: whole lines may go (boilerplate) and whitespace runs
        // that lost a line between them fold, but nothing is rewritten.
        for (c, origin) in doc.clean.chars.iter().zip(&doc.clean.origin) {
            assert_eq!(origin.len(), 1, "plain text: {c:?} maps to {origin:?}");
            let o = chars[origin.start];
            assert!(
                o == *c || (o.is_whitespace() && c.is_whitespace()),
                "plain text: clean {c:?} from original {o:?}"
            );
        }
        assert!(doc.published.is_none());
    }
});
