//! What a question asks for, when it asks for a number (a count, an
//! amount, a year or a date), and whether a passage holds one the question
//! does not ([`AskedNumber`]): evidence for `rank::relevance` that a
//! passage on the right subject cannot answer "when" or "how many" without
//! a number in it.

use crate::lexical::fold;

/// Question phrases asking for a count, an amount, a share or a date,
/// matched on the lower-cased question: English and Chinese anywhere,
/// Vietnamese as whole words (also folded, for questions typed without
/// marks). English "when" only opens a question, since inside one it is
/// a conjunction ("mistakes companies make when adopting"). How long
/// something has lasted ("how long", 多久, "bao lâu") is not among them:
/// "for many years" (多年来) answers it without a number.
const ENGLISH_OPENINGS: &[&str] = &["when ", "since when "];
const ENGLISH: &[&str] = &[
    "how many",
    "how much",
    "how old",
    "what year",
    "which year",
    "what date",
    "which date",
    "what day",
    "which day",
    "what share",
    "what percentage",
    "what proportion",
    "what number of",
    "in what year",
];
const CHINESE: &[&str] = &[
    "多少",
    "几个",
    "几名",
    "几家",
    "几位",
    "几年",
    "几岁",
    "几次",
    "几倍",
    "几项",
    "几月",
    "几号",
    "哪一年",
    "哪年",
    "何年",
    "何时",
    "什么时候",
    "什么时间",
    "哪一天",
    "哪天",
    "日期",
];
const VIETNAMESE: &[&str] = &[
    "bao nhiêu",
    "mấy",
    "năm nào",
    "khi nào",
    "lúc nào",
    "ngày nào",
    "tháng nào",
    "thời gian nào",
];

/// Number words that count as a number in a passage. Vietnamese "năm"
/// (five, and year) is left out: it names a year's word, not a year.
const NUMBER_WORDS: &[&str] = &[
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "fifteen",
    "twenty",
    "thirty",
    "forty",
    "fifty",
    "hundred",
    "hundreds",
    "thousand",
    "thousands",
    "million",
    "millions",
    "billion",
    "billions",
    "dozen",
    "dozens",
    "hai",
    "ba",
    "bốn",
    "sáu",
    "bảy",
    "tám",
    "chín",
    "mười",
    "trăm",
    "nghìn",
    "ngàn",
    "triệu",
    "tỷ",
    "tỉ",
];

/// Characters after which 几 means "a few" rather than "how many".
const A_FEW_AFTER: &str = "这那近前后头好十数";

const CHINESE_NUMERALS: &str = "零〇一二两三四五六七八九十百千万亿";
/// What a single Chinese numeral must be followed by to count: a measure
/// word or a unit (三家, 五年). Longer runs (十五, 二十) count alone; 一
/// alone does not, since it is also the article ("一个平台").
const CHINESE_UNITS: &str = "个名家位年岁次倍项月日号天%成";

/// Whether `question` asks for a number: a count, an amount, a share, a
/// year or a date.
pub fn asks_for_number(question: &str) -> bool {
    let q = question.trim().to_lowercase();
    if ENGLISH_OPENINGS.iter().any(|o| q.starts_with(o)) || ENGLISH.iter().any(|p| q.contains(p)) {
        return true;
    }
    if CHINESE.iter().any(|p| {
        q.match_indices(p).any(|(at, _)| {
            // 几 after a demonstrative or an approximation is "a few",
            // not "how many": 这几年 (these few years), 好几家, 十几个.
            !(p.starts_with('几')
                && q[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| A_FEW_AFTER.contains(c)))
        })
    }) {
        return true;
    }
    let words = |s: &str| -> String {
        let w: Vec<&str> = s
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .collect();
        format!(" {} ", w.join(" "))
    };
    let marked = words(&q);
    let folded = words(&fold(&q));
    let unmarked = marked == folded;
    VIETNAMESE.iter().any(|p| {
        marked.contains(&format!(" {p} "))
            // Typed without marks: "bao nhieu", "nam nao". "mấy" folds to
            // "may" (also "máy", machine), so it needs its mark.
            || (unmarked && *p != "mấy" && folded.contains(&format!(" {} ", fold(p))))
    })
}

