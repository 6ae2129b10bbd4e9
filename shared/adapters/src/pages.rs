//! The health report's HTML pages in S3 ([`domain::ports::ReportPages`]): one object per report
//! (`reports/<kind>/<period>.html`, `text/html; charset=utf-8`), and a presigned GET link
//! (SigV4 query signing, `X-Amz-Expires`) that people open without AWS credentials.
//!
//! How long the link works: at most 7 days with SigV4, and never longer than the credentials
//! that signed it. Signed with a role's temporary credentials (a Lambda function's), the link
//! stops working when that role session ends, even if it was made for longer (Amazon S3 User
//! Guide, "Download and upload objects with presigned URLs", who can create a presigned URL:
//! docs.amazonaws.cn/en_us/AmazonS3/latest/userguide/using-presigned-url.html).

use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use chrono::{DateTime, Utc};

use domain::ports::{PageLink, ReportPages, StoreError};

use crate::aws::error_code;

/// The longest a SigV4 presigned URL may be valid: 7 days.
pub const MAX_LINK_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Report pages in one S3 bucket.
#[derive(Debug, Clone)]
pub struct S3Pages {
    client: aws_sdk_s3::Client,
    bucket: String,
    link_ttl: Duration,
}

impl S3Pages {
    /// Pages in `bucket`, linked for `link_ttl` (at most [`MAX_LINK_TTL`]).
    pub fn new(client: aws_sdk_s3::Client, bucket: &str, link_ttl: Duration) -> Self {
        Self { client, bucket: bucket.to_owned(), link_ttl: link_ttl.min(MAX_LINK_TTL) }
    }
}

fn store_error<E, R>(err: &aws_smithy_runtime_api::client::result::SdkError<E, R>) -> StoreError
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    let (retryable, code) = error_code(err);
    if retryable { StoreError::Unavailable(code) } else { StoreError::Rejected(code) }
}

#[async_trait]
impl ReportPages for S3Pages {
    async fn put_page(&self, key: &str, html: &str) -> Result<PageLink, StoreError> {
        self.client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_type("text/html; charset=utf-8")
            .cache_control("private, max-age=300")
            .body(ByteStream::from(html.as_bytes().to_vec()))
            .send()
            .await
            .map_err(|e| store_error(&e))?;
        let signed_at = SystemTime::now();
        let presigning = PresigningConfig::builder()
            .start_time(signed_at)
            .expires_in(self.link_ttl)
            .build()
            .map_err(|e| StoreError::Rejected(format!("presigning: {e}")))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(presigning)
            .await
            .map_err(|e| store_error(&e))?;
        let expires_at: DateTime<Utc> = DateTime::<Utc>::from(signed_at + self.link_ttl);
        Ok(PageLink { key: key.to_owned(), url: request.uri().to_owned(), expires_at })
    }
}
