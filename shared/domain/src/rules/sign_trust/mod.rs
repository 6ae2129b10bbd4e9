//! Sign-in trust: is a carrier's "signed" proof that the customer has the parcel?
//!
//! Two steps, both pure:
//!
//! 1. [`classify`] reads one carrier sign record (a Kuaidi100 push or a courier's own trace
//!    line) and says what happened — signed by whom, not delivered, or still moving — and which
//!    rule decided.
//! 2. [`assess`] scores a sign 0–100 from who signed, where, what the customer's mini-program
//!    saw in the two hours after it, and the address's proxy-receipt history. Every rule that
//!    applied is listed with its points, so the mini-program can show "score with its reasons".
//!
//! # Classification precedence
//!
//! The most specific evidence wins:
//!
//! 1. **Kuaidi100 sub-state** (`resultv2=4`: the line's `statusCode`, else a detailed top
//!    `state`): 301 本人签收, 302 派件异常后签收 (weak), 303 代签, 304 投柜或站签收; and no sign:
//!    501 投柜或驿站 (put in, not collected: in transit), 205 柜或驿站超时未取 (not collected), 201 超时
//!    未签收, 203 拒收, 206 无法联系, 401 已销单.
//! 2. **Courier code** (SF 80/607/130/70…, Yunda `INBOUND`…, ZTO/STO 驿站代收, Best 代理点签收…).
//! 3. **Trace-text keywords**: "not delivered" words (拒收, 退回, 派送失败…) unless the line says
//!    已签收; then lockers (快递柜, 丰巢, 智能柜…) over stations (驿站, 代收点, 快递超市…) over
//!    proxy persons (门卫, 物业, 前台, 家人, 同事…) over 本人签收. A named proxy beats 本人 because
//!    carriers are known to label station receipts 本人签收. A line that is still on its way
//!    (派送中, 发往…) with no sign word does not count as a proxy receipt.
//! 4. **Kuaidi100 top state**: 3 签收 (signer unknown), 4 退签, 6 退回, 14 拒签, 2 疑难.
//! 5. A bare sign phrase in the text (已签收, 签收人…): signed, signer unknown.
//! 6. Nothing: in transit.
//!
//! Within a sign, a code that does not say *who* signed (SF 80 签收, 303 代签, 304 投柜或站签收…)
//! lets the trace text name the signer, within what the code allows: 303 代签 can become a
//! station or a locker but never the recipient; 304 can only be a locker or a station. The
//! evidence then names the text rule, since that is what decided the kind.
//!
//! # Scoring
//!
//! All thresholds and weights are fields of [`TrustRules`]; its documentation has the table of
//! defaults with the reason for each. The score is the sum of the reasons' points, clamped to
//! 0..=100; an explicit customer answer sets it outright (its reason carries the points needed).

mod classify;
mod score;

pub use classify::*;
pub use score::*;
