//! Bringing one function to its desired state through the Lambda API.
//!
//! Every step is idempotent: a function is read first (`GetFunction`), and
//! only what differs is changed, so a deploy interrupted half-way is
//! finished by running it again, and a second run changes nothing. Changing
//! a function restarts its environments, which drops the chunks its node
//! holds; that is the other reason an unchanged function is never touched.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_lambda::Client;
use aws_sdk_lambda::client::Waiters;
use aws_sdk_lambda::error::DisplayErrorContext;

use crate::invoker::describe_sdk_error;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{
    Environment, FunctionCode, FunctionConfiguration, LastUpdateStatus, PackageType, Runtime, State,
};
use aws_sdk_lambda::waiters::function_updated_v2::WaitUntilFunctionUpdatedV2Error;
use thiserror::Error;

use super::package::Package;
use super::spec::{Changes, FunctionSpec, HANDLER, Observed, RUNTIME, Setting, diff};

/// What was done to one function.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created,
    /// Code and/or configuration updated (never empty).
    Updated(Changes),
    Unchanged,
    Deleted,
    /// Deleting a function that does not exist.
    Absent,
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Created => f.write_str("created"),
            Outcome::Unchanged => f.write_str("unchanged"),
            Outcome::Deleted => f.write_str("deleted"),
            Outcome::Absent => f.write_str("absent"),
            Outcome::Updated(changes) => {
                let settings = changes
                    .configuration
                    .iter()
                    .map(|setting| setting.as_str())
                    .collect::<Vec<_>>()
                    .join(", ");
                match (changes.code, settings.is_empty()) {
                    (true, true) => f.write_str("updated code"),
                    (false, _) => write!(f, "updated configuration ({settings})"),
                    (true, false) => write!(f, "updated code, updated configuration ({settings})"),
                }
            }
        }
    }
}

/// A Lambda API call about one function failed.
#[derive(Debug, Clone, Error)]
#[error("{function}: {operation} failed: {message}")]
pub struct FunctionError {
    pub function: String,
    /// The API call or wait that failed, e.g. `CreateFunction`.
    pub operation: &'static str,
    /// The API's error code and message, or the chain of causes.
    pub message: String,
}

/// Creates the function, or updates what differs from `spec`.
pub async fn deploy(
    client: &Client,
    spec: &FunctionSpec,
    package: &Package,
    max_wait: Duration,
) -> Result<Outcome, FunctionError> {
    let call = Call {
        client,
        function: &spec.name,
        max_wait,
    };
    match call.get().await? {
        Some(config) => call.update(spec, package, &config).await,
        None => match call.create(spec, package).await {
            Ok(outcome) => Ok(outcome),
            // Created meanwhile (another deploy, or a retried request whose
            // first attempt succeeded): bring it up to date instead.
            Err(CreateFailed::Exists) => match call.get().await? {
                Some(config) => call.update(spec, package, &config).await,
                None => Err(call.error(
                    "GetFunction",
                    "the function exists according to CreateFunction but not to GetFunction",
                )),
            },
            Err(CreateFailed::Other(err)) => Err(err),
        },
    }
}

/// Deletes the function; one that does not exist is [`Outcome::Absent`].
pub async fn delete(client: &Client, function: &str) -> Result<Outcome, FunctionError> {
    match client
        .delete_function()
        .function_name(function)
        .send()
        .await
    {
        Ok(_) => Ok(Outcome::Deleted),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|err| err.is_resource_not_found_exception()) =>
        {
            Ok(Outcome::Absent)
        }
        Err(err) => Err(FunctionError {
            function: function.to_string(),
            operation: "DeleteFunction",
            message: describe_sdk_error(&err),
        }),
    }
}

/// Why `CreateFunction` failed.
enum CreateFailed {
    /// `ResourceConflictException`: the function already exists.
    Exists,
    Other(FunctionError),
}

/// The calls about one function.
struct Call<'a> {
    client: &'a Client,
    function: &'a str,
    max_wait: Duration,
}

