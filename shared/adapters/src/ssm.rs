//! SSM Parameter Store implementation of the secrets port (SecureString, decrypted on read).

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use aws_sdk_ssm::operation::get_parameter::GetParameterError;
use aws_sdk_ssm::types::ParameterType;

use domain::ports::{Secrets, SecretsError};

use crate::aws::error_code;

/// Parameters in SSM.
#[derive(Debug, Clone)]
pub struct SsmSecrets {
    client: Client,
}

impl SsmSecrets {
    /// Secrets through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl Secrets for SsmSecrets {
    async fn get(&self, name: &str) -> Result<Option<String>, SecretsError> {
        match self.client.get_parameter().name(name).with_decryption(true).send().await {
            Ok(out) => Ok(out.parameter.and_then(|p| p.value)),
            Err(err) if matches!(err.as_service_error(), Some(GetParameterError::ParameterNotFound(_))) => Ok(None),
            Err(err) => Err(SecretsError::Unavailable(error_code(&err).1)),
        }
    }

    async fn put(&self, name: &str, value: &str) -> Result<(), SecretsError> {
        self.client
            .put_parameter()
            .name(name)
            .value(value)
            .r#type(ParameterType::SecureString)
            .overwrite(true)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| SecretsError::Unavailable(error_code(&e).1))
    }
}
