//! What notify carries to people: an alert for a group robot (DingTalk, WeCom), a customer
//! notice by SMS, how severe a finding is, and what became of a send. Personal data stays out of
//! every value here that can be printed: a [`MobileNumber`] prints masked and has no `Display`.

use std::fmt;

use serde::{Deserialize, Serialize};

/// How urgent a finding is. Criticals `@` people, pass through quiet hours and are escalated
/// when nobody acknowledges them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Good to know (a channel recovered).
    Info,
    /// Someone should look today.
    Warning,
    /// Someone must act now.
    Critical,
}

impl Severity {
    /// The identifier used in configuration and records.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// The label people read.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Info => "提示",
            Severity::Warning => "警告",
            Severity::Critical => "严重",
        }
    }
}

/// One message for one group robot, rendered (markdown, Chinese, no personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertMessage {
    /// Shown in the conversation list (DingTalk) or as the bold first line (WeCom).
    pub title: String,
    /// The body.
    pub markdown: String,
    /// How severe: a critical message `@`s the people configured for the robot.
    pub severity: Severity,
    /// The id a person acknowledges it with (`{"ack": {"id": …}}`), for criticals.
    #[serde(default)]
    pub ack_id: Option<String>,
    /// The finding kind(s) it is about (detail-type), for records and logs.
    pub kind: String,
}

/// What became of one robot send (the adapters' result, in the domain's words).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RobotOutcome {
    /// The robot took it.
    Sent,
    /// The robot's rate limit: not before this long.
    RateLimited {
        /// How long to wait.
        retry_after: chrono::Duration,
    },
    /// Permanent: a bad key or signature, a removed robot. A person must act.
    Rejected {
        /// The provider's code.
        code: String,
        /// The provider's message, scrubbed.
        message: String,
    },
    /// Transient: timeout, 5xx, busy.
    Unavailable(String),
}

/// A customer's mobile number, resolved by the contacts port right before a send. `Debug`
/// prints it masked (`138****5678`); there is no `Display`, so it cannot reach a log line by
/// accident.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MobileNumber(String);

impl MobileNumber {
    /// Wraps a number as stored (the SMS adapter parses and checks it).
    pub fn new(number: impl Into<String>) -> Self {
        Self(number.into())
    }

    /// The number, for the adapter that sends to it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// `138****5678`: first three and last four digits of the national number.
    pub fn masked(&self) -> String {
        let digits: String = self.0.chars().filter(char::is_ascii_digit).collect();
        let national = match digits.strip_prefix("86") {
            Some(rest) if rest.len() == 11 => rest,
            _ => digits.strip_prefix("0086").filter(|rest| rest.len() == 11).unwrap_or(&digits),
        };
        if national.len() < 8 {
            return "****".to_owned();
        }
        format!("{}****{}", &national[..3], &national[national.len() - 4..])
    }
}

impl fmt::Debug for MobileNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

/// A customer notice as the SMS port sends it: the template (by the name the notice carries)
/// and the values a template may use, by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmsNotice {
    /// The notice id: the provider echoes it (Aliyun `OutId`, Tencent `SessionContext`).
    pub notice_id: String,
    /// The template name (`parcel_at_station`, `confirm_receipt`); configuration maps it to the
    /// provider's approved template.
    pub template: String,
    /// Values available to the template: `order_id`, `channel`, `text`.
    pub values: Vec<(String, String)>,
}

/// What became of one SMS send. At most once per notice rests on telling "not sent" apart from
/// "may have been sent".
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SmsOutcome {
    /// The provider took it.
    Sent {
        /// The provider's id (Aliyun `BizId`, Tencent `SerialNo`).
        receipt: Option<String>,
    },
    /// Certainly not sent (refused for rate, or the connection never opened): safe to send
    /// again later.
    NotSent {
        /// Not before this long, when the provider said.
        retry_after: Option<chrono::Duration>,
        /// Why.
        reason: String,
    },
    /// Permanent refusal (bad number, unapproved template, bad key): a person must act.
    Rejected {
        /// The provider's code.
        code: String,
        /// The provider's message, scrubbed of numbers and keys.
        message: String,
    },
    /// The request may have reached the provider (a timeout after sending, a 5xx, an answer
    /// that could not be read): never sent again without a person checking the receipt.
    Unknown(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mobile_number_prints_masked_in_every_form() {
        for raw in ["13812345678", "+8613812345678", "008613812345678", "8613812345678"] {
            let number = MobileNumber::new(raw);
            assert_eq!(format!("{number:?}"), "138****5678", "{raw}");
            assert_eq!(format!("{:?}", Some(&number)), "Some(138****5678)");
        }
        assert_eq!(MobileNumber::new("12").masked(), "****");
    }

    #[test]
    fn severities_order_and_read_in_chinese() {
        assert!(Severity::Critical > Severity::Warning && Severity::Warning > Severity::Info);
        assert_eq!(Severity::Critical.label(), "严重");
        assert_eq!(serde_json::to_string(&Severity::Warning).unwrap_or_default(), "\"warning\"");
    }
}