impl Call<'_> {
    fn error(&self, operation: &'static str, message: impl ToString) -> FunctionError {
        FunctionError {
            function: self.function.to_string(),
            operation,
            message: message.to_string(),
        }
    }

    /// The function's configuration, or `None` if it does not exist.
    async fn get(&self) -> Result<Option<FunctionConfiguration>, FunctionError> {
        match self
            .client
            .get_function()
            .function_name(self.function)
            .send()
            .await
        {
            Ok(output) => output
                .configuration
                .map(Some)
                .ok_or_else(|| self.error("GetFunction", "the response has no configuration")),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|err| err.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(err) => Err(self.error("GetFunction", describe_sdk_error(&err))),
        }
    }

    async fn create(
        &self,
        spec: &FunctionSpec,
        package: &Package,
    ) -> Result<Outcome, CreateFailed> {
        let mut request = self
            .client
            .create_function()
            .function_name(self.function)
            .package_type(PackageType::Zip)
            .runtime(Runtime::from(RUNTIME))
            .handler(HANDLER)
            .role(&spec.role)
            .memory_size(to_i32(spec.memory_mb))
            .timeout(to_i32(spec.timeout_secs))
            .architectures(spec.architecture.to_lambda())
            .environment(environment(spec))
            .code(
                FunctionCode::builder()
                    .zip_file(Blob::new(package.zip()))
                    .build(),
            );
        if !spec.vpc.is_none() {
            request = request.vpc_config(spec.vpc.to_lambda());
        }
        match request.send().await {
            Ok(_) => {}
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|err| err.is_resource_conflict_exception()) =>
            {
                return Err(CreateFailed::Exists);
            }
            Err(err) => {
                return Err(CreateFailed::Other(
                    self.error("CreateFunction", describe_sdk_error(&err)),
                ));
            }
        }
        // A new function is Pending until Lambda has prepared it; it can be
        // neither invoked nor updated before it is Active.
        self.wait_until_active()
            .await
            .map_err(CreateFailed::Other)?;
        Ok(Outcome::Created)
    }

    async fn update(
        &self,
        spec: &FunctionSpec,
        package: &Package,
        current: &FunctionConfiguration,
    ) -> Result<Outcome, FunctionError> {
        // Lambda refuses an update while the function is still being created
        // or updated (a deploy interrupted earlier): let that finish first.
        let waited;
        let current = match busy(current) {
            None => current,
            Some(busy) => {
                if busy == Busy::Creating {
                    self.wait_until_active().await?;
                }
                self.wait_until_updated().await?;
                waited = self
                    .get()
                    .await?
                    .ok_or_else(|| self.error("GetFunction", "the function disappeared"))?;
                &waited
            }
        };
        let changes = diff(spec, &Observed::from_lambda(current));
        if changes.is_empty() {
            return Ok(Outcome::Unchanged);
        }
        if changes.code {
            self.client
                .update_function_code()
                .function_name(self.function)
                .zip_file(Blob::new(package.zip()))
                .architectures(spec.architecture.to_lambda())
                .send()
                .await
                .map_err(|err| self.error("UpdateFunctionCode", describe_sdk_error(&err)))?;
            self.wait_until_updated().await?;
        }
        if !changes.configuration.is_empty() {
            let mut request = self
                .client
                .update_function_configuration()
                .function_name(self.function)
                .runtime(Runtime::from(RUNTIME))
                .handler(HANDLER)
                .role(&spec.role)
                .memory_size(to_i32(spec.memory_mb))
                .timeout(to_i32(spec.timeout_secs))
                .environment(environment(spec));
            // Changing the VPC attachment is slow (network interfaces), so it
            // is only sent when it differs; an empty one detaches.
            if changes.configuration.contains(&Setting::Vpc) {
                request = request.vpc_config(spec.vpc.to_lambda());
            }
            request.send().await.map_err(|err| {
                self.error("UpdateFunctionConfiguration", describe_sdk_error(&err))
            })?;
            self.wait_until_updated().await?;
        }
        Ok(Outcome::Updated(changes))
    }

    /// Waits for `State: Active`.
    async fn wait_until_active(&self) -> Result<(), FunctionError> {
        self.client
            .wait_until_function_active_v2()
            .function_name(self.function)
            .wait(self.max_wait)
            .await
            .map(|_| ())
            .map_err(|err| self.error("waiting for Active", waiter_message(err)))
    }

    /// Waits for `LastUpdateStatus: Successful`.
    async fn wait_until_updated(&self) -> Result<(), FunctionError> {
        self.client
            .wait_until_function_updated_v2()
            .function_name(self.function)
            .wait(self.max_wait)
            .await
            .map(|_| ())
            .map_err(|err| self.error("waiting for the update", waiter_message(err)))
    }
}