/// The numbers `text` writes: runs of digits ("2010", "100,000", "4g"
/// counts as "4"), Chinese numerals with a unit or of two or more
/// characters, and number words.
fn numbers(text: &str) -> Vec<String> {
    let lower = text.to_lowercase();
    let chars: Vec<char> = lower.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_ascii_digit() {
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_digit()
                    || (matches!(chars[i], '.' | ',')
                        && chars.get(i + 1).is_some_and(char::is_ascii_digit)))
            {
                i += 1;
            }
            out.push(chars[start..i].iter().filter(|c| **c != ',').collect());
            continue;
        }
        if CHINESE_NUMERALS.contains(c) {
            let start = i;
            while i < chars.len() && CHINESE_NUMERALS.contains(chars[i]) {
                i += 1;
            }
            let run: String = chars[start..i].iter().collect();
            let unit = chars.get(i).is_some_and(|u| CHINESE_UNITS.contains(*u));
            if run.chars().count() > 1 || (run != "一" && unit) {
                out.push(run);
            }
            continue;
        }
        i += 1;
    }
    out.extend(
        lower
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| NUMBER_WORDS.contains(w))
            .map(str::to_string),
    );
    out
}

/// A question that asks for a number, with the numbers it writes itself
/// (read once per query, not once per passage).
pub struct AskedNumber {
    written: Vec<String>,
}

impl AskedNumber {
    /// `None` when `question` does not ask for a number.
    pub fn of(question: &str) -> Option<Self> {
        asks_for_number(question).then(|| Self {
            written: numbers(question),
        })
    }

    /// Whether `passage` holds no number besides the question's own (a
    /// question naming "2026" is not answered by the 2026 it names).
    pub fn lacked_by(&self, passage: &str) -> bool {
        numbers(passage).iter().all(|n| self.written.contains(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn questions_asking_for_a_number_or_date_are_told_in_three_languages() {
        for q in [
            "When did OpenInfra officially join the Linux Foundation?",
            "In how many countries does the OpenInfra community have members?",
            "what share of enterprises run open source software?",
            "OpenInfra 社区有多少名成员？",
            "华为有几家合作伙伴？",
            "烽火是哪一年成为 OpenStack 白金会员的？",
            "具体日期是哪一天？",
            "Broadcom đã mua lại VMware với giá bao nhiêu?",
            "StarlingX 10 được phát hành vào ngày nào?",
            "Nam nao OpenStack Foundation doi ten thanh OpenInfra Foundation?",
            "Co bao nhieu thanh vien OpenInfra?",
        ] {
            assert!(asks_for_number(q), "{q}");
        }
        for q in [
            "What are the two most common mistakes companies make when adopting open source?",
            "Who founded Kubernetes?",
            "谁创立了OpenStack",
            "Ai là người sáng lập Rackspace?",
            // "may" is "máy" (machine) as often as "mấy" (how many).
            "Sieu may tinh Dawn o Anh",
            "OpenInfra là gì?",
            // How long something has lasted: "for many years" answers it.
            "Hỗ trợ GPU đã là một phần của OpenStack được bao lâu rồi?",
            "How long has GPU support been part of OpenStack?",
            "GPU 支持成为 OpenStack 的一部分有多久了？",
            // 几 after a demonstrative is "a few": "why has it revived these
            // few years?"
            "OpenInfra 这几年为什么又重新火起来了？",
            "好几家公司加入了吗？",
        ] {
            assert!(!asks_for_number(q), "{q}");
        }
    }

    /// Whether `passage` lacks the number `question` asks for.
    fn lacks_asked_number(question: &str, passage: &str) -> bool {
        AskedNumber::of(question).is_some_and(|a| a.lacked_by(passage))
    }

    #[test]
    fn a_passage_answers_a_number_question_only_with_a_number_of_its_own() {
        let q = "2026年上海联合大会的具体日期是哪一天？";
        assert!(lacks_asked_number(q, "而2026年将在上海举办的联合大会"));
        assert!(!lacks_asked_number(q, "大会将于2026年9月15日在上海举办"));
        // Chinese numerals count with a unit or as a run; the article 一 does not.
        let q = "OpenStack 项目已经走过了多少年？";
        assert!(!lacks_asked_number(q, "OpenStack 已经走过了十五年"));
        assert!(!lacks_asked_number(q, "三家公司加入"));
        assert!(lacks_asked_number(q, "一个开放的平台"));
        // Digits with separators are one number; number words count.
        assert_eq!(numbers("超过 100,000 名成员, 3.5 倍"), ["100000", "3.5"]);
        assert!(!lacks_asked_number(
            "How many companies joined?",
            "Three companies joined."
        ));
        // A question not asking for a number lacks nothing.
        assert!(!lacks_asked_number(
            "Who founded OpenStack?",
            "Rackspace and NASA"
        ));
    }
}
