//! Masking of personal data before it reaches a log line, an error or an alert: phone numbers
//! keep their first three and last four digits (`138****5678`), addresses are cut to their
//! district, names keep their first character. Every log line, error text and robot message that
//! could carry one goes through here; adapters/logging.rs points to this module.

/// `13812345678` → `138****5678`; `+86 138 1234 5678` → `138****5678`; a number too short to keep
/// anything → `****`. Non-digits are dropped first.
pub fn mask_phone(phone: &str) -> String {
    let digits: String = phone.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.strip_prefix("86").filter(|rest| rest.len() == 11).unwrap_or(&digits);
    if digits.len() < 8 {
        return "****".to_owned();
    }
    format!("{}****{}", &digits[..3], &digits[digits.len() - 4..])
}

/// Every run of 7 or more digits in free text (a phone number or an id quoted by a provider's
/// error message) masked as [`mask_phone`] masks a number.
pub fn mask_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 7 {
            out.push_str(&mask_phone(run));
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// A Chinese street address cut after its district (区/县/旗) or, lacking one, its city:
/// `浙江省杭州市西湖区文三路90号` → `浙江省杭州市西湖区`. An address with neither is dropped
/// whole (`***`).
pub fn district_only(address: &str) -> String {
    for marks in [&['区', '县', '旗'][..], &['市'][..]] {
        if let Some((at, c)) = address.char_indices().find(|(_, c)| marks.contains(c)) {
            return address[..at + c.len_utf8()].to_owned();
        }
    }
    "***".to_owned()
}

/// A person's name reduced to its first character: `张三丰` → `张**`.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.trim().chars();
    match chars.next() {
        Some(first) => format!("{first}{}", "*".repeat(chars.count().max(1))),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_keep_three_and_four_digits() {
        assert_eq!(mask_phone("13812345678"), "138****5678");
        assert_eq!(mask_phone("+86 138-1234-5678"), "138****5678");
        assert_eq!(mask_phone("12345"), "****");
        assert_eq!(mask_phone(""), "****");
    }

    #[test]
    fn free_text_loses_its_long_numbers() {
        assert_eq!(mask_digit_runs("手机号 13812345678 不正确, code 400"), "手机号 138****5678 不正确, code 400");
        assert!(!mask_digit_runs("call 13812345678").contains("1234"));
    }

    #[test]
    fn addresses_are_cut_to_the_district() {
        assert_eq!(district_only("浙江省杭州市西湖区文三路90号3幢"), "浙江省杭州市西湖区");
        assert_eq!(district_only("北京市朝阳区建国路88号"), "北京市朝阳区");
        assert_eq!(district_only("广东省东莞市长安镇某路1号"), "广东省东莞市");
        assert_eq!(district_only("幸福里5号"), "***");
    }

    #[test]
    fn names_keep_their_first_character() {
        assert_eq!(mask_name("张三丰"), "张**");
        assert_eq!(mask_name("李"), "李*");
        assert_eq!(mask_name(" "), "");
    }
}