/// Why Lambda would refuse an update of the function now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Busy {
    /// `State: Pending`: still being created.
    Creating,
    /// `LastUpdateStatus: InProgress`: an earlier update is being applied.
    Updating,
}

fn busy(config: &FunctionConfiguration) -> Option<Busy> {
    if matches!(config.state(), Some(State::Pending)) {
        Some(Busy::Creating)
    } else if matches!(
        config.last_update_status(),
        Some(LastUpdateStatus::InProgress)
    ) {
        Some(Busy::Updating)
    } else {
        None
    }
}

fn environment(spec: &FunctionSpec) -> Environment {
    let variables: HashMap<String, String> = spec
        .environment
        .iter()
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    Environment::builder()
        .set_variables(Some(variables))
        .build()
}

/// Settings are validated against Lambda's limits (memory at most 10240 MB,
/// timeout at most 900 s), far inside `i32`.
fn to_i32(value: u32) -> i32 {
    i32::try_from(value).unwrap_or(i32::MAX)
}

/// A waiter failure, with Lambda's reason when the function reached a failed
/// state (e.g. a bad role or subnet), which the SDK error alone does not say.
/// Both waiters used here poll `GetFunction`, so they share the error type.
fn waiter_message(err: WaitUntilFunctionUpdatedV2Error) -> String {
    if let WaitUntilFunctionUpdatedV2Error::FailureState(failure) = &err
        && let Ok(output) = failure.final_poll().as_result()
        && let Some(config) = output.configuration()
    {
        let (status, reason) = match config.last_update_status() {
            Some(LastUpdateStatus::Failed) => (
                "LastUpdateStatus Failed",
                config.last_update_status_reason(),
            ),
            _ => ("State Failed", config.state_reason()),
        };
        return format!("{status}: {}", reason.unwrap_or("no reason given"));
    }
    DisplayErrorContext(err).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_read_as_documented() {
        assert_eq!(Outcome::Created.to_string(), "created");
        assert_eq!(
            Outcome::Updated(Changes {
                code: true,
                configuration: vec![]
            })
            .to_string(),
            "updated code"
        );
        assert_eq!(
            Outcome::Updated(Changes {
                code: false,
                configuration: vec![Setting::Memory, Setting::Timeout]
            })
            .to_string(),
            "updated configuration (memory, timeout)"
        );
        assert_eq!(
            Outcome::Updated(Changes {
                code: true,
                configuration: vec![Setting::Environment]
            })
            .to_string(),
            "updated code, updated configuration (environment)"
        );
    }

    #[test]
    fn busy_functions_are_waited_for() {
        let pending = FunctionConfiguration::builder()
            .state(State::Pending)
            .build();
        assert_eq!(busy(&pending), Some(Busy::Creating));
        let updating = FunctionConfiguration::builder()
            .state(State::Active)
            .last_update_status(LastUpdateStatus::InProgress)
            .build();
        assert_eq!(busy(&updating), Some(Busy::Updating));
        let idle = FunctionConfiguration::builder()
            .state(State::Active)
            .last_update_status(LastUpdateStatus::Successful)
            .build();
        assert_eq!(busy(&idle), None);
    }
}
